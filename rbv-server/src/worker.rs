// SPDX-License-Identifier: MPL-2.0
//! The workers: each takes queued jobs of its pool one after another, runs
//! them through `rbv-runner` on a blocking thread, and records the outcome
//! (charged once, on completion), with the job's webhook told.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use crate::queue::Pool;
use crate::request::{Background, Settings};
use crate::store::{self, Completion, Job};
use crate::{App, log};

/// One worker of `pool`: takes queued jobs one after another.
pub async fn run(app: Arc<App>, pool: Pool) {
    let queue = app.queues.get(pool);
    loop {
        let id = queue.pop().await;
        let job = match app.store.claim(&id) {
            Ok(Some(job)) => job,
            // Taken by another worker, or no longer pending.
            Ok(None) => continue,
            Err(e) => {
                log::line(&[("event", "job"), ("job_id", &id), ("error", &e.to_string())]);
                continue;
            }
        };
        queue
            .busy
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        app.transition(
            &job,
            "pending",
            "processing",
            &[("attempt", &job.attempts.to_string())],
        );
        app.notify(&job.id, "job.started");
        let started = Instant::now();
        let result = run_job(&app, &job).await;
        let secs = started.elapsed().as_secs_f64();
        queue
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        match result {
            Ok((outcome, file)) => {
                let resolution = format!("{}x{}", outcome.width, outcome.height);
                let credits =
                    store::round2(job.model.credits_per_minute() * outcome.duration_seconds / 60.0);
                let done = Completion {
                    output_file: &file,
                    duration_seconds: store::round2(outcome.duration_seconds),
                    credits,
                    processing_ms: (secs * 1000.0) as i64,
                    resolution: &resolution,
                };
                if let Err(e) = app.store.complete(&job.id, &done) {
                    let _ = app.store.fail(&job.id, &format!("internal_error: {e}"));
                    continue;
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
                    ],
                );
                app.notify(&job.id, "job.completed");
            }
            Err(e) => {
                let _ = app.store.fail(&job.id, &e);
                app.metrics.job_finished(job.model.as_str(), "failed");
                app.transition(&job, "processing", "failed", &[("error", &e)]);
                app.notify(&job.id, "job.failed");
            }
        }
    }
}

/// Fetches an http(s) resource to `path`, at most `limit` bytes.
async fn fetch(client: &reqwest::Client, url: &str, path: &Path, limit: u64) -> Result<(), String> {
    let host = reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_default();
    let mut resp = client.get(url).send().await.map_err(|e| {
        format!(
            "cannot fetch {host}: {}",
            rbv_api::client::describe(&e, &host)
        )
    })?;
    if !resp.status().is_success() {
        return Err(format!("fetching from {host} answered {}", resp.status()));
    }
    let mut file = tokio::fs::File::create(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let mut size = 0u64;
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| rbv_api::client::describe(&e, &host))?
    {
        size += chunk.len() as u64;
        if size > limit {
            return Err(format!("the file at {host} is over {limit} bytes"));
        }
        file.write_all(&chunk).await.map_err(|e| e.to_string())?;
    }
    file.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// Runs one claimed job: input, background image, pipeline, output.
async fn run_job(app: &Arc<App>, job: &Job) -> Result<(rbv_runner::Outcome, String), String> {
    let settings = serde_json::from_str(&job.settings)
        .map_err(|e| e.to_string())
        .and_then(|v| Settings::from_json(&v).map_err(|r| r.message))?;
    let work = app.work_dir().join(&job.id);
    tokio::fs::create_dir_all(&work)
        .await
        .map_err(|e| format!("{}: {e}", work.display()))?;
    let result = async {
        let input = match &job.upload_id {
            Some(id) => app
                .store
                .upload(&job.key_id, id)
                .map_err(|e| e.to_string())?
                .map(|u| PathBuf::from(u.path))
                .ok_or("the uploaded video is gone")?,
            None => {
                let p = work.join("input");
                fetch(&app.fetcher, &job.video_url, &p, app.config.max_fetch_bytes).await?;
                let head = read_head(&p).await?;
                if rbv_runner::sniff_video(&head).is_none() {
                    return Err(
                        "video_url is not a video this service takes (mp4, mov, webm, avi)"
                            .to_string(),
                    );
                }
                p
            }
        };
        let bg_image = match &settings.background {
            Background::Image(url) => {
                let p = work.join("background");
                fetch(&app.fetcher, url, &p, 50_000_000)
                    .await
                    .map_err(|e| format!("background image: {e}"))?;
                Some(p)
            }
            _ => None,
        };
        let format = job.output_format;
        let ext = format.extension();
        let file = format!("{}.{ext}", job.id);
        let out = app.outputs_dir().join(&file);
        let partial = work.join(format!("output.{ext}"));
        let store = app.store.clone();
        let job_id = job.id.clone();
        let timeout = app.config.job_timeout;
        let outcome = tokio::task::spawn_blocking(move || {
            let spec = rbv_runner::Spec {
                input: &input,
                output: &partial,
                target: rbv_runner::Target::Service(format),
                properties: properties(&settings, bg_image.as_deref())?,
                timeout: Some(timeout),
            };
            let mut last = -1.0;
            let r = rbv_runner::run(&spec, |p| {
                let pct = p.percent().clamp(0.0, 99.0);
                if pct - last >= 1.0 {
                    last = pct;
                    let _ = store.set_progress(&job_id, pct);
                }
            });
            let o = r.map_err(|f| {
                if f.input_unreadable() {
                    format!("the input video cannot be read: {f}")
                } else {
                    f.to_string()
                }
            })?;
            std::fs::rename(&partial, &out).map_err(|e| format!("{}: {e}", out.display()))?;
            Ok::<_, String>(o)
        })
        .await
        .map_err(|e| format!("processing stopped: {e}"))??;
        Ok((outcome, file))
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
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
