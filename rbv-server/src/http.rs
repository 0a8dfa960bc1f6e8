// SPDX-License-Identifier: MPL-2.0
//! The `/v1` routes, `/health`, `/metrics` and the signed output links,
//! on axum. Every answer carries `X-Request-Id`; every error is the
//! documented body `{"error":{"code","message","request_id"}}`.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequest, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::queue::Pool;
use crate::request::{self, Refusal};
use crate::store::{self, Job, Key};
use crate::{App, crypto, log};

/// Largest JSON body taken.
const MAX_JSON_BYTES: usize = 1024 * 1024;

/// What a request's log line says, filled in by the handler.
pub struct Ctx {
    pub request_id: String,
    key_id: Mutex<Option<String>>,
    job_id: Mutex<Option<String>>,
}

impl Ctx {
    fn key(&self, id: &str) {
        *self.key_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
    }
    fn job(&self, id: &str) {
        *self.job_id.lock().unwrap_or_else(|e| e.into_inner()) = Some(id.to_owned());
    }
}

/// An error answer.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    request_id: String,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(ctx: &Ctx, status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            code,
            message: message.into(),
            request_id: ctx.request_id.clone(),
            retry_after: None,
        }
    }

    fn invalid(ctx: &Ctx, message: impl Into<String>) -> ApiError {
        ApiError::new(ctx, 400, "invalid_request", message)
    }

    fn refused(ctx: &Ctx, r: Refusal) -> ApiError {
        ApiError::new(ctx, r.status, r.code, r.message)
    }

    fn internal(ctx: &Ctx, e: impl std::fmt::Display) -> ApiError {
        log::line(&[
            ("event", "internal_error"),
            ("request_id", &ctx.request_id),
            ("error", &e.to_string()),
        ]);
        ApiError::new(
            ctx,
            500,
            "internal_error",
            "internal error; the request id names it in the server's log",
        )
    }

    fn not_found(ctx: &Ctx) -> ApiError {
        ApiError::new(ctx, 404, "not_found", "Job not found")
    }

    fn rate_limited(ctx: &Ctx, message: &str, retry_after: u64) -> ApiError {
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

type Answer = Result<Response, ApiError>;

fn json_response(body: &Value) -> impl IntoResponse + use<> {
    (
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
}

fn ok(body: Value) -> Answer {
    Ok(json_response(&body).into_response())
}

pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/v1/uploads",
            post(upload).layer(DefaultBodyLimit::disable()),
        )
        .route("/v1/jobs", post(create_job).get(list_jobs))
        .route("/v1/jobs/{id}", get(get_job))
        .route("/v1/jobs/{id}/start", post(start_job))
        .route("/v1/usage/summary", get(usage_summary))
        .route("/v1/usage/events", get(usage_events))
        .route("/outputs/{job}/{file}", get(output))
        .route("/health", get(health))
        .route("/metrics", get(metrics))
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
        ["v1", "uploads"] | ["v1", "jobs"] | ["v1", "usage", _] | ["health"] | ["metrics"] => {
            path.into()
        }
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

fn ctx_of(req: &Request) -> Arc<Ctx> {
    req.extensions()
        .get::<Arc<Ctx>>()
        .cloned()
        .expect("observe() runs first")
}

/// The caller's key, checked, and its rate limit spent.
fn auth(app: &App, ctx: &Ctx, headers: &HeaderMap) -> Result<Key, ApiError> {
    let secret = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            ApiError::new(
                ctx,
                401,
                "missing_api_key",
                "send your API key in the X-Api-Key header",
            )
        })?;
    let key = app
        .store
        .key_by_secret(secret)
        .map_err(|e| ApiError::internal(ctx, e))?
        .ok_or_else(|| ApiError::new(ctx, 401, "invalid_api_key", "the API key is not valid"))?;
    ctx.key(&key.id);
    let per_minute = f64::from(app.config.rate_limit);
    if per_minute > 0.0 {
        let mut buckets = app.rate.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let (tokens, last) = buckets.entry(key.id.clone()).or_insert((per_minute, now));
        *tokens =
            (*tokens + now.duration_since(*last).as_secs_f64() * per_minute / 60.0).min(per_minute);
        *last = now;
        if *tokens < 1.0 {
            let wait = ((1.0 - *tokens) * 60.0 / per_minute).ceil().max(1.0) as u64;
            return Err(ApiError::rate_limited(
                ctx,
                &format!(
                    "over {} requests per minute for this key",
                    app.config.rate_limit
                ),
                wait,
            ));
        }
        *tokens -= 1.0;
    }
    Ok(key)
}

/// What is read and thrown away of a body that is over its limit, so the
/// client gets the error answer instead of a broken connection.
const DRAIN_BYTES: usize = 16 * 1024 * 1024;

async fn json_body(ctx: &Ctx, body: Body, empty_ok: bool) -> Result<Value, ApiError> {
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

async fn no_route(req: Request) -> Response {
    let ctx = ctx_of(&req);
    ApiError::new(
        &ctx,
        404,
        "not_found",
        format!("no route {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

// ---- uploads ----

async fn upload(State(app): State<Arc<App>>, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    let mut multipart = axum::extract::Multipart::from_request(req, &())
        .await
        .map_err(|e| {
            ApiError::invalid(
                &ctx,
                format!("expected a multipart/form-data body with a `file` field: {e}"),
            )
        })?;
    let limit = app.config.max_upload_bytes;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(|e| ApiError::invalid(&ctx, format!("broken multipart body: {e}")))?
            .ok_or_else(|| ApiError::invalid(&ctx, "no `file` field in the upload"))?;
        if field.name() != Some("file") {
            continue;
        }
        // The client's name is shown back, never used on disk.
        let filename: String = field
            .file_name()
            .unwrap_or("upload")
            .rsplit(['/', '\\'])
            .next()
            .unwrap_or("upload")
            .chars()
            .filter(|c| !c.is_control())
            .take(255)
            .collect();
        let id = crypto::random_hex(16);
        let part = app.uploads_dir().join(format!("{id}.part"));
        let result = receive(&ctx, field, &part, limit).await;
        let (size, head) = match result {
            Ok(r) => r,
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                return Err(e);
            }
        };
        let Some((content_type, ext)) = rbv_runner::sniff_video(&head) else {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(ApiError::new(
                &ctx,
                400,
                "invalid_file_type",
                "invalid file type: the upload is not a video this service takes (mp4, mov, webm, avi)",
            ));
        };
        let path = app.uploads_dir().join(format!("{id}.{ext}"));
        tokio::fs::rename(&part, &path)
            .await
            .map_err(|e| ApiError::internal(&ctx, e))?;
        let upload = store::Upload {
            id: id.clone(),
            filename: filename.clone(),
            content_type: content_type.into(),
            size: size as i64,
            path: path.to_string_lossy().into_owned(),
        };
        app.store
            .insert_upload(&key.id, &upload)
            .map_err(|e| ApiError::internal(&ctx, e))?;
        return ok(json!({
            "success": true,
            "video_id": id,
            "video_url": format!("{}/uploads/{id}.{ext}", app.public_url),
            "filename": filename,
            "size": size,
            "content_type": content_type,
        }));
    }
}

/// Streams one field to `path`: (bytes, first 64 KiB).
async fn receive(
    ctx: &Ctx,
    mut field: axum::extract::multipart::Field<'_>,
    path: &std::path::Path,
    limit: u64,
) -> Result<(u64, Vec<u8>), ApiError> {
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| ApiError::internal(ctx, e))?;
    let mut size = 0u64;
    let mut head = Vec::new();
    let too_large = || {
        ApiError::new(
            ctx,
            400,
            "file_too_large",
            format!("file too large: the limit is {limit} bytes"),
        )
    };
    loop {
        let chunk: Option<Bytes> = field.chunk().await.map_err(|e| {
            if e.to_string().contains("limit") {
                too_large()
            } else {
                ApiError::invalid(ctx, format!("the upload broke off: {e}"))
            }
        })?;
        let Some(chunk) = chunk else { break };
        size += chunk.len() as u64;
        if size > limit {
            // Read on a little, so the client hears why.
            let mut drained = 0;
            while let Ok(Some(c)) = field.chunk().await {
                drained += c.len();
                if drained > DRAIN_BYTES {
                    break;
                }
            }
            return Err(too_large());
        }
        if head.len() < 64 * 1024 {
            let n = (64 * 1024 - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..n]);
        }
        file.write_all(&chunk)
            .await
            .map_err(|e| ApiError::internal(ctx, e))?;
    }
    file.flush().await.map_err(|e| ApiError::internal(ctx, e))?;
    if size == 0 {
        return Err(ApiError::new(
            ctx,
            400,
            "invalid_file_type",
            "invalid file type: the upload is empty",
        ));
    }
    Ok((size, head))
}

// ---- jobs ----

/// An upload of this key named by a `/uploads/<id>.<ext>` URL.
fn own_upload(app: &App, key: &Key, url: &str) -> Result<Option<String>, rusqlite::Error> {
    let Ok(u) = reqwest::Url::parse(url) else {
        return Ok(None);
    };
    let Some(name) = u.path().strip_prefix("/uploads/") else {
        return Ok(None);
    };
    let id = name.split('.').next().unwrap_or_default();
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    Ok(app.store.upload(&key.id, id)?.map(|u| u.id))
}

fn check_credits(app: &App, ctx: &Ctx, key: &Key) -> Result<(), ApiError> {
    if let Some(left) = app
        .store
        .credits_left(key)
        .map_err(|e| ApiError::internal(ctx, e))?
        && left <= 0.0
    {
        return Err(ApiError::new(
            ctx,
            402,
            "insufficient_credits",
            format!("insufficient credits: this key has {left:.2} left"),
        ));
    }
    Ok(())
}

fn queue_full(app: &App, ctx: &Ctx, pool: Pool) -> ApiError {
    let q = app.queues.get(pool);
    ApiError::rate_limited(
        ctx,
        &format!(
            "the {} queue is full ({} jobs waiting); try again later",
            pool.name(),
            q.len()
        ),
        // About one job's time per worker; clients back off further.
        10,
    )
}

async fn create_job(State(app): State<Arc<App>>, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    let body = json_body(&ctx, req.into_body(), false).await?;
    let create = request::parse_create(&body).map_err(|r| ApiError::refused(&ctx, r))?;
    // A draft gets its background at start: the pair is checked then.
    let format = match create.settings.resolved_format(app.ffmpeg) {
        Ok(f) => f.to_owned(),
        Err(_) if !create.auto_start => create
            .settings
            .output_format
            .clone()
            .unwrap_or_else(|| "webm".into()),
        Err(r) => return Err(ApiError::refused(&ctx, r)),
    };
    let upload_id =
        own_upload(&app, &key, &create.video_url).map_err(|e| ApiError::internal(&ctx, e))?;
    if upload_id.is_none()
        && create.video_url.contains("/uploads/")
        && create.video_url.starts_with(&app.public_url)
    {
        return Err(ApiError::invalid(
            &ctx,
            "video_url names no upload of this key",
        ));
    }
    check_credits(&app, &ctx, &key)?;
    let status = if create.auto_start {
        "pending"
    } else {
        "created"
    };
    let job = Job {
        id: crypto::new_id("job"),
        key_id: key.id.clone(),
        request_id: ctx.request_id.clone(),
        video_url: create.video_url.clone(),
        upload_id,
        status: status.into(),
        settings: create.settings.to_json().to_string(),
        model: create.settings.model.clone(),
        output_format: format,
        webhook_url: create.webhook_url.clone(),
        metadata: create.metadata.as_ref().map(Value::to_string),
        created_at: store::now(),
        queued_at: create.auto_start.then(store::now),
        ..Job::default()
    };
    ctx.job(&job.id);
    app.store
        .insert_job(&job)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    if create.auto_start {
        let pool = Pool::for_model(&job.model);
        if app.queues.get(pool).push(job.id.clone()).is_err() {
            let _ = app.store.delete_job(&job.id);
            return Err(queue_full(&app, &ctx, pool));
        }
    }
    app.transition(&job, "-", status, &[]);
    ok(json!({
        "success": true,
        "id": job.id,
        "job_id": job.id,
        "status": status,
        "message": if create.auto_start { "job queued" } else { "draft job created; start it with POST /v1/jobs/{id}/start" },
    }))
}

async fn start_job(State(app): State<Arc<App>>, Path(id): Path<String>, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    ctx.job(&id);
    let body = json_body(&ctx, req.into_body(), true).await?;
    let job = app
        .store
        .job_for_key(&key.id, &id)
        .map_err(|e| ApiError::internal(&ctx, e))?
        .ok_or_else(|| ApiError::not_found(&ctx))?;
    if !matches!(job.status.as_str(), "created" | "failed") {
        let why = if job.status == "completed" {
            "the job is completed; create a new job to run it again"
        } else {
            "the job is already queued or processing"
        };
        return Err(ApiError::new(&ctx, 409, "invalid_state", why));
    }
    let stored: Value =
        serde_json::from_str(&job.settings).map_err(|e| ApiError::internal(&ctx, e))?;
    let mut settings =
        request::Settings::from_json(&stored).map_err(|r| ApiError::refused(&ctx, r))?;
    request::parse_start(&body, &mut settings).map_err(|r| ApiError::refused(&ctx, r))?;
    let format = settings
        .resolved_format(app.ffmpeg)
        .map_err(|r| ApiError::refused(&ctx, r))?
        .to_owned();
    check_credits(&app, &ctx, &key)?;
    let queued = app
        .store
        .queue_job(
            &id,
            &settings.to_json().to_string(),
            &settings.model,
            &format,
        )
        .map_err(|e| ApiError::internal(&ctx, e))?;
    if !queued {
        return Err(ApiError::new(
            &ctx,
            409,
            "invalid_state",
            "the job is already queued or processing",
        ));
    }
    let pool = Pool::for_model(&settings.model);
    if app.queues.get(pool).push(id.clone()).is_err() {
        let _ = app.store.unqueue_job(&id, &job.status);
        return Err(queue_full(&app, &ctx, pool));
    }
    app.transition(
        &job,
        &job.status,
        "pending",
        &[("started_by", &ctx.request_id)],
    );
    ok(
        json!({"success": true, "id": id, "job_id": id, "status": "pending", "message": "job queued"}),
    )
}

async fn get_job(State(app): State<Arc<App>>, Path(id): Path<String>, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    ctx.job(&id);
    let job = app
        .store
        .job_for_key(&key.id, &id)
        .map_err(|e| ApiError::internal(&ctx, e))?
        .ok_or_else(|| ApiError::not_found(&ctx))?;
    ok(app.job_json(&job))
}

fn int_param(
    ctx: &Ctx,
    q: &std::collections::HashMap<String, String>,
    name: &str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ApiError> {
    match q.get(name) {
        None => Ok(default),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| (min..=max).contains(n))
            .ok_or_else(|| {
                ApiError::invalid(
                    ctx,
                    format!("{name} must be a whole number within {min}..{max}, found `{v}`"),
                )
            }),
    }
}

type Params = Query<std::collections::HashMap<String, String>>;

async fn list_jobs(State(app): State<Arc<App>>, Query(q): Params, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    let limit = int_param(&ctx, &q, "limit", 20, 1, 100)?;
    let offset = int_param(&ctx, &q, "offset", 0, 0, i64::MAX)?;
    let status = q.get("status").map(String::as_str);
    if let Some(s) = status
        && !["created", "pending", "processing", "completed", "failed"].contains(&s)
    {
        return Err(ApiError::invalid(
            &ctx,
            format!("status `{s}` is not one of created, pending, processing, completed, failed"),
        ));
    }
    let (jobs, total) = app
        .store
        .list_jobs(&key.id, status, limit, offset)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    let items: Vec<Value> = jobs.iter().map(|j| app.job_json(j)).collect();
    ok(json!({"items": items, "total": total, "limit": limit, "offset": offset}))
}

async fn usage_summary(State(app): State<Arc<App>>, Query(q): Params, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    let days = int_param(&ctx, &q, "days", 7, 1, 90)?;
    let mut v = app
        .store
        .usage_summary(&key.id, days)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    if let Some(left) = app
        .store
        .credits_left(&key)
        .map_err(|e| ApiError::internal(&ctx, e))?
    {
        v["credits_remaining"] = json!(store::round2(left));
    }
    ok(v)
}

async fn usage_events(State(app): State<Arc<App>>, Query(q): Params, req: Request) -> Answer {
    let ctx = ctx_of(&req);
    let key = auth(&app, &ctx, req.headers())?;
    let limit = int_param(&ctx, &q, "limit", 20, 1, 100)?;
    let items = app
        .store
        .usage_events(&key.id, limit)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    ok(json!({"items": items, "limit": limit}))
}

// ---- outputs, health, metrics ----

async fn output(
    State(app): State<Arc<App>>,
    Path((job_id, file)): Path<(String, String)>,
    Query(q): Params,
    req: Request,
) -> Answer {
    let ctx = ctx_of(&req);
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
    let path = app.outputs_dir().join(&file);
    let f = tokio::fs::File::open(&path)
        .await
        .map_err(|_| ApiError::new(&ctx, 404, "not_found", "output not found"))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| ApiError::internal(&ctx, e))?
        .len();
    let (_, mime) = rbv_runner::output_kind(&job.output_format);
    let stream = futures_util::stream::unfold(f, |mut f| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 256 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(Bytes::from(buf)), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
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

async fn health(State(app): State<Arc<App>>) -> Response {
    let db = app.store.ping().is_ok();
    let storage = app.outputs_dir().is_dir() && app.uploads_dir().is_dir();
    let pool = |p: Pool| {
        let q = app.queues.get(p);
        json!({"workers": q.workers, "busy": q.busy.load(std::sync::atomic::Ordering::Relaxed), "depth": q.len()})
    };
    let workers = app.queues.heavy.workers > 0 && app.queues.light.workers > 0;
    let healthy = db && storage && workers;
    let body = json!({
        "status": if healthy { "healthy" } else { "degraded" },
        "checks": {
            "database": if db { "ok" } else { "failing" },
            "storage": if storage { "ok" } else { "missing" },
            "ffmpeg": if app.ffmpeg { "ok" } else { "missing: no webm with alpha, gif or webp" },
            "queues": {"heavy": pool(Pool::Heavy), "light": pool(Pool::Light)},
        }
    });
    let status = if db && storage {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, json_response(&body)).into_response()
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
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
    }
}
