// SPDX-License-Identifier: MPL-2.0
//! The job routes: create, start, read, list; and the key's usage.

use std::sync::Arc;

use axum::extract::{Path, Query, Request, State};
use rbv_api::JobStatus;
use serde_json::{Value, json};

use super::{Answer, ApiError, Caller, Ctx, json_body, ok};
use crate::queue::Pool;
use crate::request;
use crate::store::{self, Job, Key};
use crate::{App, budget, crypto};

/// An upload of this key named by a `/uploads/<id>.<ext>` URL.
fn own_upload(app: &App, key: &Key, url: &str) -> Result<Option<String>, crate::store::Error> {
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

/// Holds the credits an upload's job needs (from its packets, measured at
/// upload) before it is queued; jobs on a `video_url` elsewhere hold theirs
/// once the file is fetched, before a frame is decoded.
fn reserve(app: &App, ctx: &Ctx, job: &Job) -> Result<(), ApiError> {
    let Some(upload_id) = &job.upload_id else {
        return Ok(());
    };
    let Some(u) = app
        .store
        .upload(&job.key_id, upload_id)
        .map_err(|e| ApiError::internal(ctx, e))?
    else {
        return Err(ApiError::invalid(
            ctx,
            "the uploaded video is gone (removed after the retention period)",
        ));
    };
    let secs = budget::billed_seconds(u.seconds, u.frames.max(0) as u64);
    let need = budget::credits(job.model, secs);
    if app
        .store
        .reserve(&job.id, need, secs)
        .map_err(|e| ApiError::internal(ctx, e))?
    {
        return Ok(());
    }
    Err(ApiError::new(
        ctx,
        402,
        "insufficient_credits",
        format!(
            "insufficient credits: this video needs {need:.2} ({secs:.2} s with {}); the key has fewer left after its running jobs",
            job.model
        ),
    ))
}

/// The composition's canvas within `--max-canvas-pixels`.
fn check_canvas(app: &App, ctx: &Ctx, settings: &request::Settings) -> Result<(), ApiError> {
    match &settings.composition {
        Some(c) => budget::check_canvas(&app.config, c).map_err(|m| ApiError::invalid(ctx, m)),
        None => Ok(()),
    }
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

pub async fn create_job(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    req: Request,
) -> Answer {
    let body = json_body(&ctx, req.into_body(), false).await?;
    let create = request::parse_create(&body).map_err(|r| ApiError::refused(&ctx, r))?;
    // A draft gets its background at start: the pair is checked then.
    let format = match create.settings.resolved_format(app.ffmpeg) {
        Ok(f) => f,
        Err(_) if !create.auto_start => create.settings.output_format.unwrap_or_default(),
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
    check_canvas(&app, &ctx, &create.settings)?;
    let pool = Pool::for_model(create.settings.model);
    if create.auto_start && !app.queues.get(pool).has_room() {
        return Err(queue_full(&app, &ctx, pool));
    }
    let status = if create.auto_start {
        JobStatus::Pending
    } else {
        JobStatus::Created
    };
    let job = Job {
        id: crypto::new_id("job"),
        key_id: key.id.clone(),
        request_id: ctx.request_id.clone(),
        video_url: create.video_url.clone(),
        upload_id,
        // Queued below, once its credits are held: a worker of any node
        // may take it the moment it is pending.
        status: JobStatus::Created,
        settings: create.settings.to_json().to_string(),
        model: create.settings.model,
        output_format: format,
        webhook_url: create.webhook_url.clone(),
        metadata: create.metadata.as_ref().map(Value::to_string),
        created_at: store::now(),
        ..Job::default()
    };
    ctx.job(&job.id);
    app.store
        .insert_job(&job)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    if create.auto_start {
        if let Err(e) = reserve(&app, &ctx, &job) {
            let _ = app.store.delete_job(&job.id);
            return Err(e);
        }
        let queued = app
            .store
            .queue_job(&job.id, &job.settings, job.model, job.output_format);
        if !matches!(queued, Ok(true)) {
            // Nothing half-made stays: the hold is given back, the draft gone.
            let _ = app.store.release_reservation(&job.id);
            let _ = app.store.delete_job(&job.id);
            return Err(match queued {
                Err(e) => ApiError::internal(&ctx, e),
                Ok(_) => ApiError::internal(&ctx, "a new job could not be queued"),
            });
        }
        app.queues.get(pool).wake();
    }
    app.transition(&job, "-", status.as_str(), &[]);
    let mut warnings = create.warnings.clone();
    warnings.extend(create.settings.warnings(format));
    log_warnings(&job.id, &ctx.request_id, &warnings);
    ok(json!({
        "success": true,
        "id": job.id,
        "job_id": job.id,
        "status": status.as_str(),
        "message": if create.auto_start { "job queued" } else { "draft job created; start it with POST /v1/jobs/{id}/start" },
        "warnings": warnings,
    }))
}

/// What a request asked that the job will not do, one log line each.
fn log_warnings(job_id: &str, request_id: &str, warnings: &[String]) {
    for w in warnings {
        crate::log::line(&[
            ("event", "warning"),
            ("job_id", job_id),
            ("request_id", request_id),
            ("warning", w),
        ]);
    }
}

pub async fn start_job(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    Path(id): Path<String>,
    req: Request,
) -> Answer {
    ctx.job(&id);
    let body = json_body(&ctx, req.into_body(), true).await?;
    let job = app
        .store
        .job_for_key(&key.id, &id)
        .map_err(|e| ApiError::internal(&ctx, e))?
        .ok_or_else(|| ApiError::not_found(&ctx))?;
    if !matches!(job.status, JobStatus::Created | JobStatus::Failed) {
        let why = if job.status == JobStatus::Completed {
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
    let mut warnings =
        request::parse_start(&body, &mut settings).map_err(|r| ApiError::refused(&ctx, r))?;
    let format = settings
        .resolved_format(app.ffmpeg)
        .map_err(|r| ApiError::refused(&ctx, r))?;
    check_credits(&app, &ctx, &key)?;
    check_canvas(&app, &ctx, &settings)?;
    // A refused start leaves the job as it was, its error included.
    let pool = Pool::for_model(settings.model);
    if !app.queues.get(pool).has_room() {
        return Err(queue_full(&app, &ctx, pool));
    }
    let queued_job = Job {
        model: settings.model,
        ..job.clone()
    };
    reserve(&app, &ctx, &queued_job)?;
    let queued = app
        .store
        .queue_job(&id, &settings.to_json().to_string(), settings.model, format)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    if !queued {
        let _ = app.store.release_reservation(&id);
        return Err(ApiError::new(
            &ctx,
            409,
            "invalid_state",
            "the job is already queued or processing",
        ));
    }
    app.queues.get(pool).wake();
    app.transition(
        &job,
        job.status.as_str(),
        JobStatus::Pending.as_str(),
        &[("started_by", &ctx.request_id)],
    );
    warnings.extend(settings.warnings(format));
    log_warnings(&id, &ctx.request_id, &warnings);
    ok(
        json!({"success": true, "id": id, "job_id": id, "status": "pending",
        "message": "job queued", "warnings": warnings}),
    )
}

pub async fn get_job(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    Path(id): Path<String>,
) -> Answer {
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

pub async fn list_jobs(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    Query(q): Params,
) -> Answer {
    let limit = int_param(&ctx, &q, "limit", 20, 1, 100)?;
    let offset = int_param(&ctx, &q, "offset", 0, 0, i64::MAX)?;
    let status = q
        .get("status")
        .map(|s| JobStatus::known(s))
        .transpose()
        .map_err(|e| ApiError::invalid(&ctx, e))?;
    let (jobs, total) = app
        .store
        .list_jobs(&key.id, status.as_ref(), limit, offset)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    let items: Vec<Value> = jobs.iter().map(|j| app.job_json(j)).collect();
    ok(json!({"items": items, "total": total, "limit": limit, "offset": offset}))
}

pub async fn usage_summary(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    Query(q): Params,
) -> Answer {
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

pub async fn usage_events(
    State(app): State<Arc<App>>,
    Caller { key, ctx }: Caller,
    Query(q): Params,
) -> Answer {
    let limit = int_param(&ctx, &q, "limit", 20, 1, 100)?;
    let items = app
        .store
        .usage_events(&key.id, limit)
        .map_err(|e| ApiError::internal(&ctx, e))?;
    ok(json!({"items": items, "limit": limit}))
}
