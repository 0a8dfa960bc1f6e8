// SPDX-License-Identifier: MPL-2.0
//! A long job in segments: the worker that takes it coordinates (plans the
//! segments, works on them, joins their parts); any worker takes a segment
//! (`run_segment`); parts no run needs are released.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::{
    Done, background_image, job_settings, keep_lease, output_name, properties, recorded,
    runner_failure, storage_failed,
};
use crate::queue::Pool;
use crate::request::{Background, Settings};
use crate::store::{self, ClaimedSegment, Job, Segment};
use crate::{App, budget, log};

/// Frames of the input a segment's run processes before its first, so the
/// element's state at the cut (the detector's schedule, the gate's blend,
/// the smoothing) is what one run over the whole input has there: the
/// runner's segments test joins parts byte for byte equal to one run.
const WARM_UP_FRAMES: u64 = gstrbv::rbvremove::SEGMENT_WARM_UP_FRAMES;

/// The frame ranges a job of `frames` frames over `seconds` is cut into,
/// when it is cut: longer than `--segment-seconds`, and more than one
/// worker can take them (several nodes on one database, or several workers
/// of the pool here; one worker alone would only add the warm-ups).
pub(super) fn segment_plan(
    app: &App,
    job: &Job,
    frames: u64,
    seconds: f64,
) -> Option<Vec<store::Range>> {
    let per = app.config.segment_seconds.as_secs_f64();
    let shared = app.store.dialect() == store::db::Dialect::Postgres
        || app.queues.get(Pool::for_model(job.model)).workers > 1;
    if per <= 0.0 || seconds <= per || frames < 2 || !shared {
        return None;
    }
    let per_frames = ((frames as f64) * per / seconds).floor().max(1.0) as u64;
    let ranges = rbv_runner::plan_segments(frames, per_frames, WARM_UP_FRAMES);
    (ranges.len() > 1).then(|| {
        ranges
            .iter()
            .map(|r| (r.first as i64, r.end.map(|e| e as i64), r.warm_up as i64))
            .collect()
    })
}

/// A long job's run: plans its segments (or takes over the plan of a run
/// that stopped), processes its own segments while other workers take
/// theirs, and once all are done joins their parts into the output.
#[allow(clippy::too_many_arguments)]
pub(super) async fn coordinate(
    app: &Arc<App>,
    job: &Job,
    settings: &Settings,
    ranges: &[store::Range],
    frames: u64,
    work: &Path,
    deadline: tokio::time::Instant,
    stop: &AtomicBool,
    worker: &str,
) -> Result<Done, String> {
    let lost = || "this run lost the job's lease (another run has it)".to_string();
    // An earlier start's parts first.
    release_spent_segments(app, &job.id).await;
    let plan = app
        .store
        .plan_segments(&job.id, job.attempts, ranges)
        .map_err(|e| e.to_string())?
        .ok_or_else(lost)?;
    let pool = Pool::for_model(job.model);
    // Every idle worker of the pool here (other nodes: PostgreSQL's notices).
    app.queues.get(pool).wake_all();
    log::line(&[
        ("event", "segments"),
        ("job_id", &job.id),
        ("count", &plan.len().to_string()),
        ("frames", &frames.to_string()),
        ("worker", worker),
    ]);
    let pool = pool.name();
    let mut last = -1.0;
    let done = loop {
        if stop.load(Ordering::Relaxed) {
            return Err(lost());
        }
        let segments = match app.store.segments(&job.id) {
            Ok(s) if !s.is_empty() => s,
            Ok(_) => return Err(lost()),
            Err(e) => {
                store_trouble(&job.id, &e).await;
                continue;
            }
        };
        if let Some(f) = segments.iter().find(|s| s.status == "failed") {
            return Err(format!(
                "segment {} of {} (frames from {}): {}",
                f.idx + 1,
                segments.len(),
                f.first_frame,
                f.error.as_deref().unwrap_or("failed")
            ));
        }
        if segments.iter().all(|s| s.status == "done") {
            break segments;
        }
        if tokio::time::Instant::now() > deadline {
            return Err(format!(
                "the job took longer than {} s (--job-timeout) processing",
                app.config.job_timeout.as_secs()
            ));
        }
        let written: i64 = segments.iter().map(|s| s.frames_done).sum();
        let pct = (100.0 * written as f64 / frames.max(1) as f64).clamp(0.0, 99.0);
        if pct - last >= 1.0 {
            last = pct;
            let _ = app.store.set_progress(&job.id, pct);
        }
        match app
            .store
            .claim_segment(pool, Some(&job.id), app.config.max_attempts)
        {
            Ok(ClaimedSegment::Segment(s)) => run_segment(app, *s, worker, Some(deadline)).await,
            Ok(ClaimedSegment::GaveUp(_)) => {}
            Ok(ClaimedSegment::Nothing) => tokio::time::sleep(Duration::from_secs(1)).await,
            Err(e) => store_trouble(&job.id, &e).await,
        }
    };
    // Each segment wrote its whole range, unless the input ended before
    // it (then the segments after it wrote nothing).
    for (i, s) in done.iter().enumerate() {
        let expected = s.end_frame.map(|e| e - s.first_frame);
        let short = expected.is_some_and(|n| s.frames_done < n);
        if expected.is_some_and(|n| s.frames_done > n)
            || (short && done[i + 1..].iter().any(|later| later.frames_done > 0))
        {
            return Err(format!(
                "segment {} of {} wrote {} frames of {}",
                s.idx + 1,
                done.len(),
                s.frames_done,
                expected.unwrap_or_default()
            ));
        }
    }
    // The parts, in order (a range that held no frame has none).
    let mut parts = Vec::new();
    for name in done.iter().filter_map(|s| s.output_file.as_deref()) {
        let part = tokio::time::timeout_at(deadline, app.storage.fetch_output(name, work))
            .await
            .map_err(|_| "the job took longer than --job-timeout joining its segments".to_string())?
            .map_err(|e| storage_failed(job, &e))?;
        parts.push(part);
    }
    let written: u64 = done.iter().map(|s| s.frames_done.max(0) as u64).sum();
    let seconds: f64 = done.iter().filter_map(|s| s.seconds).sum();
    let format = job.output_format;
    let partial = work.join(format!("output.{}", format.extension()));
    let output = partial.clone();
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    let transparent = matches!(settings.background, Background::Transparent);
    let mut outcome = tokio::task::spawn_blocking(move || {
        let spec = rbv_runner::Spec {
            input: &output,
            output: &output,
            target: rbv_runner::Target::Service(format),
            properties: vec![(
                "background".into(),
                if transparent { "transparent" } else { "color" }.into(),
            )],
            timeout: Some(left),
            stop: None,
            frames: None,
        };
        rbv_runner::join(&parts, &spec, |_| {}).map_err(|f| format!("joining the segments: {f}"))
    })
    .await
    .map_err(|e| format!("processing stopped: {e}"))??;
    if outcome.frames != written {
        return Err(format!(
            "joining the segments gave {} frames, the segments wrote {written}",
            outcome.frames
        ));
    }
    // The join's timestamps start again at each part: the segments measured.
    outcome.processed_seconds = seconds;
    let file = output_name(job);
    app.storage
        .keep_output(&partial, &file)
        .await
        .map_err(|e| storage_failed(job, &e))?;
    let billed = budget::billed_seconds(seconds, written);
    Ok((outcome, file, billed))
}

/// The store did not answer the coordinator: logged, and a second's pause.
async fn store_trouble(job_id: &str, e: &store::Error) {
    log::line(&[
        ("event", "segments"),
        ("job_id", job_id),
        ("error", &e.to_string()),
    ]);
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// One segment of a long job, claimed by this node: its part made and kept
/// in storage, and recorded (or its failure, which fails the job). Within
/// `--job-timeout`, or the job's own deadline when its coordinator runs it.
pub(super) async fn run_segment(
    app: &Arc<App>,
    segment: Segment,
    worker: &str,
    deadline: Option<tokio::time::Instant>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(AtomicU64::new(0));
    let renewer = {
        let (s, f) = (segment.clone(), frames.clone());
        tokio::spawn(keep_lease(
            app.clone(),
            segment.job_id.clone(),
            stop.clone(),
            move |app| {
                app.store
                    .renew_segment(&s, f.load(Ordering::Relaxed) as i64)
            },
        ))
    };
    let idx = (segment.idx + 1).to_string();
    let attempt = segment.attempts.to_string();
    log::line(&[
        ("event", "segment"),
        ("job_id", &segment.job_id),
        ("segment", &idx),
        ("to", "processing"),
        ("attempt", &attempt),
        ("first_frame", &segment.first_frame.to_string()),
        ("worker", worker),
        ("node", app.store.node()),
    ]);
    let started = Instant::now();
    let result = segment_part(app, &segment, stop, frames, deadline).await;
    renewer.abort();
    let line = |to: &str, extra: &[(&str, &str)]| {
        let mut fields = vec![
            ("event", "segment"),
            ("job_id", segment.job_id.as_str()),
            ("segment", idx.as_str()),
            ("to", to),
            ("attempt", attempt.as_str()),
            ("worker", worker),
            ("node", app.store.node()),
        ];
        fields.extend_from_slice(extra);
        log::line(&fields);
    };
    match result {
        Ok(part) => {
            let (file, n, secs) = match &part {
                Some((file, n, secs)) => (Some(file.as_str()), *n, *secs),
                None => (None, 0, 0.0),
            };
            let recorded = recorded(("segment", &segment.job_id), file.unwrap_or("-"), || {
                app.store.finish_segment(&segment, file, n as i64, secs)
            })
            .await;
            match recorded {
                Some(true) => line(
                    "done",
                    &[
                        ("frames", &n.to_string()),
                        (
                            "seconds",
                            &format!("{:.3}", started.elapsed().as_secs_f64()),
                        ),
                    ],
                ),
                Some(false) => {
                    // Another run took the segment when this one's lease ran out.
                    line("dropped", &[]);
                    if let Some(file) = file {
                        let _ = app.storage.delete_output(file).await;
                    }
                }
                // Its part stays (a commit whose answer was lost may have
                // recorded it); the segment runs again when its lease runs out.
                None => line("unrecorded", &[]),
            }
        }
        Err(Stopped::Failed(e)) => match app.store.fail_segment(&segment, &e) {
            Ok(true) => line("failed", &[("error", &e)]),
            Ok(false) => line("dropped", &[("error", &e)]),
            // Not recorded: the segment runs again when its lease runs out.
            Err(store) => line(
                "unrecorded",
                &[("error", &e), ("store_error", &store.to_string())],
            ),
        },
        // Not this run's to decide: its lease is gone, or the store did not
        // answer (the segment runs again when its lease runs out).
        Err(Stopped::Again(why)) => line("stopped", &[("error", &why)]),
    }
}

/// Why a segment's run ended without a part.
enum Stopped {
    /// The segment cannot be made (its job fails, naming it).
    Failed(String),
    /// This run stopped (its lease was lost, the store did not answer).
    Again(String),
}

impl From<String> for Stopped {
    fn from(e: String) -> Stopped {
        Stopped::Failed(e)
    }
}

impl From<&str> for Stopped {
    fn from(e: &str) -> Stopped {
        Stopped::Failed(e.to_owned())
    }
}

fn again(e: impl std::fmt::Display) -> Stopped {
    Stopped::Again(e.to_string())
}

/// Makes a segment's lossless part and keeps it in storage: (its name,
/// frames, media seconds), or `None` when its range held no frame.
async fn segment_part(
    app: &Arc<App>,
    segment: &Segment,
    stop: Arc<AtomicBool>,
    frames: Arc<AtomicU64>,
    deadline: Option<tokio::time::Instant>,
) -> Result<Option<(String, u64, f64)>, Stopped> {
    let job = app
        .store
        .job(&segment.job_id)
        .map_err(again)?
        .ok_or("the job is gone")?;
    let settings = job_settings(&job)?;
    // Named by the run (start, segment, attempt): a late run of an earlier
    // start may still be busy with its own.
    let run = format!(
        "s{}-{}-{}",
        segment.start_mark,
        segment.idx + 1,
        segment.attempts
    );
    let work = app.work_dir().join(format!("{}-{run}", job.id));
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| format!("{}: {e}", work.display()))?;
    let timeout = app.config.job_timeout;
    let own = tokio::time::Instant::now() + timeout;
    let deadline = deadline.map_or(own, |d| d.min(own));
    let late = move |during: &str| {
        format!(
            "the segment took longer than {} s (--job-timeout) {during}",
            timeout.as_secs()
        )
    };
    let result = async {
        let upload_id = job.upload_id.as_deref().ok_or("the job has no upload")?;
        let u = app
            .store
            .upload(&job.key_id, upload_id)
            .map_err(again)?
            .ok_or("the uploaded video is gone (removed after the retention period)")?;
        let input = tokio::time::timeout_at(deadline, app.storage.fetch_upload(&u.path, &work))
            .await
            .map_err(|_| late("copying the upload from storage"))?
            .map_err(|e| storage_failed(&job, &e))?;
        let bg_image = background_image(app, &job, &settings, &work, deadline, late).await?;
        // The same caps as one run over the whole input (each segment
        // decodes the input from its start).
        let limited = matches!(app.store.key_limit(&job.key_id), Ok(Some(Some(_))));
        let limits = budget::runner_limits(&app.config, job.reserved_seconds.filter(|_| limited));
        let range = rbv_runner::FrameRange {
            first: segment.first_frame.max(0) as u64,
            end: segment.end_frame.map(|e| e.max(0) as u64),
            warm_up: segment.warm_up.max(0) as u64,
        };
        let part = work.join("part.mkv");
        let output = part.clone();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let stopped = stop.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let spec = rbv_runner::Spec {
                input: &input,
                output: &output,
                target: rbv_runner::Target::Ffv1,
                properties: properties(&settings, bg_image.as_deref())?,
                timeout: Some(left),
                stop: Some(stop),
                frames: Some(range),
            };
            match rbv_runner::run_limited(&spec, &limits, |p| {
                frames.store(p.frames, Ordering::Relaxed)
            }) {
                Ok(o) => Ok(Some(o)),
                Err(rbv_runner::Failure::NoFrames) => Ok(None),
                Err(f) => Err(runner_failure(f, late)),
            }
        })
        .await
        .map_err(|e| format!("processing stopped: {e}"))?;
        // A run whose lease was lost was ended early: what it wrote is not
        // the segment.
        if stopped.load(Ordering::Relaxed)
            || outcome
                .as_ref()
                .is_ok_and(|o| o.as_ref().is_some_and(|o| o.interrupted))
        {
            return Err(again("this run lost the segment's lease"));
        }
        let Some(outcome) = outcome? else {
            return Ok(None);
        };
        let name = format!("{}.part-{run}.mkv", job.id);
        app.storage
            .keep_output(&part, &name)
            .await
            .map_err(|e| storage_failed(&job, &e))?;
        Ok(Some((name, outcome.frames, outcome.processed_seconds)))
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

/// The segments of a job no run needs any more (all once the job
/// completed or failed, an earlier start's while it runs again) released:
/// each part deleted from storage, then its row (a part storage would not
/// delete keeps its row, for the hourly sweep to try again).
pub(crate) async fn release_spent_segments(app: &App, job_id: &str) {
    let log_error = |e: &str| log::line(&[("event", "segments"), ("job_id", job_id), ("error", e)]);
    let spent = match app.store.spent_segments(job_id) {
        Ok(s) => s,
        Err(e) => return log_error(&e.to_string()),
    };
    for (mark, idx, part) in spent {
        if let Some(part) = &part
            && let Err(e) = app.storage.delete_output(part).await
        {
            log_error(&e);
            continue;
        }
        if let Err(e) = app.store.forget_segment(job_id, mark, idx) {
            log_error(&e.to_string());
        }
    }
}
