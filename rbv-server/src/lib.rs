// SPDX-License-Identifier: MPL-2.0
//! `rbv serve`: the service's `/v1` job API on your own machine, with the
//! local backend doing the work.
//!
//! The pure parts have their own modules: `request` (reading bodies),
//! `store` (SQLite), `queue` (bounded queues per worker pool), `webhook`,
//! `metrics` and `crypto`; `worker` runs the queued jobs through
//! `rbv-runner` (one job's GStreamer pipeline); `http` glues them to axum.

pub mod admin;
pub mod budget;
pub mod crypto;
pub mod egress;
mod housekeeping;
pub mod http;
pub mod metrics;
pub mod queue;
pub mod request;
pub mod storage;
pub mod store;
pub mod webhook;
mod worker;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rbv_api::JobStatus;

use queue::{Pool, Queue, Queues};
use store::{Job, Store};

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// Database, uploads and outputs live here.
    pub data_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://user:password@host:port/db`) for the
    /// store instead of SQLite in `data_dir`.
    pub database: Option<String>,
    /// Where uploads and outputs are kept: `data_dir` (the default) or an
    /// S3-compatible bucket every node reaches.
    pub storage: storage::Spec,
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
    /// Largest upload, and largest file fetched for a job (`video_url`
    /// elsewhere, background image).
    pub max_upload_bytes: u64,
    /// One deadline per job: download, processing and encoding.
    pub job_timeout: Duration,
    /// Largest input frame (width x height), checked before decoding.
    pub max_pixels: u64,
    /// Most frames and longest media time of an input.
    pub max_frames: u64,
    pub max_duration: Duration,
    /// Largest background image and output canvas (width x height).
    pub max_image_pixels: u64,
    pub max_canvas_pixels: u64,
    /// Bytes of uploads one key may keep (0: no quota).
    pub upload_quota_bytes: u64,
    /// Uploads and outputs older than this are deleted (zero: kept).
    pub retention: Duration,
    /// HTTP: a request's headers must arrive within `header_timeout`; a
    /// body may stall `body_timeout`; an idle kept-alive connection closes
    /// after `keep_alive_timeout`; at most `max_connections` are open
    /// (and never more than the open-file limit less 64).
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keep_alive_timeout: Duration,
    pub max_connections: usize,
    /// Networks `video_url`, background images and webhooks may reach
    /// besides public addresses (default none).
    pub allow_private: Vec<ipnet::IpNet>,
    /// `/metrics`: readable with `Authorization: Bearer <token>`, or by
    /// anyone when `metrics_public`; otherwise 404.
    pub metrics_token: Option<String>,
    pub metrics_public: bool,
    /// Times a job a stop caught mid-processing is run again before it fails.
    pub max_attempts: i64,
    pub webhook_secret: Option<String>,
    pub webhook_retries: i64,
    pub webhook_retry_delay: Duration,
    /// `/v1/admin`: on with this token in `X-Admin-Token`, else not there.
    pub admin_token: Option<String>,
    /// An uploaded video longer than this is cut into segments any worker
    /// takes, then joined (zero: never).
    pub segment_seconds: Duration,
    /// What this node does: answer the API, run jobs, or both.
    pub role: Role,
    /// How long a worker's claim on a job lasts unless renewed (renewed
    /// every third of it); a job whose worker stopped renewing is taken
    /// again after this.
    pub lease: Duration,
}

/// `--role`: a node answers the `/v1` API, runs jobs, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    All,
    Api,
    Worker,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Role, String> {
        match s {
            "all" => Ok(Role::All),
            "api" => Ok(Role::Api),
            "worker" => Ok(Role::Worker),
            _ => Err(format!("--role {s}: expected all, api or worker")),
        }
    }
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }
    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }
    pub fn runs_jobs(self) -> bool {
        self != Role::Api
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:8080".parse().expect("an address"),
            data_dir: PathBuf::from("rbv-data"),
            database: None,
            storage: storage::Spec::Local,
            public_url: None,
            heavy_workers: 1,
            light_workers: 1,
            queue_size: 100,
            rate_limit: 600,
            link_ttl: Duration::from_secs(24 * 3600),
            max_upload_bytes: rbv_api::api::MAX_UPLOAD_BYTES,
            job_timeout: Duration::from_secs(3600),
            // DCI 4K.
            max_pixels: 4096 * 2160,
            // An hour at 60 frames a second.
            max_frames: 216_000,
            max_duration: Duration::from_secs(3600),
            max_image_pixels: 4096 * 4096,
            max_canvas_pixels: 4096 * 2160,
            upload_quota_bytes: 5_000_000_000,
            retention: Duration::from_secs(7 * 24 * 3600),
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            keep_alive_timeout: Duration::from_secs(15),
            max_connections: 512,
            allow_private: Vec::new(),
            metrics_token: None,
            metrics_public: false,
            max_attempts: 3,
            webhook_secret: None,
            webhook_retries: 3,
            webhook_retry_delay: Duration::from_secs(10),
            admin_token: None,
            role: Role::All,
            lease: Duration::from_secs(30),
            segment_seconds: Duration::from_secs(60),
        }
    }
}

/// Structured log lines (logfmt) on stderr: one per request, job transition
/// and webhook delivery. Keys are never passed here, only their ids.
pub mod log {
    pub fn line(fields: &[(&str, &str)]) {
        eprintln!(
            "ts={}{}",
            humantime::format_rfc3339_millis(std::time::SystemTime::now()),
            fields_text(fields)
        );
    }

    /// ` key=value` for each field: quoted when it holds a space, a quote or
    /// `=`; an empty value is `-`, as every absent one is written.
    pub(crate) fn fields_text(fields: &[(&str, &str)]) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for (k, v) in fields {
            if v.is_empty() {
                let _ = write!(out, " {k}=-");
            } else if v.contains([' ', '"', '=']) {
                let _ = write!(out, " {k}={v:?}");
            } else {
                let _ = write!(out, " {k}={v}");
            }
        }
        out
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn empty_values_read_as_absent_ones_do() {
            assert_eq!(
                super::fields_text(&[
                    ("event", "request"),
                    ("job_id", ""),
                    ("key_id", "-"),
                    ("error", "a \"b\" c")
                ]),
                " event=request job_id=- key_id=- error=\"a \\\"b\\\" c\""
            );
        }
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
    pub egress: Arc<egress::Policy>,
    pub storage: storage::Storage,
    /// This node's hold on its data directory (with a bucket), let go by
    /// `Server::stop` or the process's end.
    dir_lock: std::sync::Mutex<Option<std::fs::File>>,
    pub(crate) fetcher: reqwest::Client,
}

impl App {
    /// Uploads being received and checked (kept in `storage` once checked).
    pub fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
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
        let link = (job.status == JobStatus::Completed)
            .then(|| self.output_link(job))
            .flatten();
        let webhook_events = self.store.webhooks_for_job(&job.id).unwrap_or_default();
        let settings: serde_json::Value =
            serde_json::from_str(&job.settings).unwrap_or(serde_json::Value::Null);
        // What the job will not do as asked (prompt terms it cannot
        // honour, a format without sound), from its settings.
        let warnings = request::Settings::from_json(&settings)
            .map(|s| s.warnings(job.output_format))
            .unwrap_or_default();
        serde_json::json!({
            "id": job.id,
            "status": job.status.as_str(),
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
            "model": job.model.as_str(),
            "output_format": job.output_format.as_str(),
            "background": settings.get("background"),
            "text_prompt": settings.get("text_prompt"),
            "composition": settings.get("composition"),
            "video_url": job.video_url,
            "webhook_url": job.webhook_url,
            "webhook_events": webhook_events,
            "metadata": job.metadata.as_deref().and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok()),
            "attempts": job.attempts,
            "request_id": job.request_id,
            "warnings": warnings,
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
    /// Cleared to end the PostgreSQL listener thread.
    listening: Arc<std::sync::atomic::AtomicBool>,
}

impl Server {
    /// Stops accepting requests and stops the workers (a job being processed
    /// is picked up again at the next start).
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.listening
            .store(false, std::sync::atomic::Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
        // A node started again in this process may take the directory.
        if let Ok(mut lock) = self.app.dir_lock.lock() {
            lock.take();
        }
    }
}

/// Opens the store, recovers jobs a stop interrupted, starts the workers and
/// listens. Returns once the socket is bound.
pub async fn start(config: Config) -> Result<Server, String> {
    if let Some(problem) = config.admin_token.as_deref().and_then(admin::token_problem) {
        return Err(problem);
    }
    if config.role != Role::All && config.database.is_none() {
        return Err(format!(
            "--role {}: API and worker nodes share a PostgreSQL store (--database); \
             on SQLite one node does both (--role all)",
            config.role.name()
        ));
    }
    rbv_runner::init()?;
    // One job after another: models stay loaded between them.
    rbv_core::model::keep_sessions_loaded();
    // A shared store means a data directory other nodes may be using: what
    // is in it is not this node's to clean up at start; with the files in a
    // bucket, the data directory is this node's alone again.
    let shared = config.database.is_some();
    let storage = storage::Storage::new(&config.storage, &config.data_dir)?;
    // Held before anything in it is cleaned.
    let dir_lock = if storage.is_local() {
        None
    } else {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| format!("{}: {e}", config.data_dir.display()))?;
        Some(housekeeping::lock_data_dir(&config.data_dir)?)
    };
    housekeeping::prepare_data_dir(&config.data_dir, shared, shared && storage.is_local())?;
    let store = Arc::new(match &config.database {
        Some(url) => Store::connect(url).map_err(|e| format!("--database: {e}"))?,
        None => {
            let db = config.data_dir.join("rbv.db");
            Store::open(&db).map_err(|e| format!("{}: {e}", db.display()))?
        }
    });
    let egress = Arc::new(egress::Policy {
        allowed: config.allow_private.clone(),
    });
    store.set_lease_seconds(config.lease.as_secs().max(2) as i64);
    storage.check(store.node()).await?;
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
        queues: {
            let workers = |n: usize| if config.role.runs_jobs() { n } else { 0 };
            Queues {
                heavy: Queue::new(
                    Pool::Heavy,
                    store.clone(),
                    config.queue_size,
                    workers(config.heavy_workers),
                ),
                light: Queue::new(
                    Pool::Light,
                    store.clone(),
                    config.queue_size,
                    workers(config.light_workers),
                ),
            }
        },
        metrics: metrics::Metrics::default(),
        webhooks: Arc::new(webhook::Webhooks::new(
            config.webhook_secret.clone(),
            config.webhook_retry_delay,
            config.webhook_retries,
            &egress,
        )),
        link_secret: secret.into_bytes(),
        ffmpeg: rbv_runner::ffmpeg_available(),
        rate: Default::default(),
        fetcher: egress
            .client(5, Duration::from_secs(10), Duration::from_secs(60))
            .map_err(|e| e.to_string())?,
        egress,
        storage,
        dir_lock: std::sync::Mutex::new(dir_lock),
        config,
    });

    // A node alone on its store requeues at once what a stop interrupted;
    // on a shared store other nodes may be running those jobs: their leases
    // say when they are free to take.
    let (requeued, failed) = if shared {
        (Vec::new(), Vec::new())
    } else {
        store
            .recover(app.config.max_attempts)
            .map_err(|e| e.to_string())?
    };
    for id in &requeued {
        log::line(&[("event", "recovered"), ("job_id", id), ("to", "pending")]);
    }
    for id in &failed {
        log::line(&[("event", "recovered"), ("job_id", id), ("to", "failed")]);
        app.notify(id, "job.failed");
        worker::release_spent_segments(&app, id).await;
    }
    app.webhooks.resume(&store, !shared);

    let mut tasks = Vec::new();
    if shared {
        // Deliveries a stopped node left: taken over once its hold ran out.
        let (app, store) = (app.clone(), store.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                app.webhooks.resume(&store, false);
            }
        }));
    }
    let listening = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    if let Some(url) = &app.config.database
        && app.config.role.runs_jobs()
    {
        listen_for_jobs(app.clone(), url.clone(), listening.clone());
    }
    for pool in [Pool::Heavy, Pool::Light] {
        for i in 0..app.queues.get(pool).workers {
            let app = app.clone();
            let name = format!("{}/{}-{i}", app.store.node(), pool.name());
            tasks.push(tokio::spawn(
                async move { worker::run(app, pool, name).await },
            ));
        }
    }
    tasks.push(tokio::spawn(housekeeping::sweep_every_hour(app.clone())));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let router = http::router(app.clone(), app.config.role);
    let limits = http::conn::Limits {
        header_timeout: app.config.header_timeout,
        body_timeout: app.config.body_timeout,
        keep_alive_timeout: app.config.keep_alive_timeout,
        max_connections: http::conn::open_file_limit().map_or(app.config.max_connections, |n| {
            app.config
                .max_connections
                .min(n.saturating_sub(64).max(16) as usize)
        }),
    };
    let max_connections = limits.max_connections;
    tasks.push(tokio::spawn(http::conn::serve(
        listener, router, limits, rx,
    )));
    log::line(&[
        ("event", "listening"),
        ("url", &format!("http://{addr}")),
        ("data_dir", &app.config.data_dir.to_string_lossy()),
        // The kind only: the URL may carry a password.
        (
            "database",
            match app.store.dialect() {
                store::db::Dialect::Sqlite => "sqlite",
                store::db::Dialect::Postgres => "postgres",
            },
        ),
        ("storage", &app.storage.describe()),
        ("role", app.config.role.name()),
        ("node", app.store.node()),
        ("heavy_workers", &app.queues.heavy.workers.to_string()),
        ("light_workers", &app.queues.light.workers.to_string()),
        ("requeued", &requeued.len().to_string()),
        ("max_connections", &max_connections.to_string()),
        ("ffmpeg", if app.ffmpeg { "yes" } else { "no" }),
        (
            "admin",
            if app.config.admin_token.is_some() {
                "on"
            } else {
                "off"
            },
        ),
    ]);
    Ok(Server {
        addr,
        app,
        shutdown: Some(tx),
        tasks,
        listening,
    })
}

/// Wakes this node's idle workers when any node queues a job: PostgreSQL's
/// LISTEN on a connection of its own, on a thread of its own (the
/// synchronous client blocks). A broken connection is opened again; the
/// workers' own look at the store every half lease covers the gap.
fn listen_for_jobs(app: Arc<App>, url: String, on: Arc<std::sync::atomic::AtomicBool>) {
    use postgres::fallible_iterator::FallibleIterator;
    use std::sync::atomic::Ordering;
    let run = move || {
        while on.load(Ordering::Relaxed) {
            let mut client = match postgres::Client::connect(&url, postgres::NoTls) {
                Ok(c) => c,
                Err(e) => {
                    log::line(&[
                        ("event", "listen"),
                        ("error", &store::db::Error::from(e).to_string()),
                    ]);
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if let Err(e) = client.batch_execute(&format!("LISTEN {}", store::JOBS_CHANNEL)) {
                log::line(&[
                    ("event", "listen"),
                    ("error", &store::db::Error::from(e).to_string()),
                ]);
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            let mut notes = client.notifications();
            while on.load(Ordering::Relaxed) {
                // A new iterator each time: one whose wait has run out
                // answers at once from then on (a busy loop).
                match notes.timeout_iter(Duration::from_millis(500)).next() {
                    Ok(Some(n)) => {
                        // `pool`, or `pool#n` for the n-th of a long job's segments.
                        let pool = n.payload().split('#').next().unwrap_or_default();
                        if let Some(q) = app.queues.named(pool) {
                            q.wake();
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        log::line(&[
                            ("event", "listen"),
                            ("error", &store::db::Error::from(e).to_string()),
                        ]);
                        break;
                    }
                }
            }
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("rbv-listen".into())
        .spawn(run)
    {
        log::line(&[("event", "listen"), ("error", &e.to_string())]);
    }
}
