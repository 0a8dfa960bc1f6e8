// SPDX-License-Identifier: MPL-2.0
//! The workers: each takes queued jobs of its pool one after another, runs
//! them through `rbv-runner` on a blocking thread, and records the outcome
//! (charged once, on completion), with the job's webhook told.

use std::path::Path;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use crate::queue::Pool;
use crate::request::{Background, Settings};
use crate::store::{self, Claimed, ClaimedSegment, Completion, Job};
use crate::{App, budget, egress, log};

mod segments;
pub(crate) use segments::release_spent_segments;
use segments::{coordinate, run_segment, segment_plan};

/// One worker of `pool`: takes queued jobs one after another, from the
/// store (so from any node), and holds a lease on each while it works.
pub async fn run(app: Arc<App>, pool: Pool, name: String) {
    let queue = app.queues.get(pool);
    // Idle, a worker looks for jobs whose lease ran out this often, besides
    // waking when a job is queued.
    let idle = Duration::from_secs((app.store.lease_seconds() as u64 / 2).max(1));
    loop {
        // A long job's segments first: their job is under way.
        match app
            .store
            .claim_segment(pool.name(), None, app.config.max_attempts)
        {
            Ok(ClaimedSegment::Segment(segment)) => {
                queue.busy.fetch_add(1, Ordering::Relaxed);
                run_segment(&app, *segment, &name, None).await;
                queue.busy.fetch_sub(1, Ordering::Relaxed);
                continue;
            }
            Ok(ClaimedSegment::GaveUp(id)) => {
                log::line(&[
                    ("event", "segment"),
                    ("job_id", &id),
                    ("to", "failed"),
                    ("error", "its lease ran out max-attempts times"),
                ]);
                continue;
            }
            // Nothing, or the store is failing: the job claim says which.
            _ => {}
        }
        let job = match app.store.claim_next(pool.name(), app.config.max_attempts) {
            Ok(Claimed::Job(job)) => *job,
            Ok(Claimed::GaveUp(id)) => {
                release_spent_segments(&app, &id).await;
                log::line(&[
                    ("event", "job"),
                    ("job_id", &id),
                    ("to", "failed"),
                    ("error", "its lease ran out max-attempts times"),
                ]);
                app.metrics.job_finished("-", "failed");
                app.notify(&id, "job.failed");
                continue;
            }
            Ok(Claimed::Nothing) => {
                queue.wait(idle).await;
                continue;
            }
            Err(e) => {
                // The store is failing: claim nothing until it answers.
                log::line(&[
                    ("event", "claim"),
                    ("worker", &name),
                    ("error", &e.to_string()),
                ]);
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        // Set when the lease is lost: the run ends early (its result would
        // not be recorded).
        let stop = Arc::new(AtomicBool::new(false));
        let renewer = {
            let (id, attempt) = (job.id.clone(), job.attempts);
            tokio::spawn(keep_lease(
                app.clone(),
                job.id.clone(),
                stop.clone(),
                move |app| app.store.renew_lease(&id, attempt),
            ))
        };
        queue.busy.fetch_add(1, Ordering::Relaxed);
        app.transition(
            &job,
            "pending",
            "processing",
            &[("attempt", &job.attempts.to_string()), ("worker", &name)],
        );
        app.notify(&job.id, "job.started");
        let started = Instant::now();
        let mut segmented = false;
        let result = run_job(&app, &job, stop, &name, &mut segmented).await;
        renewer.abort();
        let secs = started.elapsed().as_secs_f64();
        queue.busy.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok((outcome, file, billed)) => {
                let resolution = format!("{}x{}", outcome.width, outcome.height);
                // Billed from what the pipeline measured, never a header's claim.
                let credits = budget::credits(job.model, billed);
                let done = Completion {
                    output_file: &file,
                    duration_seconds: store::round2(billed),
                    credits,
                    processing_ms: (secs * 1000.0) as i64,
                    resolution: &resolution,
                };
                match record(&app, &job, &done).await {
                    Some(true) => {}
                    Some(false) => {
                        // Another node took the job when this one's lease
                        // ran out: its run is the one recorded.
                        log::line(&[
                            ("event", "result_dropped"),
                            ("job_id", &job.id),
                            ("worker", &name),
                        ]);
                        // This run's own file (each run writes its own).
                        let _ = app.storage.delete_output(&file).await;
                        continue;
                    }
                    None => continue,
                }
                if segmented {
                    release_spent_segments(&app, &job.id).await;
                }
                app.metrics
                    .job_processed(job.model.as_str(), &resolution, secs);
                app.metrics.job_finished(job.model.as_str(), "completed");
                app.transition(
                    &job,
                    "processing",
                    "completed",
                    &[
                        ("resolution", &resolution),
                        ("frames", &outcome.frames.to_string()),
                        ("seconds", &format!("{secs:.3}")),
                        ("worker", &name),
                    ],
                );
                app.notify(&job.id, "job.completed");
            }
            Err(e) => {
                if !matches!(app.store.fail(&job.id, job.attempts, &e), Ok(true)) {
                    continue;
                }
                if segmented {
                    release_spent_segments(&app, &job.id).await;
                }
                app.metrics.job_finished(job.model.as_str(), "failed");
                app.transition(&job, "processing", "failed", &[("error", &e)]);
                app.notify(&job.id, "job.failed");
            }
        }
    }
}

/// Records a finished run: whether it is the job's result (`Some(false)`:
/// another run's is). While the store does not answer, tries again (1 s,
/// doubling to 30 s) for up to ten minutes: the run's file stays, since a
/// commit whose answer was lost may have recorded it. `None`: not known.
async fn record(app: &App, job: &Job, done: &Completion<'_>) -> Option<bool> {
    recorded(("complete", &job.id), done.output_file, || {
        app.store.complete(&job.id, job.attempts, done)
    })
    .await
}

/// Runs a store call that records a run's result until the store answers
/// (1 s, doubling to 30 s, for up to ten minutes; each failure logged as
/// `event`); `None` when it never did: the run's `file` is left.
async fn recorded(
    (event, job_id): (&str, &str),
    file: &str,
    mut call: impl FnMut() -> store::Result<bool>,
) -> Option<bool> {
    let give_up = Instant::now() + Duration::from_secs(600);
    let mut wait = Duration::from_secs(1);
    loop {
        match call() {
            Ok(recorded) => return Some(recorded),
            Err(e) => {
                // The detail is for the operator's log, not the client.
                log::line(&[
                    ("event", event),
                    ("job_id", job_id),
                    ("error", &e.to_string()),
                ]);
                if Instant::now() + wait > give_up {
                    log::line(&[
                        ("event", event),
                        ("job_id", job_id),
                        ("output_file", file),
                        (
                            "error",
                            "not recorded after 10 minutes: it runs again when its lease runs out; this run's output file is left",
                        ),
                    ]);
                    return None;
                }
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// Renews a lease of this node's (`renew`: false when it is gone) every
/// third of its length while a run goes on; when it was lost (the job or
/// segment is another run's now) says so in the log and ends the run early:
/// its result would not be recorded.
async fn keep_lease(
    app: Arc<App>,
    what: String,
    stop: Arc<AtomicBool>,
    renew: impl Fn(&App) -> store::Result<bool> + Send + 'static,
) {
    let every = Duration::from_secs_f64(app.store.lease_seconds() as f64 / 3.0);
    loop {
        tokio::time::sleep(every).await;
        match renew(&app) {
            Ok(true) => {}
            Ok(false) => {
                log::line(&[("event", "lease_lost"), ("job_id", &what)]);
                stop.store(true, Ordering::Relaxed);
                return;
            }
            Err(e) => log::line(&[
                ("event", "lease_renewal"),
                ("job_id", &what),
                ("error", &e.to_string()),
            ]),
        }
    }
}

/// Fetches an http(s) resource to `path`: at most `limit` bytes (a larger
/// Content-Length is refused before a byte is read), within the egress
/// policy. `what` names it in errors, which never say what a server
/// answered (the log line does).
async fn fetch(
    app: &App,
    job: &Job,
    what: &str,
    url: &str,
    path: &Path,
    limit: u64,
) -> Result<(), String> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let detail = |d: String| {
        log::line(&[
            ("event", "fetch"),
            ("job_id", &job.id),
            ("what", what),
            ("host", &host),
            ("error", &d),
        ]);
    };
    if let Err(r) = reqwest::Url::parse(url)
        .map_err(|e| egress::Refused(e.to_string()))
        .and_then(|u| app.egress.check_url(&u))
    {
        return Err(format!("{what} at {host} is not fetched: {r}"));
    }
    let mut resp = app.fetcher.get(url).send().await.map_err(|e| {
        detail(e.to_string());
        egress::client_message(what, url, &e)
    })?;
    if !resp.status().is_success() {
        detail(format!("answered {}", resp.status()));
        return Err(egress::failed(what, &host));
    }
    let too_large =
        || format!("{what} at {host} is over {limit} bytes, the limit (--max-upload-mb)");
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut size = 0u64;
    loop {
        let chunk = resp.chunk().await.map_err(|e| {
            detail(e.to_string());
            egress::failed(what, &host)
        })?;
        let Some(chunk) = chunk else { break };
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        file.write_all(&chunk).await.map_err(|e| e.to_string())?;
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// A finished job: the runner's outcome, the output file, the seconds billed.
type Done = (rbv_runner::Outcome, String, f64);

fn job_settings(job: &Job) -> Result<Settings, String> {
    serde_json::from_str(&job.settings)
        .map_err(|e| e.to_string())
        .and_then(|v| Settings::from_json(&v).map_err(|r| r.message))
}

/// What the runner's failure tells the client.
fn runner_failure(f: rbv_runner::Failure, late: impl Fn(&str) -> String) -> String {
    match f {
        rbv_runner::Failure::Timeout(_) => late("processing"),
        rbv_runner::Failure::Limit(why) => format!("{why} (the job was stopped there)"),
        f if f.input_unreadable() => format!("the input video cannot be read: {f}"),
        f => f.to_string(),
    }
}

/// The job's background image fetched into `work`, when it has one.
async fn background_image(
    app: &App,
    job: &Job,
    settings: &Settings,
    work: &Path,
    deadline: tokio::time::Instant,
    late: impl Fn(&str) -> String,
) -> Result<Option<PathBuf>, String> {
    let Background::Image(url) = &settings.background else {
        return Ok(None);
    };
    let p = work.join("background");
    let limit = app.config.max_upload_bytes.min(50_000_000);
    tokio::time::timeout_at(
        deadline,
        fetch(app, job, "the background image", url, &p, limit),
    )
    .await
    .map_err(|_| late("fetching the background image"))??;
    budget::check_image(&app.config, &p)?;
    Ok(Some(p))
}

/// Runs one claimed job within one deadline (`--job-timeout`) covering the
/// download, the pipeline and the encoding. A long uploaded video is cut
/// into segments (`segmented` set), which this run coordinates and joins.
async fn run_job(
    app: &Arc<App>,
    job: &Job,
    stop: Arc<AtomicBool>,
    worker: &str,
    segmented: &mut bool,
) -> Result<Done, String> {
    let settings = job_settings(job)?;
    // One folder per run: a node whose lease ran out may still be busy
    // with the job's previous run.
    let work = app.work_dir().join(format!("{}-{}", job.id, job.attempts));
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| format!("{}: {e}", work.display()))?;
    let timeout = app.config.job_timeout;
    let deadline = tokio::time::Instant::now() + timeout;
    let late = move |during: &str| {
        format!(
            "the job took longer than {} s (--job-timeout) {during}",
            timeout.as_secs()
        )
    };
    let result = async {
        let upload = match &job.upload_id {
            Some(id) => Some(
                app.store
                    .upload(&job.key_id, id)
                    .map_err(|e| e.to_string())?
                    .ok_or("the uploaded video is gone (removed after the retention period)")?,
            ),
            None => None,
        };
        let (fetched, probed) = match &upload {
            Some(u) => (None, (u.width as u64, u.height as u64, u.frames as u64, u.seconds)),
            None => {
                let p = work.join("input");
                let limit = app.config.max_upload_bytes;
                tokio::time::timeout_at(deadline, fetch(app, job, "video_url", &job.video_url, &p, limit))
                    .await
                    .map_err(|_| late("fetching video_url"))??;
                let head = read_head(&p).await?;
                if rbv_runner::sniff_video(&head).is_none() {
                    return Err(
                        "video_url is not a video this service takes (mp4, mov, webm, avi)"
                            .to_string(),
                    );
                }
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                let path = p.clone();
                let probe = tokio::task::spawn_blocking(move || rbv_runner::probe(&path, left))
                    .await
                    .map_err(|e| format!("processing stopped: {e}"))?
                    .map_err(|f| match f {
                        rbv_runner::Failure::Timeout(_) => late("reading video_url"),
                        f => format!("the input video cannot be read: {f}"),
                    })?;
                (Some(p), (u64::from(probe.width), u64::from(probe.height), probe.frames, probe.seconds))
            }
        };
        let (w, h, frames, seconds) = probed;
        budget::check_input(&app.config, w, h, frames, seconds)?;
        // Credits are held before a frame is decoded: at admission for an
        // upload, here for a video fetched from elsewhere.
        let held = match job.reserved_seconds {
            Some(s) => Some(s),
            None => {
                let secs = budget::billed_seconds(seconds, frames);
                let need = budget::credits(job.model, secs);
                if !app.store.reserve(&job.id, need, secs).map_err(|e| e.to_string())? {
                    return Err(format!(
                        "insufficient_credits: this video needs {need:.2} credits ({secs:.1} s with {}); the key has fewer left",
                        job.model
                    ));
                }
                Some(secs)
            }
        };
        // Segments read the upload from storage themselves. A job another
        // run cut goes on in segments, whatever this node would choose
        // (only a later run can find segments: a job's first run asks no
        // more of the database than before segments existed).
        if upload.is_some() {
            let ranges = segment_plan(app, job, frames, seconds);
            let cut = ranges.is_some()
                || (job.attempts > 1
                    && !app.store.segments(&job.id).map_err(|e| e.to_string())?.is_empty());
            if cut {
                *segmented = true;
                let ranges = ranges.unwrap_or_default();
                return coordinate(app, job, &settings, &ranges, frames, &work, deadline, &stop, worker)
                    .await;
            }
        }
        let input = match (fetched, &upload) {
            (Some(p), _) => p,
            (None, Some(u)) => tokio::time::timeout_at(deadline, app.storage.fetch_upload(&u.path, &work))
                .await
                .map_err(|_| late("copying the upload from storage"))?
                .map_err(|e| storage_failed(job, &e))?,
            (None, None) => unreachable!("a job has an upload or a video_url"),
        };
        let limited = matches!(app.store.key_limit(&job.key_id), Ok(Some(Some(_))));
        let limits = budget::runner_limits(&app.config, held.filter(|_| limited));
        let bg_image = background_image(app, job, &settings, &work, deadline, late).await?;
        let format = job.output_format;
        let partial = work.join(format!("output.{}", format.extension()));
        let store = app.store.clone();
        let job_id = job.id.clone();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let output = partial.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let spec = rbv_runner::Spec {
                input: &input,
                output: &output,
                target: rbv_runner::Target::Service(format),
                properties: properties(&settings, bg_image.as_deref())?,
                timeout: Some(left),
                stop: Some(stop),
                frames: None,
            };
            let mut last = -1.0;
            rbv_runner::run_limited(&spec, &limits, |p| {
                let pct = p.percent().clamp(0.0, 99.0);
                if pct - last >= 1.0 {
                    last = pct;
                    let _ = store.set_progress(&job_id, pct);
                }
            })
            .map_err(|f| runner_failure(f, late))
        })
        .await
        .map_err(|e| format!("processing stopped: {e}"))??;
        let file = output_name(job);
        app.storage
            .keep_output(&partial, &file)
            .await
            .map_err(|e| storage_failed(job, &e))?;
        let billed = budget::billed_seconds(outcome.processed_seconds, outcome.frames);
        Ok((outcome, file, billed))
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// The job's output in storage; a run that lost its lease must not
/// overwrite the recorded one's.
fn output_name(job: &Job) -> String {
    let ext = job.output_format.extension();
    if job.attempts <= 1 {
        format!("{}.{ext}", job.id)
    } else {
        format!("{}-{}.{ext}", job.id, job.attempts)
    }
}

/// A storage failure: the detail (endpoint, bucket's answer) to the
/// operator's log, the reason to the client.
fn storage_failed(job: &Job, detail: &str) -> String {
    log::line(&[("event", "storage"), ("job_id", &job.id), ("error", detail)]);
    if detail.contains("is gone from storage") {
        return detail.to_owned();
    }
    "storage_unavailable: the job's files cannot be read from or written to storage now; \
     start the job again"
        .to_owned()
}

/// The element's properties for a job's settings.
fn properties(
    settings: &Settings,
    background_image: Option<&Path>,
) -> Result<Vec<(String, String)>, String> {
    let mut props = vec![("model".to_string(), settings.model.as_str().to_string())];
    let mut prop = |name: &str, value: String| props.push((name.to_string(), value));
    match &settings.background {
        Background::Transparent => prop("background", "transparent".into()),
        Background::Color(c) => {
            prop("background", "color".into());
            prop(
                "background-color",
                format!("#{:02X}{:02X}{:02X}", c[0], c[1], c[2]),
            );
        }
        Background::Image(_) => {
            let path = background_image.ok_or("the background image was not fetched")?;
            prop("background", "image".into());
            prop("background-image", path.to_string_lossy().into_owned());
        }
    }
    if let Some(p) = &settings.text_prompt {
        prop("text-prompt", p.clone());
    }
    if let Some(c) = &settings.composition {
        prop("composition", c.to_string());
    }
    Ok(props)
}

async fn read_head(p: &Path) -> Result<Vec<u8>, String> {
    use tokio::io::AsyncReadExt;
    let mut f = tokio::fs::File::open(p).await.map_err(|e| e.to_string())?;
    let mut head = vec![0u8; 64 * 1024];
    let mut n = 0;
    while n < head.len() {
        let k = f.read(&mut head[n..]).await.map_err(|e| e.to_string())?;
        if k == 0 {
            break;
        }
        n += k;
    }
    head.truncate(n);
    Ok(head)
}
