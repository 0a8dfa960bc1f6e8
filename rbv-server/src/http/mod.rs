// SPDX-License-Identifier: MPL-2.0
//! The `/v1` routes, `/health`, `/metrics` and the signed output links,
//! on axum. Every answer carries `X-Request-Id`; every error is the
//! documented body `{"error":{"code","message","request_id"}}`.

mod admin;
mod auth;
pub mod conn;
mod jobs;
mod ops;
mod uploads;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::request::Refusal;
use crate::{App, crypto, log};

pub use auth::{Caller, Cx};

/// Largest JSON body taken.
const MAX_JSON_BYTES: usize = 1024 * 1024;

/// What a request's log line says, filled in by the handler.
pub struct Ctx {
    pub request_id: String,
    key_id: Mutex<Option<String>>,
    job_id: Mutex<Option<String>>,
}

impl Ctx {
    pub(crate) fn key(&self, id: &str) {
        *self.key_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
    }
    pub(crate) fn job(&self, id: &str) {
        *self.job_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
    }
}

/// An error answer.
pub struct ApiError {
    status: StatusCode,
    pub(crate) code: &'static str,
    message: String,
    request_id: String,
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        ctx: &Ctx,
        status: u16,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            request_id: ctx.request_id.clone(),
            retry_after: None,
        }
    }

    pub(crate) fn invalid(ctx: &Ctx, message: impl Into<String>) -> ApiError {
        ApiError::new(ctx, 400, "invalid_request", message)
    }

    pub(crate) fn refused(ctx: &Ctx, r: Refusal) -> ApiError {
        ApiError::new(ctx, r.status, r.code, r.message)
    }

    pub(crate) fn internal(ctx: &Ctx, e: impl std::fmt::Display + 'static) -> ApiError {
        log::line(&[
            ("event", "internal_error"),
            ("request_id", &ctx.request_id),
            ("error", &e.to_string()),
        ]);
        let any: &dyn std::any::Any = &e;
        if any
            .downcast_ref::<crate::store::db::Error>()
            .is_some_and(crate::store::db::Error::unavailable)
        {
            let mut e = ApiError::new(
                ctx,
                503,
                "database_unavailable",
                "the service's database cannot be reached; try again shortly (a change asked for may or may not have been made: read before you repeat it)",
            );
            e.retry_after = Some(5);
            return e;
        }
        ApiError::new(
            ctx,
            500,
            "internal_error",
            "internal error; the request id names it in the server's log",
        )
    }

    pub(crate) fn not_found(ctx: &Ctx) -> ApiError {
        ApiError::new(ctx, 404, "not_found", "Job not found")
    }

    pub(crate) fn rate_limited(ctx: &Ctx, message: &str, retry_after: u64) -> ApiError {
        ApiError {
            retry_after: Some(retry_after),
            ..ApiError::new(ctx, 429, "rate_limited", message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {
            "code": self.code, "message": self.message, "request_id": self.request_id}});
        let mut res = (self.status, json_response(&body)).into_response();
        if let Some(s) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

pub(crate) type Answer = Result<Response, ApiError>;

pub(crate) fn json_response(body: &Value) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

pub(crate) fn ok(body: Value) -> Answer {
    Ok(json_response(&body).into_response())
}

pub fn router(app: Arc<App>, role: crate::Role) -> Router {
    let base = Router::new()
        .route("/health", get(ops::health))
        .route("/metrics", get(ops::metrics));
    // A worker node answers only what operators and orchestrators ask of
    // every node; the API is on the API nodes.
    let routes = if role.serves_api() {
        base.route(
            "/v1/uploads",
            post(uploads::upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs", post(jobs::create_job).get(jobs::list_jobs))
        .route("/v1/jobs/{id}", get(jobs::get_job))
        .route("/v1/jobs/{id}/start", post(jobs::start_job))
        .route("/v1/usage/summary", get(jobs::usage_summary))
        .route("/v1/usage/events", get(jobs::usage_events))
        .route("/v1/admin/config", get(admin::config))
        .route(
            "/v1/admin/keys",
            get(admin::list_keys).post(admin::create_key),
        )
        .route("/v1/admin/keys/disable", post(admin::disable_key))
        .route("/v1/admin/keys/enable", post(admin::enable_key))
        .route("/outputs/{job}/{file}", get(ops::output))
        .route("/uploads/{name}", get(ops::upload))
    } else {
        base
    };
    routes
        .fallback(no_route)
        .layer(middleware::from_fn_with_state(app.clone(), observe))
        .with_state(app)
}

/// The route a path matched, with ids folded, for metrics.
fn route_label(path: &str) -> String {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["v1", "jobs", _] => "/v1/jobs/{id}".into(),
        ["v1", "jobs", _, "start"] => "/v1/jobs/{id}/start".into(),
        ["outputs", ..] => "/outputs".into(),
        ["uploads", _] => "/uploads/{name}".into(),
        ["v1", "uploads"]
        | ["v1", "jobs"]
        | ["v1", "usage", _]
        | ["v1", "admin", "config" | "keys"]
        | ["v1", "admin", "keys", "disable" | "enable"]
        | ["health"]
        | ["metrics"] => path.into(),
        _ => "other".into(),
    }
}

/// Request id, one log line and metrics for every request.
async fn observe(State(app): State<Arc<App>>, mut req: Request, next: Next) -> Response {
    let ctx = Arc::new(Ctx {
        request_id: crypto::new_id("req"),
        key_id: Mutex::new(None),
        job_id: Mutex::new(None),
    });
    req.extensions_mut().insert(ctx.clone());
    let method = req.method().to_string();
    // The path only: an output link's query carries its signature.
    let path = req.uri().path().to_owned();
    let started = Instant::now();
    let mut res = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&ctx.request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    let status = res.status().as_u16();
    let key = ctx.key_id.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let job = ctx.job_id.lock().unwrap_or_else(|e| e.into_inner()).clone();
    log::line(&[
        ("event", "request"),
        ("request_id", &ctx.request_id),
        ("method", &method),
        ("path", &path),
        ("status", &status.to_string()),
        (
            "ms",
            &format!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        ),
        ("key_id", key.as_deref().unwrap_or("-")),
        ("job_id", job.as_deref().unwrap_or("-")),
    ]);
    app.metrics.request(&route_label(&path), status);
    res
}

/// What is read and thrown away of a body that is over its limit, so the
/// client gets the error answer instead of a broken connection.
pub(crate) const DRAIN_BYTES: usize = 16 * 1024 * 1024;

pub(crate) async fn json_body(ctx: &Ctx, body: Body, empty_ok: bool) -> Result<Value, ApiError> {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut bytes = Vec::new();
    let mut seen = 0usize;
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::invalid(ctx, format!("the body broke off: {e}")))?;
        seen += chunk.len();
        if seen <= MAX_JSON_BYTES {
            bytes.extend_from_slice(&chunk);
        } else if seen > DRAIN_BYTES {
            break;
        }
    }
    if seen > MAX_JSON_BYTES {
        return Err(ApiError::new(
            ctx,
            413,
            "request_too_large",
            format!("the JSON body is over {MAX_JSON_BYTES} bytes"),
        ));
    }
    if empty_ok && bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(ctx, format!("the body is not valid JSON: {e}")))
}

async fn no_route(State(app): State<Arc<App>>, Cx(ctx): Cx, req: Request) -> Response {
    let worker = if app.config.role.serves_api() {
        ""
    } else {
        " on this worker node (--role worker): send API requests to an API node"
    };
    ApiError::new(
        &ctx,
        404,
        "not_found",
        format!("no route {} {}{worker}", req.method(), req.uri().path()),
    )
    .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_routes_fold_ids() {
        assert_eq!(route_label("/v1/jobs/job_1"), "/v1/jobs/{id}");
        assert_eq!(route_label("/v1/jobs/job_1/start"), "/v1/jobs/{id}/start");
        assert_eq!(route_label("/outputs/job_1/job_1.mov"), "/outputs");
        assert_eq!(route_label("/v1/usage/summary"), "/v1/usage/summary");
        assert_eq!(route_label("/../../etc/passwd"), "other");
        assert_eq!(
            route_label("/v1/admin/keys/enable"),
            "/v1/admin/keys/enable"
        );
        assert_eq!(route_label("/v1/admin/keys/k"), "other");
    }
}
