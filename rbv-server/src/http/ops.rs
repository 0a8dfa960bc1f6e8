// SPDX-License-Identifier: MPL-2.0
//! Signed output links, `/health` and `/metrics`.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Answer, ApiError, Caller, Ctx, Cx, json_response};
use crate::queue::Pool;
use crate::store;
use crate::{App, crypto};
use axum::http::HeaderMap;

type Params = Query<std::collections::HashMap<String, String>>;

pub async fn output(
    State(app): State<Arc<App>>,
    Path((job_id, file)): Path<(String, String)>,
    Query(q): Params,
    Cx(ctx): Cx,
) -> Answer {
    ctx.job(&job_id);
    let forbidden = |code, msg: &str| ApiError::new(&ctx, 403, code, msg);
    let expires = q.get("expires").and_then(|e| e.parse::<u64>().ok());
    let signature = q.get("signature").map(String::as_str).unwrap_or_default();
    let Some(expires) = expires else {
        return Err(forbidden("invalid_signature", "this link is not signed"));
    };
    if !crypto::link_signature_ok(&app.link_secret, &job_id, &file, expires, signature) {
        return Err(forbidden(
            "invalid_signature",
            "this link's signature does not match",
        ));
    }
    if (store::now() as u64) > expires {
        return Err(forbidden(
            "link_expired",
            "this link has expired: read the job again for a fresh output_url",
        ));
    }
    let job = app
        .store
        .job(&job_id)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    let Some(job) = job.filter(|j| j.output_file.as_deref() == Some(file.as_str())) else {
        return Err(ApiError::new(&ctx, 404, "not_found", "output not found"));
    };
    // A link dies with its key.
    if !app
        .store
        .key_active(&job.key_id)
        .map_err(|e| ApiError::internal(&ctx, e))?
    {
        return Err(forbidden(
            "key_revoked",
            "the key this job belongs to is revoked",
        ));
    }
    let mime = job.output_format.mime();
    let opened = app.storage.open_output(&file).await;
    stream(&ctx, opened, mime, &file, "output not found")
}

/// `GET /uploads/{name}`, the `video_url` an upload answered with: the file,
/// to the key that uploaded it.
pub async fn upload(
    State(app): State<Arc<App>>,
    Path(name): Path<String>,
    Caller { key, ctx }: Caller,
) -> Answer {
    let not_found = || ApiError::new(&ctx, 404, "not_found", "upload not found");
    let id = name.split('.').next().unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_found());
    }
    let u = app
        .store
        .upload(&key.id, id)
        .map_err(|e| ApiError::internal(&ctx, e))?
        .filter(|u| {
            std::path::Path::new(&u.path)
                .file_name()
                .and_then(|f| f.to_str())
                == Some(name.as_str())
        })
        .ok_or_else(not_found)?;
    let opened = app.storage.open_upload(&u.path).await;
    stream(&ctx, opened, &u.content_type, &name, "upload not found")
}

/// A kept file to the client, as an attachment named `file`.
fn stream(
    ctx: &Ctx,
    opened: Result<Option<(u64, crate::storage::ByteStream)>, String>,
    mime: &str,
    file: &str,
    missing: &str,
) -> Answer {
    let Some((len, stream)) = opened.map_err(|e| ApiError::internal(ctx, e))? else {
        return Err(ApiError::new(ctx, 404, "not_found", missing));
    };
    Ok((
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

pub async fn health(State(app): State<Arc<App>>) -> Response {
    let db = app.store.ping().is_ok();
    let storage = app.storage.healthy().await;
    let pool = |p: Pool| {
        let q = app.queues.get(p);
        json!({"workers": q.workers, "busy": q.busy.load(std::sync::atomic::Ordering::Relaxed), "depth": q.len()})
    };
    // A node of both roles must run every pool; a worker node serves the
    // pools it was given (a GPU node `pro`, a CPU node `human`); an API
    // node runs no job: the worker nodes' /health speaks for them.
    let (heavy, light) = (app.queues.heavy.workers, app.queues.light.workers);
    let workers = match app.config.role {
        crate::Role::All => heavy > 0 && light > 0,
        crate::Role::Worker => heavy + light > 0,
        crate::Role::Api => true,
    };
    let healthy = db && storage && workers;
    let body = json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "checks": {
            "database": if db { "ok" } else { "failing" },
            "storage": match (storage, app.storage.is_local()) {
                (true, _) => "ok",
                (false, true) => "missing",
                (false, false) => "failing",
            },
            "ffmpeg": if app.ffmpeg { "ok" } else { "missing: no webm with alpha, gif or webp" },
            "queues": {"heavy": pool(Pool::Heavy), "light": pool(Pool::Light)},
            "role": app.config.role.name(),
        }
    });
    let status = if db && storage {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, json_response(&body)).into_response()
}

/// `/metrics` shows every key's counts: to the operator's token, or to
/// anyone with `--metrics-public`; otherwise it is not there.
pub async fn metrics(State(app): State<Arc<App>>, Cx(ctx): Cx, headers: HeaderMap) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let allowed = app.config.metrics_public
        || app
            .config
            .metrics_token
            .as_deref()
            .is_some_and(|t| token.is_some_and(|g| crypto::same(g, t)));
    if !allowed {
        let (status, code, msg) = if app.config.metrics_token.is_some() {
            (
                401,
                "unauthorized",
                "send the metrics token as Authorization: Bearer <token>",
            )
        } else {
            (
                404,
                "not_found",
                "no route GET /metrics (start the server with a metrics token or --metrics-public)",
            )
        };
        return ApiError::new(&ctx, status, code, msg).into_response();
    }
    let per_pool = |f: &dyn Fn(&crate::queue::Queue) -> f64| {
        [Pool::Heavy, Pool::Light]
            .into_iter()
            .map(|p| (format!("{{pool=\"{}\"}}", p.name()), f(app.queues.get(p))))
            .collect::<Vec<_>>()
    };
    let jobs = app
        .store
        .count_by_status()
        .unwrap_or_default()
        .into_iter()
        .map(|(s, n)| (format!("{{status=\"{s}\"}}"), n as f64))
        .collect();
    let text = app.metrics.render(&[
        (
            "rbv_queue_depth",
            "Jobs waiting per worker pool.",
            per_pool(&|q| q.len() as f64),
        ),
        (
            "rbv_workers",
            "Workers per pool.",
            per_pool(&|q| q.workers as f64),
        ),
        (
            "rbv_workers_busy",
            "Workers processing a job now.",
            per_pool(&|q| q.busy.load(std::sync::atomic::Ordering::Relaxed) as f64),
        ),
        ("rbv_jobs", "Jobs in the store per status.", jobs),
    ]);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}
