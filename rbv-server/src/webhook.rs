// SPDX-License-Identifier: MPL-2.0
//! Webhook deliveries: job.started / job.completed / job.failed with the
//! documented headers and HMAC-SHA256 signature, retried, each delivery's
//! state kept in `webhook_events` (and resumed after a restart).

use std::sync::Arc;
use std::time::Duration;

use crate::egress::Policy;
use crate::store::Store;

/// What a failed delivery records, whatever the cause.
const NOT_DELIVERED: &str = "not delivered: no 2xx answer";
use crate::{crypto, log};

pub struct Webhooks {
    egress: Arc<Policy>,
    client: reqwest::Client,
    secret: Option<String>,
    retry_delay: Duration,
    retries: i64,
}

impl Webhooks {
    pub fn new(
        secret: Option<String>,
        retry_delay: Duration,
        retries: i64,
        egress: &Arc<Policy>,
    ) -> Webhooks {
        // A receiver's redirect is not followed: the body goes where it was
        // asked, and only where the egress policy allows.
        let client = egress
            .client(0, Duration::from_secs(5), Duration::from_secs(10))
            .expect("an HTTP client with the system TLS");
        Webhooks {
            egress: egress.clone(),
            client,
            secret,
            retry_delay,
            retries,
        }
    }

    /// How long a node holds a delivery between two attempts: the wait, the
    /// request's own time limit and a margin. Past it, another node may
    /// take the delivery over.
    fn hold_s(&self) -> i64 {
        self.retry_delay.as_secs() as i64 + 10 + 30
    }

    /// Records a delivery and sends it in the background.
    pub fn send(
        self: &Arc<Self>,
        store: &Arc<Store>,
        job_id: &str,
        url: &str,
        event: &str,
        data: serde_json::Value,
    ) {
        let id = crypto::new_id("whd");
        let body = serde_json::json!({"event": event, "data": data}).to_string();
        if let Err(e) = store.insert_webhook(&id, job_id, event, url, &body, self.hold_s()) {
            log::line(&[
                ("event", "webhook"),
                ("job_id", job_id),
                ("error", &e.to_string()),
            ]);
            return;
        }
        self.spawn(store, id, url.to_owned(), event.to_owned(), body, 0);
    }

    /// Sends deliveries a stop left pending: every one (`all`, a node alone
    /// on its store, at start), or those whose node stopped holding them (a
    /// shared store, at start and every minute).
    pub fn resume(self: &Arc<Self>, store: &Arc<Store>, all: bool) {
        match store.claim_pending_webhooks(all, self.hold_s()) {
            Ok(pending) => {
                for (id, url, event, body, attempts) in pending {
                    self.spawn(store, id, url, event, body, attempts);
                }
            }
            Err(e) => log::line(&[("event", "webhook_resume"), ("error", &e.to_string())]),
        }
    }

    fn spawn(
        self: &Arc<Self>,
        store: &Arc<Store>,
        id: String,
        url: String,
        event: String,
        body: String,
        done: i64,
    ) {
        let this = self.clone();
        let store = store.clone();
        tokio::spawn(async move { this.deliver(&store, &id, &url, &event, &body, done).await });
    }

    async fn deliver(
        &self,
        store: &Store,
        id: &str,
        url: &str,
        event: &str,
        body: &str,
        done: i64,
    ) {
        let mut attempts = done;
        loop {
            attempts += 1;
            let ts = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
            let mut req = self
                .client
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Webhook-Event", event)
                .header("X-Webhook-Delivery-Id", id)
                .header("X-Webhook-Timestamp", &ts)
                .body(body.to_owned());
            if let Some(secret) = &self.secret {
                req = req.header(
                    "X-Webhook-Signature",
                    crypto::webhook_signature(secret, &ts, body.as_bytes()),
                );
            }
            // What the delivery records (and the job shows its key) says
            // delivered or not, never what a receiver or a port answered;
            // the log line has the detail.
            let refused = reqwest::Url::parse(url)
                .map_err(|e| e.to_string())
                .and_then(|u| self.egress.check_url(&u).map_err(|r| r.to_string()));
            let (status, error, detail) = match refused {
                Err(r) => (None, Some(format!("not delivered: {r}")), r),
                Ok(()) => match req.timeout(Duration::from_secs(10)).send().await {
                    Ok(r) if r.status().is_success() => {
                        (Some(r.status().as_u16()), None, r.status().to_string())
                    }
                    Ok(r) => (
                        None,
                        Some(NOT_DELIVERED.to_string()),
                        format!("answered {}", r.status()),
                    ),
                    Err(e) => {
                        let msg = crate::egress::client_message("the webhook", url, &e);
                        let shown = if msg.contains("is not fetched") {
                            msg.replace("is not fetched", "is not delivered")
                        } else {
                            NOT_DELIVERED.to_string()
                        };
                        (None, Some(shown), e.to_string())
                    }
                },
            };
            let last = attempts > self.retries;
            let state = match (&error, last) {
                (None, _) => "delivered",
                (Some(_), true) => "failed",
                (Some(_), false) => "pending",
            };
            let _ =
                store.update_webhook(id, state, attempts, status, error.as_deref(), self.hold_s());
            log::line(&[
                ("event", "webhook"),
                ("delivery_id", id),
                ("webhook_event", event),
                ("attempt", &attempts.to_string()),
                ("state", state),
                ("detail", &detail),
            ]);
            if state != "pending" {
                return;
            }
            tokio::time::sleep(self.retry_delay).await;
        }
    }
}
