// SPDX-License-Identifier: MPL-2.0
//! Webhook deliveries: recorded, each held by the node sending it between
//! attempts, taken over when that node stopped, shown on the job.

use serde_json::{Value, json};

use super::db::{Dialect, p};
use super::{PendingWebhook, Result, Store, iso, now};

impl Store {
    /// Records a delivery, held by this node for `hold_s` seconds.
    pub fn insert_webhook(
        &self,
        id: &str,
        job_id: &str,
        event: &str,
        url: &str,
        body: &str,
        hold_s: i64,
    ) -> Result<()> {
        let node = self.node.as_str();
        self.with(|c| {
            c.exec(
                "INSERT INTO webhook_events (id, job_id, event, url, body, state, created_at, updated_at, \
                 lease_owner, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7, ?8)",
                p![id, job_id, event, url, body, now(), node, now() + hold_s],
            )
        })
        .map(|_| ())
    }

    /// Records an attempt and extends this node's hold on the delivery by
    /// `hold_s` seconds.
    #[allow(clippy::too_many_arguments)]
    pub fn update_webhook(
        &self,
        id: &str,
        state: &str,
        attempts: i64,
        status: Option<u16>,
        error: Option<&str>,
        hold_s: i64,
    ) -> Result<()> {
        self.with(|c| {
            c.exec(
                "UPDATE webhook_events SET state = ?2, attempts = ?3, last_status = ?4, last_error = ?5, \
                 updated_at = ?6, lease_until = ?7 WHERE id = ?1",
                p![id, state, attempts, status, error, now(), now() + hold_s],
            )
        })
        .map(|_| ())
    }

    /// (id, url, event, body, attempts) of deliveries not yet done whose
    /// node stopped (their hold ran out; every one when `all`, as a node
    /// alone on its store does at start), now held by this node for `hold_s`.
    pub fn claim_pending_webhooks(&self, all: bool, hold_s: i64) -> Result<Vec<PendingWebhook>> {
        let node = self.node.as_str();
        self.with(|c| {
            let t = now();
            let lock = match c.dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            };
            let rows = c.rows(
                &format!(
                    "SELECT id, url, event, body, attempts FROM webhook_events WHERE state = 'pending' \
                     AND (?1 = 1 OR lease_until IS NULL OR lease_until < ?2) ORDER BY created_at{lock}"
                ),
                p![i64::from(all), t],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d: PendingWebhook = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                c.exec(
                    "UPDATE webhook_events SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                    p![&d.0, node, t + hold_s],
                )?;
                out.push(d);
            }
            Ok(out)
        })
    }

    pub fn webhooks_for_job(&self, job_id: &str) -> Result<Vec<Value>> {
        self.with(|c| {
            c.rows(
                "SELECT id, event, state, attempts, last_status, last_error, created_at, updated_at \
                 FROM webhook_events WHERE job_id = ?1 ORDER BY created_at, rowid",
                p![job_id],
            )?
            .iter()
            .map(|r| {
                Ok(json!({
                    "delivery_id": r.get::<String>(0)?,
                    "event": r.get::<String>(1)?,
                    "state": r.get::<String>(2)?,
                    "attempts": r.get::<i64>(3)?,
                    "last_status": r.get::<Option<i64>>(4)?,
                    "last_error": r.get::<Option<String>>(5)?,
                    "created_at": iso(r.get(6)?),
                    "updated_at": iso(r.get(7)?),
                }))
            })
            .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{job, two_nodes};
    use super::super::*;
    use super::*;

    #[test]
    fn a_webhook_delivery_is_one_nodes_until_its_hold_runs_out() {
        let (a, b) = two_nodes();
        let (key, _) = a.create_key("k", None).unwrap();
        let id = job(&a, &key, "completed");
        a.insert_webhook("whd_1", &id, "job.completed", "http://h/", "{}", 60)
            .unwrap();
        assert!(
            b.claim_pending_webhooks(false, 60).unwrap().is_empty(),
            "a holds it"
        );
        a.with(|c| c.exec("UPDATE webhook_events SET lease_until = ?1", p![now() - 1]))
            .unwrap();
        let taken = b.claim_pending_webhooks(false, 60).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0.as_str(), taken[0].4), ("whd_1", 0));
        assert!(
            a.claim_pending_webhooks(false, 60).unwrap().is_empty(),
            "now b's"
        );
        // A node alone on its store takes every pending one at start.
        assert_eq!(a.claim_pending_webhooks(true, 60).unwrap().len(), 1);
        a.update_webhook("whd_1", "delivered", 1, Some(200), None, 60)
            .unwrap();
        assert!(a.claim_pending_webhooks(true, 60).unwrap().is_empty());
    }
}
