// SPDX-License-Identifier: MPL-2.0
//! `rbv serve`: the service's `/v1` job API on your own machine, with the
//! local backend doing the work.
//!
//! The pure parts have their own modules: `request` (reading bodies),
//! `store` (SQLite), `queue` (bounded queues per worker pool), `process`
//! (the GStreamer pipeline of one job), `webhook`, `metrics` and `crypto`;
//! `http` glues them to axum.

pub mod crypto;
pub mod http;
pub mod metrics;
pub mod queue;
pub mod request;
pub mod store;
pub mod webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use queue::{Pool, Queue, Queues};
use request::{Background, Settings};
use store::{Completion, Job, Store};

/// Credits per minute of video, as the service lists them.
pub fn credits_per_minute(model: &str) -> f64 {
    match model {
        "pro" => 180.0,
        "original" => 60.0,
        _ => 45.0,
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Database, uploads and outputs live here.
    pub data_dir: PathBuf,
    /// Base of the links the server hands out; default `http://<listen>`.
    pub public_url: Option<String>,
    /// Workers for pro/original and for light/human.
    pub heavy_workers: usize,
    pub light_workers: usize,
    /// Jobs that may wait per pool before new ones get 429.
    pub queue_size: usize,
    /// Requests per minute per key (0: no limit).
    pub rate_limit: u32,
    pub link_ttl: Duration,
    pub max_upload_bytes: u64,
    /// Largest input fetched from a `video_url` elsewhere, or background image.
    pub max_fetch_bytes: u64,
    pub job_timeout: Duration,
    /// Times a job a stop caught mid-processing is run again before it fails.
    pub max_attempts: i64,
    pub webhook_secret: Option<String>,
    pub webhook_retries: i64,
    pub webhook_retry_delay: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("an address"),
            data_dir: PathBuf::from("rbv-data"),
            public_url: None,
            heavy_workers: 1,
            light_workers: 1,
            queue_size: 100,
            rate_limit: 600,
            link_ttl: Duration::from_secs(24 * 3600),
            max_upload_bytes: rbv_api::api::MAX_UPLOAD_BYTES,
            max_fetch_bytes: rbv_api::api::MAX_UPLOAD_BYTES,
            job_timeout: Duration::from_secs(3600),
            max_attempts: 3,
            webhook_secret: None,
            webhook_retries: 3,
            webhook_retry_delay: Duration::from_secs(10),
        }
    }
}

/// Structured log lines (logfmt) on stderr: one per request, job transition
/// and webhook delivery. Keys are never passed here, only their ids.
pub mod log {
    pub fn line(fields: &[(&str, &str)]) {
        use std::fmt::Write;
        let mut out = format!(
            "ts={}",
            humantime::format_rfc3339_millis(std::time::SystemTime::now())
        );
        for (k, v) in fields {
            if v.is_empty() || v.contains([' ', '"', '=']) {
                let _ = write!(out, " {k}={v:?}");
            } else {
                let _ = write!(out, " {k}={v}");
            }
        }
        eprintln!("{out}");
    }
}

pub struct App {
    pub config: Config,
    pub public_url: String,
    pub store: Arc<Store>,
    pub queues: Queues,
    pub metrics: metrics::Metrics,
    pub webhooks: Arc<webhook::Webhooks>,
    pub link_secret: Vec<u8>,
    /// ffmpeg is there: WebM with alpha, GIF and animated WebP can be written.
    pub ffmpeg: bool,
    pub rate: std::sync::Mutex<std::collections::HashMap<String, (f64, Instant)>>,
    fetcher: reqwest::Client,
}

impl App {
    pub fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }
    pub fn outputs_dir(&self) -> PathBuf {
        self.config.data_dir.join("outputs")
    }
    pub fn work_dir(&self) -> PathBuf {
        self.config.data_dir.join("work")
    }

    /// A signed, time-bound link to a completed job's output.
    pub fn output_link(&self, job: &Job) -> Option<(String, i64)> {
        let file = job.output_file.as_deref()?;
        let expires = store::now() + self.config.link_ttl.as_secs() as i64;
        let sig = crypto::sign_link(&self.link_secret, &job.id, file, expires as u64);
        Some((
            format!(
                "{}/outputs/{}/{}?expires={expires}&signature={sig}",
                self.public_url, job.id, file
            ),
            expires,
        ))
    }

    /// The job as `GET /v1/jobs/{id}` shows it.
    pub fn job_json(&self, job: &Job) -> serde_json::Value {
        let link = (job.status == "completed")
            .then(|| self.output_link(job))
            .flatten();
        let webhook_events = self.store.webhooks_for_job(&job.id).unwrap_or_default();
        let settings: serde_json::Value =
            serde_json::from_str(&job.settings).unwrap_or(serde_json::Value::Null);
        serde_json::json!({
            "id": job.id,
            "status": job.status,
            "progress": (job.progress * 10.0).round() / 10.0,
            "output_url": link.as_ref().map(|l| l.0.clone()),
            "output_expires_at": link.as_ref().map(|l| store::iso(l.1)),
            "error": job.error,
            "created_at": store::iso(job.created_at),
            "started_at": job.started_at.map(store::iso),
            "completed_at": job.completed_at.map(store::iso),
            "duration_seconds": job.duration_seconds,
            "billing_status": job.billing_status,
            "credits_used": job.credits_used,
            "model": job.model,
            "output_format": job.output_format,
            "background": settings.get("background"),
            "text_prompt": settings.get("text_prompt"),
            "composition": settings.get("composition"),
            "video_url": job.video_url,
            "webhook_url": job.webhook_url,
            "webhook_events": webhook_events,
            "metadata": job.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()),
            "attempts": job.attempts,
            "request_id": job.request_id,
        })
    }

    pub fn transition(&self, job: &Job, from: &str, to: &str, extra: &[(&str, &str)]) {
        let mut fields = vec![
            ("event", "job"),
            ("job_id", job.id.as_str()),
            ("key_id", job.key_id.as_str()),
            ("request_id", job.request_id.as_str()),
            ("model", job.model.as_str()),
            ("from", from),
            ("to", to),
        ];
        fields.extend_from_slice(extra);
        log::line(&fields);
    }

    /// Tells the job's webhook, when it has one.
    pub fn notify(&self, job_id: &str, event: &str) {
        if let Ok(Some(job)) = self.store.job(job_id)
            && let Some(url) = &job.webhook_url
        {
            let j = self.job_json(&job);
            let data = serde_json::json!({
                "id": j["id"], "status": j["status"], "progress": j["progress"],
                "output_url": j["output_url"], "error": j["error"], "model": j["model"],
                "output_format": j["output_format"], "duration_seconds": j["duration_seconds"],
                "credits_used": j["credits_used"], "metadata": j["metadata"],
            });
            self.webhooks.send(&self.store, &job.id, url, event, data);
        }
    }
}

/// A running server (for tests and the command).
pub struct Server {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Server {
    /// Stops accepting requests and stops the workers (a job being processed
    /// is picked up again at the next start).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

fn init_gstreamer() -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    if gst::ElementFactory::find("rbvremove").is_none() {
        gstrbv::plugin_register_static().map_err(|e| format!("rbv plugin: {e}"))?;
    }
    Ok(())
}

/// Opens the store, recovers jobs a stop interrupted, starts the workers and
/// listens. Returns once the socket is bound.
pub async fn start(config: Config) -> Result<Server, String> {
    init_gstreamer()?;
    // One job after another: models stay loaded between them.
    rbv_core::model::keep_sessions_loaded();
    for d in ["uploads", "outputs", "work"] {
        let dir = config.data_dir.join(d);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let db = config.data_dir.join("rbv.db");
    let store = Arc::new(Store::open(&db).map_err(|e| format!("{}: {e}", db.display()))?);
    let secret = store
        .setting_or_init("link_secret", || crypto::random_hex(32))
        .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"))
        .trim_end_matches('/')
        .to_owned();
    let app = Arc::new(App {
        public_url,
        store: store.clone(),
        queues: Queues {
            heavy: Queue::new(config.queue_size, config.heavy_workers),
            light: Queue::new(config.queue_size, config.light_workers),
        },
        metrics: metrics::Metrics::default(),
        webhooks: Arc::new(webhook::Webhooks::new(
            config.webhook_secret.clone(),
            config.webhook_retry_delay,
            config.webhook_retries,
        )),
        link_secret: secret.into_bytes(),
        ffmpeg: rbv_runner::ffmpeg_available(),
        rate: Default::default(),
        fetcher: reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| e.to_string())?,
        config,
    });

    let (requeued, failed) = store
        .recover(app.config.max_attempts)
        .map_err(|e| e.to_string())?;
    for id in &requeued {
        log::line(&[("event", "recovered"), ("job_id", id), ("to", "pending")]);
    }
    for id in &failed {
        log::line(&[("event", "recovered"), ("job_id", id), ("to", "failed")]);
        app.notify(id, "job.failed");
    }
    for (id, model) in store.pending_jobs().map_err(|e| e.to_string())? {
        app.queues.get(Pool::for_model(&model)).push_recovered(id);
    }
    app.webhooks.resume(&store);

    let mut tasks = Vec::new();
    for (pool, n) in [
        (Pool::Heavy, app.config.heavy_workers),
        (Pool::Light, app.config.light_workers),
    ] {
        for _ in 0..n {
            let app = app.clone();
            tasks.push(tokio::spawn(async move { worker(app, pool).await }));
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(app.clone());
    tasks.push(tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    }));
    log::line(&[
        ("event", "listening"),
        ("url", &format!("http://{addr}")),
        ("data_dir", &app.config.data_dir.to_string_lossy()),
        ("heavy_workers", &app.config.heavy_workers.to_string()),
        ("light_workers", &app.config.light_workers.to_string()),
        ("requeued", &requeued.len().to_string()),
        ("ffmpeg", if app.ffmpeg { "yes" } else { "no" }),
    ]);
    Ok(Server {
        addr,
        app,
        shutdown: Some(tx),
        tasks,
    })
}

async fn worker(app: Arc<App>, pool: Pool) {
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
                    store::round2(credits_per_minute(&job.model) * outcome.duration_seconds / 60.0);
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
                app.metrics.job_processed(&job.model, &resolution, secs);
                app.metrics.job_finished(&job.model, "completed");
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
                app.metrics.job_finished(&job.model, "failed");
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
        let format = job.output_format.clone();
        let (ext, _) = rbv_runner::output_kind(&format);
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
                format: &format,
                model: &settings.model,
                background: &settings.background,
                background_image: bg_image.as_deref(),
                text_prompt: settings.text_prompt.as_deref(),
                composition: settings.composition.as_ref().map(|c| c.to_string()),
                timeout,
            };
            let r = rbv_runner::run(&spec, |p| {
                let _ = store.set_progress(&job_id, p);
            });
            r.and_then(|o| {
                std::fs::rename(&partial, &out).map_err(|e| format!("{}: {e}", out.display()))?;
                Ok(o)
            })
        })
        .await
        .map_err(|e| format!("processing stopped: {e}"))??;
        Ok((outcome, file))
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
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
