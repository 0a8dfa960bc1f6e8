// SPDX-License-Identifier: MPL-2.0
//! A `/v1` job (rbv-api) run on the client's runtime, off the streaming
//! thread, which waits for its outcome without touching the network; its
//! progress becomes `rbv-job` element messages.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gst::prelude::*;

use rbv_api::job::{self, Event, Request};
use rbv_api::{self as remote, Client, Error};

/// Name of the job progress element message.
pub const JOB_MESSAGE: &str = "rbv-job";
/// Details structure of the element error a failed job posts.
pub const ERROR_DETAILS: &str = "rbv-error";

/// What the streaming thread waits for.
#[derive(Default)]
struct Wait {
    outcome: Option<Result<PathBuf, Error>>,
    flushing: bool,
    stopping: bool,
}

/// The job's outcome and the streaming thread's wake-ups.
#[derive(Default)]
pub struct Shared {
    wait: Mutex<Wait>,
    cond: Condvar,
    task: Mutex<Option<tokio::task::AbortHandle>>,
}

fn lock(m: &Mutex<Wait>) -> std::sync::MutexGuard<'_, Wait> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    fn finish(&self, outcome: Result<PathBuf, Error>) {
        lock(&self.wait).outcome = Some(outcome);
        self.cond.notify_all();
    }

    /// Ends a wait with `Flushing` until [`Shared::set_flushing`]`(false)`.
    pub fn set_flushing(&self, flushing: bool) {
        lock(&self.wait).flushing = flushing;
        self.cond.notify_all();
    }

    /// Ends every wait for good and drops the job's connections at once
    /// (the element is going down). The service has no cancel call: a
    /// started job still runs (and bills) there.
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
        lock(&self.wait).stopping = true;
        self.cond.notify_all();
    }

    /// Blocks until the job has ended, or a flush or stop interrupts;
    /// `None` then.
    pub fn wait(&self) -> Option<Result<PathBuf, Error>> {
        let mut w = lock(&self.wait);
        loop {
            if w.flushing || w.stopping {
                return None;
            }
            if let Some(outcome) = &w.outcome {
                return Some(outcome.clone());
            }
            w = self
                .cond
                .wait_timeout(w, Duration::from_millis(500))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    pub fn interrupted(&self) -> bool {
        let w = lock(&self.wait);
        w.flushing || w.stopping
    }
}

/// A running (or finished) job.
pub struct Run {
    shared: Arc<Shared>,
    dir: PathBuf,
}

impl Run {
    /// Starts the job on the remote runtime. Progress and each call go to
    /// `element` (bus messages, debug log); the outcome to `shared`.
    pub fn start(
        element: &gst::Element,
        cat: gst::DebugCategory,
        client: Client,
        request: Request,
        shared: Arc<Shared>,
    ) -> Result<Run, Error> {
        let rt = remote::io_runtime()?;
        let dir = scratch_dir().map_err(|e| Error::Io {
            path: std::env::temp_dir(),
            what: e.to_string(),
        })?;
        let dest = dir.join(format!(
            "output.{}",
            request.settings.output_format.extension()
        ));
        let weak = element.downgrade();
        let log_weak = weak.clone();
        let client = client.with_log(Arc::new(move |call| {
            if let Some(el) = log_weak.upgrade() {
                gst::debug!(
                    cat,
                    obj = el,
                    "{} {} -> {} (job {}, request {}, try {}, {} ms){}",
                    call.method,
                    call.path,
                    call.status
                        .map(|s| s.to_string())
                        .unwrap_or_else(|| "no answer".into()),
                    call.job_id.unwrap_or("-"),
                    call.request_id.unwrap_or("-"),
                    call.retry + 1,
                    call.elapsed.as_millis(),
                    call.note
                        .as_deref()
                        .map(|n| format!(": {n}"))
                        .unwrap_or_default()
                );
            }
        }));
        let done = shared.clone();
        let task = rt.spawn(async move {
            let mut last_download_step = None;
            let mut on_event = |event: Event| {
                if let Event::Downloading { bytes, total, .. } = &event {
                    // One message per tenth of the file.
                    let step = total.map(|t| bytes * 10 / t.max(1));
                    if step == last_download_step {
                        return;
                    }
                    last_download_step = step;
                }
                if let Some(el) = weak.upgrade() {
                    post_progress(&el, cat, &event);
                }
            };
            let outcome = job::run(&client, &request, &dest, &mut on_event)
                .await
                .map(|_| dest.clone());
            done.finish(outcome);
        });
        *shared.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task.abort_handle());
        Ok(Run { shared, dir })
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        self.shared.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn scratch_dir() -> std::io::Result<PathBuf> {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "rbv-remote-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// Posts an `rbv-job` element message for `event`.
fn post_progress(el: &gst::Element, cat: gst::DebugCategory, event: &Event) {
    let (phase, job_id, status, progress, request_id) = match event {
        Event::Uploading { .. } => ("uploading", None, None, 0.0, None),
        Event::Uploaded { request_id, .. } => ("uploaded", None, None, 0.0, request_id.as_deref()),
        Event::Created { job_id, request_id } => (
            "created",
            Some(job_id),
            Some("created"),
            0.0,
            request_id.as_deref(),
        ),
        Event::Started { job_id, request_id } => (
            "started",
            Some(job_id),
            Some("processing"),
            0.0,
            request_id.as_deref(),
        ),
        Event::Polled {
            job_id,
            status,
            progress,
            request_id,
        } => (
            "polled",
            Some(job_id),
            Some(status.as_str()),
            *progress,
            request_id.as_deref(),
        ),
        Event::Downloading { job_id, .. } => {
            ("downloading", Some(job_id), Some("completed"), 100.0, None)
        }
        Event::Downloaded { job_id, .. } => {
            ("downloaded", Some(job_id), Some("completed"), 100.0, None)
        }
    };
    gst::info!(
        cat,
        obj = el,
        "job {}: {phase}, status {}, progress {progress:.0} % (request {})",
        job_id.map(String::as_str).unwrap_or("-"),
        status.unwrap_or("-"),
        request_id.unwrap_or("-")
    );
    let mut s = gst::Structure::builder(JOB_MESSAGE)
        .field("phase", phase)
        .field("progress", progress);
    if let Some(j) = job_id {
        s = s.field("job-id", j.as_str());
    }
    if let Some(st) = status {
        s = s.field("status", st);
    }
    if let Some(r) = request_id {
        s = s.field("request-id", r);
    }
    let counts = match event {
        Event::Downloading { bytes, total, .. } => Some((*bytes, *total)),
        Event::Downloaded { bytes, .. } => Some((*bytes, Some(*bytes))),
        _ => None,
    };
    if let Some((bytes, total)) = counts {
        s = s.field("bytes", bytes);
        if let Some(t) = total {
            s = s.field("total-bytes", t);
        }
    }
    let _ = el.post_message(gst::message::Element::builder(s.build()).src(el).build());
}

/// The element error for a failed job: text for people, and a details
/// structure (`rbv-error`: job-id, request-id, code, message) for programs.
pub fn error_message(el: &gst::Element, e: &Error) -> gst::Message {
    let mut details = gst::Structure::builder(ERROR_DETAILS)
        .field("code", e.code())
        .field("message", e.message());
    if let Some(j) = e.job_id() {
        details = details.field("job-id", j);
    }
    if let Some(r) = e.request_id() {
        details = details.field("request-id", r);
    }
    let text = format!("backend=remote: {e}");
    let builder = match e.kind() {
        remote::ErrorKind::Input => {
            gst::message::Error::builder(gst::LibraryError::Settings, &text)
        }
        remote::ErrorKind::Network => {
            gst::message::Error::builder(gst::ResourceError::OpenRead, &text)
        }
        _ => gst::message::Error::builder(gst::ResourceError::Failed, &text),
    };
    builder.details(details.build()).src(el).build()
}
