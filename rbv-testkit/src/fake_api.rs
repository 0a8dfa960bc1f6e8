// SPDX-License-Identifier: MPL-2.0
//! A stand-in for the hosted `/v1` service (out of reach from tests), over
//! real HTTP on 127.0.0.1. It speaks the documented contract with its quirks:
//! ids as `id` or `job_id`, drafts as `created` or `pending`, errors as an
//! object or a plain string; `X-Request-Id` on every answer. Faults are
//! scripted per route and used up one per request.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// One scripted misbehaviour.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer this status with the documented error body.
    Status(u16),
    /// 429 with `Retry-After: N`.
    RateLimited(u64),
    /// An answer that is not JSON.
    Malformed,
    /// Say nothing for this long.
    Stall(Duration),
    /// Download only: 403 as an expired signed link would.
    Expired,
    /// Download only: send half the bytes with the full Content-Length.
    Truncate,
    /// Redirect to another host.
    RedirectElsewhere,
    /// Redirect to this URL (a recorder of what a client would send there).
    RedirectTo(String),
}

/// How the service behaves.
#[derive(Clone)]
pub struct Behaviour {
    pub key: String,
    /// The output file served for completed jobs.
    pub output: Vec<u8>,
    /// Polls answered `processing` before the job is done.
    pub polls: u32,
    /// The job ends `failed` with this error.
    pub fail_with: Option<String>,
    /// The other documented forms: `job_id` for `id`, `pending` for
    /// `created`, errors as plain strings.
    pub alt_forms: bool,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub key: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    faults: HashMap<&'static str, VecDeque<Fault>>,
    jobs: HashMap<String, JobRec>,
    seen: Vec<Seen>,
    uploads: Vec<(String, usize, String)>,
    next: u32,
    requests: u32,
}

#[derive(Clone)]
struct JobRec {
    video_url: String,
    status: &'static str,
    polls_left: u32,
    sig: u32,
    started_with: Value,
}

#[derive(Clone)]
struct Ctx {
    behaviour: Arc<Behaviour>,
    inner: Arc<Mutex<Inner>>,
    base: String,
}

pub struct FakeApi {
    pub url: String,
    ctx: Ctx,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl FakeApi {
    pub fn start(behaviour: Behaviour) -> FakeApi {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let url = format!("http://{addr}");
        let ctx = Ctx {
            behaviour: Arc::new(behaviour),
            inner: Arc::new(Mutex::new(Inner::default())),
            base: url.clone(),
        };
        let app = Router::new()
            .route("/v1/uploads", post(upload))
            .route("/v1/jobs", post(create).get(list))
            .route("/v1/jobs/{id}", get(job))
            .route("/v1/jobs/{id}/start", post(start))
            .route("/v1/usage/summary", get(usage))
            .route("/files/{id}/output", get(download))
            .with_state(ctx.clone());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        FakeApi {
            url,
            ctx,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Queues faults for a route: upload, create, start, get, download.
    pub fn fault(&self, route: &'static str, faults: &[Fault]) {
        let mut inner = self.ctx.inner.lock().unwrap();
        inner
            .faults
            .entry(route)
            .or_default()
            .extend(faults.iter().cloned());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.ctx.inner.lock().unwrap().seen.clone()
    }

    /// The `POST /v1/jobs` (create) requests so far, in order.
    pub fn creates(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.path == "/v1/jobs")
            .collect()
    }

    /// The `POST /v1/jobs/{id}/start` requests so far, in order.
    pub fn starts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST" && s.path.ends_with("/start"))
            .collect()
    }

    pub fn requests(&self) -> u32 {
        self.ctx.inner.lock().unwrap().requests
    }

    /// (stored name, size, declared content type) of each upload.
    pub fn uploads(&self) -> Vec<(String, usize, String)> {
        self.ctx.inner.lock().unwrap().uploads.clone()
    }
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn request_id(inner: &mut Inner) -> String {
    inner.next += 1;
    format!("req_{:06}", inner.next)
}

fn answer(status: u16, body: Value, rid: &str) -> Response {
    let mut r = (
        StatusCode::from_u16(status).unwrap(),
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response();
    r.headers_mut().insert("x-request-id", rid.parse().unwrap());
    r
}

fn error(ctx: &Ctx, status: u16, code: &str, message: &str, rid: &str) -> Response {
    let body = if ctx.behaviour.alt_forms {
        json!({"error": message})
    } else {
        json!({"error": {"code": code, "message": message, "request_id": rid}})
    };
    answer(status, body, rid)
}

/// Records the request, checks the key, and plays a queued fault if any.
async fn enter(
    ctx: &Ctx,
    route: &'static str,
    method: &str,
    path: String,
    headers: &HeaderMap,
    body: Value,
    needs_key: bool,
) -> Result<String, Response> {
    let key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (rid, fault) = {
        let mut inner = ctx.inner.lock().unwrap();
        inner.requests += 1;
        inner.seen.push(Seen {
            method: method.into(),
            path,
            key: key.clone(),
            body,
        });
        let rid = request_id(&mut inner);
        let fault = inner.faults.get_mut(route).and_then(VecDeque::pop_front);
        (rid, fault)
    };
    if let Some(fault) = fault {
        match fault {
            Fault::Status(s) => {
                let (code, msg) = match s {
                    400 => ("invalid_request", "Invalid request"),
                    401 => ("invalid_api_key", "Invalid API key"),
                    402 => ("insufficient_credits", "Not enough credits for this job"),
                    404 => ("not_found", "Job not found"),
                    500 => ("internal_error", "Processing failed"),
                    _ => ("unavailable", "Service unavailable"),
                };
                return Err(error(ctx, s, code, msg, &rid));
            }
            Fault::RateLimited(secs) => {
                let mut r = error(ctx, 429, "rate_limited", "Too many requests", &rid);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, secs.to_string().parse().unwrap());
                return Err(r);
            }
            Fault::Malformed => {
                let mut r = (StatusCode::OK, "{\"id\": \"job_1\", \"status\": ").into_response();
                r.headers_mut().insert("x-request-id", rid.parse().unwrap());
                return Err(r);
            }
            Fault::Stall(d) => tokio::time::sleep(d).await,
            Fault::RedirectElsewhere => {
                return Err((
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "http://127.0.0.2:9/steal")],
                )
                    .into_response());
            }
            Fault::RedirectTo(url) => {
                return Err(
                    (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, url)]).into_response()
                );
            }
            Fault::Expired | Fault::Truncate => unreachable!("download faults"),
        }
    }
    if needs_key {
        match key {
            None => return Err(error(ctx, 401, "missing_api_key", "Missing API key", &rid)),
            Some(k) if k != ctx.behaviour.key => {
                return Err(error(ctx, 401, "invalid_api_key", "Invalid API key", &rid));
            }
            Some(_) => {}
        }
    }
    Ok(rid)
}

async fn upload(State(ctx): State<Ctx>, headers: HeaderMap, mut form: Multipart) -> Response {
    let rid = match enter(
        &ctx,
        "upload",
        "POST",
        "/v1/uploads".into(),
        &headers,
        Value::Null,
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => {
            // The body is read before a refusal is sent: answering first and
            // closing with unread bytes resets the connection, and the
            // client then sees a network error (and retries) instead of the
            // refusal, by chance.
            while let Ok(Some(field)) = form.next_field().await {
                let _ = field.bytes().await;
            }
            return r;
        }
    };
    let mut file = None;
    while let Ok(Some(field)) = form.next_field().await {
        if field.name() == Some("file") {
            let name = field.file_name().unwrap_or("").to_owned();
            let ctype = field.content_type().unwrap_or("").to_owned();
            let bytes = field.bytes().await.unwrap_or_default();
            file = Some((name, bytes.len(), ctype));
        }
    }
    let Some((name, size, ctype)) = file else {
        return error(&ctx, 400, "invalid_request", "No file field", &rid);
    };
    if !matches!(
        ctype.as_str(),
        "video/mp4" | "video/quicktime" | "video/webm" | "video/x-msvideo"
    ) {
        return error(&ctx, 400, "invalid_file_type", "Invalid file type", &rid);
    }
    let id = uuid(&ctx);
    ctx.inner
        .lock()
        .unwrap()
        .uploads
        .push((name.clone(), size, ctype));
    answer(
        200,
        json!({"success": true, "video_id": id, "video_url": format!("https://uploads.example/{id}.mp4"),
               "filename": name, "size": size}),
        &rid,
    )
}

fn uuid(ctx: &Ctx) -> String {
    let mut inner = ctx.inner.lock().unwrap();
    inner.next += 1;
    format!("9b2c0c7e-0000-4000-8000-{:012}", inner.next)
}

async fn create(State(ctx): State<Ctx>, headers: HeaderMap, body: Bytes) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let rid = match enter(
        &ctx,
        "create",
        "POST",
        "/v1/jobs".into(),
        &headers,
        v.clone(),
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let Some(video_url) = v.get("video_url").and_then(Value::as_str) else {
        return error(&ctx, 400, "invalid_request", "video_url is required", &rid);
    };
    let draft = v.get("auto_start") == Some(&Value::Bool(false));
    let status = match (draft, ctx.behaviour.alt_forms) {
        (true, false) => "created",
        (true, true) => "pending",
        (false, _) => "processing",
    };
    let id = {
        let mut inner = ctx.inner.lock().unwrap();
        inner.next += 1;
        let id = format!("job_{:04}", inner.next);
        inner.jobs.insert(
            id.clone(),
            JobRec {
                video_url: video_url.into(),
                status,
                polls_left: ctx.behaviour.polls,
                sig: 1,
                started_with: Value::Null,
            },
        );
        id
    };
    let id_key = if ctx.behaviour.alt_forms {
        "job_id"
    } else {
        "id"
    };
    answer(
        200,
        json!({"success": true, id_key: id, "status": status, "message": "Job created"}),
        &rid,
    )
}

async fn start(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let path = format!("/v1/jobs/{id}/start");
    let rid = match enter(&ctx, "start", "POST", path, &headers, v.clone(), true).await {
        Ok(r) => r,
        Err(r) => return r,
    };
    if v.get("output_format").and_then(Value::as_str) == Some("mp4")
        && v.pointer("/background/type").and_then(Value::as_str) == Some("transparent")
    {
        return error(
            &ctx,
            422,
            "invalid_request",
            "mp4 cannot be transparent",
            &rid,
        );
    }
    let mut inner = ctx.inner.lock().unwrap();
    let Some(job) = inner.jobs.get_mut(&id) else {
        drop(inner);
        return error(&ctx, 404, "not_found", "Job not found", &rid);
    };
    job.status = "processing";
    job.started_with = v;
    answer(
        200,
        json!({"success": true, "id": id, "status": "processing"}),
        &rid,
    )
}

fn job_json(ctx: &Ctx, id: &str, job: &JobRec) -> Value {
    let done = job.status == "completed";
    let progress = match job.status {
        "completed" => 100,
        "processing" => 100 * (ctx.behaviour.polls - job.polls_left) / (ctx.behaviour.polls + 1),
        _ => 0,
    };
    json!({
        "id": id, "status": job.status, "progress": progress,
        "output_url": done.then(|| format!("{}/files/{id}/output?sig={}", ctx.base, job.sig)),
        "error": (job.status == "failed").then(|| ctx.behaviour.fail_with.clone()),
        "created_at": "2026-11-27T10:00:00Z", "duration_seconds": done.then_some(1.0),
        "billing_status": done.then_some("charged"), "webhook_url": null, "webhook_events": [],
        "video_url": job.video_url,
    })
}

async fn job(State(ctx): State<Ctx>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    let rid = match enter(
        &ctx,
        "get",
        "GET",
        format!("/v1/jobs/{id}"),
        &headers,
        Value::Null,
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let mut inner = ctx.inner.lock().unwrap();
    let Some(job) = inner.jobs.get_mut(&id) else {
        drop(inner);
        return error(&ctx, 404, "not_found", "Job not found", &rid);
    };
    if job.status == "processing" {
        if job.polls_left == 0 {
            job.status = if ctx.behaviour.fail_with.is_some() {
                "failed"
            } else {
                "completed"
            };
        } else {
            job.polls_left -= 1;
        }
    }
    let job = job.clone();
    drop(inner);
    answer(200, job_json(&ctx, &id, &job), &rid)
}

async fn list(
    State(ctx): State<Ctx>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let rid = match enter(
        &ctx,
        "list",
        "GET",
        "/v1/jobs".into(),
        &headers,
        json!(q),
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    let inner = ctx.inner.lock().unwrap();
    let items: Vec<Value> = inner
        .jobs
        .iter()
        .map(|(id, j)| job_json(&ctx, id, j))
        .collect();
    let total = items.len();
    answer(
        200,
        json!({"items": items, "total": total, "limit": 20, "offset": 0}),
        &rid,
    )
}

async fn usage(State(ctx): State<Ctx>, headers: HeaderMap) -> Response {
    let rid = match enter(
        &ctx,
        "usage",
        "GET",
        "/v1/usage/summary".into(),
        &headers,
        Value::Null,
        true,
    )
    .await
    {
        Ok(r) => r,
        Err(r) => return r,
    };
    answer(
        200,
        json!({"total_jobs": 1, "completed_jobs": 1, "credits_used": 45}),
        &rid,
    )
}

async fn download(
    State(ctx): State<Ctx>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let path = format!("/files/{id}/output");
    let fault = {
        let mut inner = ctx.inner.lock().unwrap();
        inner.requests += 1;
        inner.seen.push(Seen {
            method: "GET".into(),
            path,
            key: headers
                .get("x-api-key")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: json!(q),
        });
        let fault = inner
            .faults
            .get_mut("download")
            .and_then(VecDeque::pop_front);
        let current = inner.jobs.get(&id).map(|j| j.sig);
        let asked = q.get("sig").and_then(|s| s.parse().ok());
        if current.is_none() || current != asked {
            return StatusCode::FORBIDDEN.into_response();
        }
        if matches!(fault, Some(Fault::Expired)) {
            // The link expired: the job hands out a fresh one.
            inner.jobs.get_mut(&id).unwrap().sig += 1;
        }
        fault
    };
    let bytes = ctx.behaviour.output.clone();
    match fault {
        Some(Fault::Expired) => StatusCode::FORBIDDEN.into_response(),
        Some(Fault::Truncate) => {
            let half = Bytes::from(bytes[..bytes.len() / 2].to_vec());
            let stream = futures_stream(half);
            Response::builder()
                .status(200)
                .header(header::CONTENT_LENGTH, bytes.len())
                .header(header::CONTENT_TYPE, "video/webm")
                .body(Body::from_stream(stream))
                .unwrap()
        }
        Some(Fault::Stall(d)) => {
            tokio::time::sleep(d).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Fault::Status(s)) => StatusCode::from_u16(s).unwrap().into_response(),
        _ => Response::builder()
            .status(200)
            .header(header::CONTENT_TYPE, "video/webm")
            .body(Body::from(bytes))
            .unwrap(),
    }
}

/// A body that sends `bytes` and then fails, so the connection closes early.
fn futures_stream(bytes: Bytes) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> {
    futures_util::stream::iter(vec![Ok(bytes), Err(std::io::Error::other("cut"))])
}
