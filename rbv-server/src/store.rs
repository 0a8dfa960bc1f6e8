// SPDX-License-Identifier: MPL-2.0
//! The server's durable state, in SQLite (embedded, the default) or
//! PostgreSQL (`--database postgres://...`): keys (hashed), uploads, jobs and
//! their state machine, usage and webhook deliveries. Migrations live in
//! `migrations/`, one set for both databases (`db` says how they differ),
//! and run at open; times are Unix seconds.

use std::path::Path;
use std::sync::Mutex;

use rbv_api::{JobStatus, ModelName, OutputFormat};
use serde_json::{Value, json};

pub mod db;
pub mod keys;
mod limits;
use db::{Conn, Dialect, Row, p};
pub use db::{Error, Result};
pub use keys::KeyInfo;
pub use limits::Expired;

/// Schema versions, applied in order; SQLite's `PRAGMA user_version` and
/// PostgreSQL's `rbv_schema` table record the last.
const MIGRATIONS: [&str; 5] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_limits.sql"),
    include_str!("../migrations/0003_admin.sql"),
    include_str!("../migrations/0004_leases.sql"),
    include_str!("../migrations/0005_webhook_leases.sql"),
];

/// The channel PostgreSQL notifies when a job is queued (its pool as payload).
pub const JOBS_CHANNEL: &str = "rbv_jobs";

/// The worker pool a model's jobs go to.
pub fn pool_of(model: ModelName) -> &'static str {
    if model.is_heavy() { "heavy" } else { "light" }
}

/// What a worker's claim found.
#[derive(Debug)]
pub enum Claimed {
    /// A job, now processing under this node's lease.
    Job(Box<Job>),
    /// A job whose lease ran out `max_attempts` times: failed, with its id.
    GaveUp(String),
    /// Nothing to do.
    Nothing,
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// RFC 3339 (UTC) for a stored time.
pub fn iso(t: i64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[derive(Debug, Clone)]
pub struct Key {
    pub id: String,
    pub name: String,
    pub credits: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Upload {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size: i64,
    pub path: String,
    /// What its packets say (read at upload, nothing decoded).
    pub width: i64,
    pub height: i64,
    pub frames: i64,
    pub seconds: f64,
}

#[derive(Debug, Clone, Default)]
pub struct Job {
    pub id: String,
    pub key_id: String,
    pub request_id: String,
    pub video_url: String,
    pub upload_id: Option<String>,
    pub status: JobStatus,
    pub progress: f64,
    pub settings: String,
    pub model: ModelName,
    pub output_format: OutputFormat,
    pub webhook_url: Option<String>,
    pub metadata: Option<String>,
    pub error: Option<String>,
    pub output_file: Option<String>,
    pub duration_seconds: Option<f64>,
    pub credits_used: Option<f64>,
    pub billing_status: Option<String>,
    pub resolution: Option<String>,
    pub processing_ms: Option<i64>,
    pub attempts: i64,
    /// Credits of its key it holds while queued or running (None: none yet).
    pub reserved_credits: Option<f64>,
    pub reserved_seconds: Option<f64>,
    pub created_at: i64,
    pub queued_at: Option<i64>,
    pub started_at: Option<i64>,
    pub completed_at: Option<i64>,
}

const JOB_COLUMNS: &str = "id, key_id, request_id, video_url, upload_id, status, progress, settings, \
    model, output_format, webhook_url, metadata, error, output_file, duration_seconds, credits_used, \
    billing_status, resolution, processing_ms, attempts, created_at, queued_at, started_at, completed_at, \
    reserved_credits, reserved_seconds";

/// A name column read as its type.
fn named<T: std::str::FromStr<Err = String>>(r: &Row, i: usize) -> Result<T> {
    r.get::<String>(i)?
        .parse()
        .map_err(|e: String| Error::Value(format!("column {i}: {e}")))
}

fn job_row(r: &Row) -> Result<Job> {
    Ok(Job {
        id: r.get(0)?,
        key_id: r.get(1)?,
        request_id: r.get(2)?,
        video_url: r.get(3)?,
        upload_id: r.get(4)?,
        status: JobStatus::parse(&r.get::<String>(5)?),
        progress: r.get(6)?,
        settings: r.get(7)?,
        model: named(r, 8)?,
        output_format: named(r, 9)?,
        webhook_url: r.get(10)?,
        metadata: r.get(11)?,
        error: r.get(12)?,
        output_file: r.get(13)?,
        duration_seconds: r.get(14)?,
        credits_used: r.get(15)?,
        billing_status: r.get(16)?,
        resolution: r.get(17)?,
        processing_ms: r.get(18)?,
        attempts: r.get(19)?,
        created_at: r.get(20)?,
        queued_at: r.get(21)?,
        started_at: r.get(22)?,
        completed_at: r.get(23)?,
        reserved_credits: r.get(24)?,
        reserved_seconds: r.get(25)?,
    })
}

/// What a job that finished well records.
#[derive(Clone, Copy)]
pub struct Completion<'a> {
    pub output_file: &'a str,
    pub duration_seconds: f64,
    pub credits: f64,
    pub processing_ms: i64,
    pub resolution: &'a str,
}

/// (delivery id, url, event, body, attempts so far).
pub type PendingWebhook = (String, String, String, String, i64);

enum Backend {
    Sqlite(Mutex<rusqlite::Connection>),
    Postgres(Box<db::Pg>),
}

pub struct Store {
    backend: Backend,
    /// This process, as the owner of the leases its workers hold.
    node: String,
    /// How long a lease lasts unless renewed, in seconds.
    lease_s: std::sync::atomic::AtomicI64,
}

/// `FOR UPDATE` where the database has row locks (SQLite's transaction
/// holds the whole database's write lock already).
pub(crate) fn lock_row(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    }
}

fn new_node() -> String {
    crate::crypto::new_id("node")
}

impl Store {
    /// The embedded store: one SQLite file.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = rusqlite::Connection::open(path)?;
        // WAL: readers do not wait for the writer; synchronous=NORMAL is
        // durable across a process crash (the case that matters here).
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(Store {
            backend: Backend::Sqlite(Mutex::new(conn)),
            node: new_node(),
            lease_s: 30.into(),
        })
    }

    /// The shared store: a PostgreSQL database (`postgres://user@host/db`),
    /// migrated at connect (one node at a time, under an advisory lock).
    pub fn connect(url: &str) -> std::result::Result<Store, String> {
        let pg = db::Pg::connect(url)?;
        pg.run(|c| {
            c.exec("SELECT pg_advisory_xact_lock(7460361)", p![])?;
            c.exec(
                "CREATE TABLE IF NOT EXISTS rbv_schema (version BIGINT NOT NULL)",
                p![],
            )?;
            let version: Option<i64> = c
                .row("SELECT MAX(version) FROM rbv_schema", p![])?
                .map(|r| r.get(0))
                .transpose()?
                .flatten();
            for (i, sql) in MIGRATIONS
                .iter()
                .enumerate()
                .skip(version.unwrap_or(0).max(0) as usize)
            {
                c.batch(&db::pg_migration(sql))?;
                c.exec("DELETE FROM rbv_schema", p![])?;
                c.exec(
                    "INSERT INTO rbv_schema (version) VALUES (?1)",
                    p![(i + 1) as i64],
                )?;
            }
            Ok(())
        })
        .map_err(|e| format!("the database's schema: {e}"))?;
        Ok(Store {
            backend: Backend::Postgres(Box::new(pg)),
            node: new_node(),
            lease_s: 30.into(),
        })
    }

    /// The lease owner this process's workers claim as.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How long a claim holds a job unless renewed (at least 2 s).
    pub fn set_lease_seconds(&self, s: i64) {
        self.lease_s
            .store(s.max(2), std::sync::atomic::Ordering::Relaxed);
    }

    pub fn lease_seconds(&self) -> i64 {
        self.lease_s.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Which database this store is on.
    pub fn dialect(&self) -> Dialect {
        match self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Runs `f` in one transaction, committed when it returns Ok (on
    /// SQLite an immediate one: the write lock first, so a read followed
    /// by a write never meets another process's commit in between).
    fn with<T: Send>(&self, f: impl Fn(&mut Conn) -> Result<T> + Send) -> Result<T> {
        match &self.backend {
            Backend::Sqlite(conn) => {
                let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                let tx =
                    conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                let out = f(&mut Conn::Sqlite(&tx))?;
                tx.commit()?;
                Ok(out)
            }
            Backend::Postgres(pg) => pg.run(f),
        }
    }

    pub fn ping(&self) -> Result<()> {
        self.with(|c| c.one::<i64>("SELECT 1", p![]).map(|_| ()))
    }

    /// A named setting, created with `init` the first time.
    pub fn setting_or_init(&self, name: &str, init: impl FnOnce() -> String) -> Result<String> {
        let value = init();
        self.with(|c| {
            c.exec(
                "INSERT INTO settings (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                p![name, &value],
            )?;
            c.one("SELECT value FROM settings WHERE name = ?1", p![name])
        })
    }

    /// Credits a limited key has left (neither charged nor held by a
    /// queued or running job); None for an unlimited key.
    pub fn credits_left(&self, key: &Key) -> Result<Option<f64>> {
        self.with(|c| {
            c.one(
                "SELECT credits - credits_used - credits_reserved FROM api_keys WHERE id = ?1",
                p![&key.id],
            )
        })
    }

    // ---- uploads ----

    pub fn insert_upload(&self, key_id: &str, u: &Upload) -> Result<()> {
        self.with(|c| {
            c.exec(
                "INSERT INTO uploads (id, key_id, filename, content_type, size, path, created_at, \
                 width, height, frames, seconds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                p![
                    &u.id,
                    key_id,
                    &u.filename,
                    &u.content_type,
                    u.size,
                    &u.path,
                    now(),
                    u.width,
                    u.height,
                    u.frames,
                    u.seconds
                ],
            )
        })
        .map(|_| ())
    }

    pub fn upload(&self, key_id: &str, id: &str) -> Result<Option<Upload>> {
        self.with(|c| {
            c.row(
                "SELECT id, filename, content_type, size, path, COALESCE(width, 0), COALESCE(height, 0), \
                 COALESCE(frames, 0), COALESCE(seconds, 0) FROM uploads \
                 WHERE id = ?1 AND key_id = ?2 AND removed_at IS NULL",
                p![id, key_id],
            )?
            .map(|r| {
                Ok(Upload {
                    id: r.get(0)?,
                    filename: r.get(1)?,
                    content_type: r.get(2)?,
                    size: r.get(3)?,
                    path: r.get(4)?,
                    width: r.get(5)?,
                    height: r.get(6)?,
                    frames: r.get(7)?,
                    seconds: r.get(8)?,
                })
            })
            .transpose()
        })
    }

    // ---- jobs ----

    pub fn insert_job(&self, j: &Job) -> Result<()> {
        self.with(|c| {
            c.exec(
                "INSERT INTO jobs (id, key_id, request_id, video_url, upload_id, status, settings, model, \
                 output_format, webhook_url, metadata, created_at, queued_at, pool) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
                p![
                    &j.id, &j.key_id, &j.request_id, &j.video_url, &j.upload_id, j.status.as_str(), &j.settings,
                    j.model.as_str(), j.output_format.as_str(), &j.webhook_url, &j.metadata, j.created_at, j.queued_at,
                    pool_of(j.model)
                ],
            )
        })
        .map(|_| ())
    }

    pub fn delete_job(&self, id: &str) -> Result<()> {
        self.with(|c| c.exec("DELETE FROM jobs WHERE id = ?1", p![id]))
            .map(|_| ())
    }

    pub fn job(&self, id: &str) -> Result<Option<Job>> {
        self.with(|c| {
            c.row(
                &format!("SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?1"),
                p![id],
            )?
            .map(|r| job_row(&r))
            .transpose()
        })
    }

    /// A job as its key sees it: another key's job does not exist.
    pub fn job_for_key(&self, key_id: &str, id: &str) -> Result<Option<Job>> {
        Ok(self.job(id)?.filter(|j| j.key_id == key_id))
    }

    pub fn list_jobs(
        &self,
        key_id: &str,
        status: Option<&JobStatus>,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<Job>, i64)> {
        let status = status.map(JobStatus::as_str);
        self.with(|c| {
            let total = c.one(
                "SELECT COUNT(*) FROM jobs WHERE key_id = ?1 AND (CAST(?2 AS TEXT) IS NULL OR status = ?2)",
                p![key_id, status],
            )?;
            let jobs = c
                .rows(
                    &format!(
                        "SELECT {JOB_COLUMNS} FROM jobs WHERE key_id = ?1 \
                         AND (CAST(?2 AS TEXT) IS NULL OR status = ?2) \
                         ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4"
                    ),
                    p![key_id, status, limit, offset],
                )?
                .iter()
                .map(job_row)
                .collect::<Result<Vec<_>>>()?;
            Ok((jobs, total))
        })
    }

    /// created/failed -> pending with new settings. False when the job is in
    /// another state (already queued, running or completed).
    pub fn queue_job(
        &self,
        id: &str,
        settings: &str,
        model: ModelName,
        format: OutputFormat,
    ) -> Result<bool> {
        self.with(|c| {
            let n = c.exec(
                "UPDATE jobs SET status = 'pending', settings = ?2, model = ?3, output_format = ?4, \
                 progress = 0, error = NULL, queued_at = ?5, pool = ?6, lease_owner = NULL, \
                 lease_until = NULL WHERE id = ?1 AND status IN ('created', 'failed')",
                p![id, settings, model.as_str(), format.as_str(), now(), pool_of(model)],
            )?;
            if n == 1 && c.dialect() == Dialect::Postgres {
                // Delivered at commit, to every node listening.
                c.exec(
                    "SELECT pg_notify(?1, ?2)",
                    p![JOBS_CHANNEL, pool_of(model)],
                )?;
            }
            Ok(n == 1)
        })
    }

    /// Undoes `queue_job` when the job could not be queued (full queue, no
    /// credits): back to its state and error, its reservation released.
    pub fn unqueue_job(&self, id: &str, back_to: &JobStatus, error: Option<&str>) -> Result<()> {
        self.with(|c| {
            limits::release(c, id)?;
            c.exec(
                "UPDATE jobs SET status = ?2, error = ?3 WHERE id = ?1 AND status = 'pending'",
                p![id, back_to.as_str(), error],
            )?;
            Ok(())
        })
    }

    /// pending -> processing for one worker; None when another took it or
    /// it is no longer pending.
    pub fn claim(&self, id: &str) -> Result<Option<Job>> {
        let (node, lease) = (self.node.as_str(), self.lease_seconds());
        let n = self.with(|c| {
            c.exec(
                "UPDATE jobs SET status = 'processing', started_at = ?2, attempts = attempts + 1, \
                 progress = 0, lease_owner = ?3, lease_until = ?4 WHERE id = ?1 AND status = 'pending'",
                p![id, now(), node, now() + lease],
            )
        })?;
        if n == 1 { self.job(id) } else { Ok(None) }
    }

    /// Jobs waiting in a pool (across every node).
    pub fn pending_count(&self, pool: &str) -> Result<i64> {
        self.with(|c| {
            c.one(
                "SELECT COUNT(*) FROM jobs WHERE pool = ?1 AND status = 'pending'",
                p![pool],
            )
        })
    }

    /// The oldest job of `pool` that is queued, or whose worker's lease ran
    /// out, becomes this node's (one claimer per job on either database:
    /// SQLite's write lock, PostgreSQL's `FOR UPDATE SKIP LOCKED`). A job
    /// whose lease ran out `max_attempts` times fails instead.
    pub fn claim_next(&self, pool: &str, max_attempts: i64) -> Result<Claimed> {
        let (node, lease) = (self.node.as_str(), self.lease_seconds());
        let claimed = self.with(|c| {
            let t = now();
            let lock = match c.dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            };
            let Some(r) = c.row(
                &format!(
                    "SELECT id, status, attempts FROM jobs WHERE pool = ?1 \
                     AND (status = 'pending' OR (status = 'processing' AND lease_until < ?2)) \
                     ORDER BY queued_at, rowid LIMIT 1{lock}"
                ),
                p![pool, t],
            )?
            else {
                return Ok(None);
            };
            let (id, status, attempts): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if status == "processing" && attempts >= max_attempts {
                limits::release(c, &id)?;
                c.exec(
                    "UPDATE jobs SET status = 'failed', billing_status = 'not_charged', \
                     completed_at = ?2, lease_owner = NULL, lease_until = NULL, error = ?3 WHERE id = ?1",
                    p![
                        &id,
                        t,
                        format!(
                            "the node processing this job stopped answering {attempts} times; \
                             start it again to retry"
                        )
                    ],
                )?;
                return Ok(Some(Err(id)));
            }
            c.exec(
                "UPDATE jobs SET status = 'processing', started_at = ?2, attempts = attempts + 1, \
                 progress = 0, lease_owner = ?3, lease_until = ?4 WHERE id = ?1",
                p![&id, t, node, t + lease],
            )?;
            Ok(Some(Ok(id)))
        })?;
        Ok(match claimed {
            None => Claimed::Nothing,
            Some(Err(id)) => Claimed::GaveUp(id),
            Some(Ok(id)) => match self.job(&id)? {
                Some(j) => Claimed::Job(Box::new(j)),
                None => Claimed::Nothing,
            },
        })
    }

    /// Extends this node's lease on its run `attempt` of a job; false when
    /// the lease is gone (it ran out and another run took the job, on this
    /// node or another, or the job left processing).
    pub fn renew_lease(&self, id: &str, attempt: i64) -> Result<bool> {
        let (node, lease) = (self.node.as_str(), self.lease_seconds());
        self.with(|c| {
            c.exec(
                "UPDATE jobs SET lease_until = ?4 WHERE id = ?1 AND status = 'processing' \
                 AND lease_owner = ?2 AND attempts = ?3",
                p![id, node, attempt, now() + lease],
            )
        })
        .map(|n| n == 1)
    }

    pub fn set_progress(&self, id: &str, progress: f64) -> Result<()> {
        self.with(|c| {
            c.exec(
                "UPDATE jobs SET progress = ?2 WHERE id = ?1 AND status = 'processing'",
                p![id, progress],
            )
        })
        .map(|_| ())
    }

    /// processing -> completed, its one usage charge and its reservation
    /// settled, in one transaction. The charge is at most what was reserved.
    /// False when nothing was recorded: the job was not this node's to
    /// complete (completed already, or its lease was lost to another node).
    pub fn complete(&self, id: &str, attempt: i64, done: &Completion) -> Result<bool> {
        let done = *done;
        let node = self.node.as_str();
        self.with(move |c| {
            let t = now();
            // The row locked (PostgreSQL) while it is checked and changed:
            // a run that lost its lease cannot slip in between.
            let reserved: Option<Option<f64>> = c
                .row(
                    &format!(
                        "SELECT reserved_credits FROM jobs WHERE id = ?1 AND status = 'processing' \
                         AND lease_owner = ?2 AND attempts = ?3{}",
                        lock_row(c.dialect())
                    ),
                    p![id, node, attempt],
                )?
                .map(|r| r.get(0))
                .transpose()?;
            let Some(reserved) = reserved else {
                // Not running here (completed already): nothing to record twice.
                return Ok(false);
            };
            let credits = reserved.map_or(done.credits, |r| done.credits.min(r));
            limits::release(c, id)?;
            c.exec(
                "UPDATE api_keys SET credits_used = credits_used + ?2 \
                 WHERE id = (SELECT key_id FROM jobs WHERE id = ?1)",
                p![id, credits],
            )?;
            let done = &Completion { credits, ..done };
            c.exec(
                "UPDATE jobs SET status = 'completed', progress = 100, output_file = ?2, \
                 duration_seconds = ?3, credits_used = ?4, billing_status = 'charged', \
                 processing_ms = ?5, resolution = ?6, completed_at = ?7, error = NULL, \
                 lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                p![
                    id,
                    done.output_file,
                    done.duration_seconds,
                    done.credits,
                    done.processing_ms,
                    done.resolution,
                    t
                ],
            )?;
            c.exec(
                "INSERT INTO usage_events (key_id, job_id, model, seconds, credits, created_at) \
                 SELECT key_id, id, model, CAST(?2 AS DOUBLE PRECISION), CAST(?3 AS DOUBLE PRECISION), \
                 CAST(?4 AS BIGINT) FROM jobs WHERE id = ?1 ON CONFLICT DO NOTHING",
                p![id, done.duration_seconds, done.credits, t],
            )?;
            Ok(true)
        })
    }

    /// -> failed with a message; failed jobs are not charged and hold no
    /// credits. Only a job not yet running, or this node's run `attempt`
    /// of it: otherwise nothing changes (false).
    pub fn fail(&self, id: &str, attempt: i64, error: &str) -> Result<bool> {
        let node = self.node.as_str();
        self.with(|c| {
            // Never a completed job; a processing one only by its run.
            let mine = c
                .row(
                    &format!(
                        "SELECT id FROM jobs WHERE id = ?1 AND (status IN ('created', 'pending') \
                         OR (status = 'processing' AND lease_owner = ?2 AND attempts = ?3)){}",
                        lock_row(c.dialect())
                    ),
                    p![id, node, attempt],
                )?
                .is_some();
            if !mine {
                return Ok(false);
            }
            limits::release(c, id)?;
            c.exec(
                "UPDATE jobs SET status = 'failed', error = ?2, billing_status = 'not_charged', \
                 completed_at = ?3, lease_owner = NULL, lease_until = NULL WHERE id = ?1",
                p![id, error, now()],
            )?;
            Ok(true)
        })
    }

    /// At the start of a node that has its store to itself (SQLite): jobs a
    /// stop caught mid-processing go back to the queue at once, or fail after
    /// `max_attempts` tries. (On a shared store their leases run out and
    /// another worker takes them: `claim_next`.) Returns (requeued, failed) ids.
    pub fn recover(&self, max_attempts: i64) -> Result<(Vec<String>, Vec<String>)> {
        self.with(|c| {
            let mut ids = |status_sql: &str| -> Result<Vec<String>> {
                c.rows(status_sql, p![max_attempts])?
                    .iter()
                    .map(|r| r.get(0))
                    .collect()
            };
            let requeue = ids("SELECT id FROM jobs WHERE status = 'processing' AND attempts < ?1")?;
            let fail = ids("SELECT id FROM jobs WHERE status = 'processing' AND attempts >= ?1")?;
            for id in &fail {
                limits::release(c, id)?;
            }
            c.exec(
                "UPDATE jobs SET status = 'pending', progress = 0, lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'processing' AND attempts < ?1",
                p![max_attempts],
            )?;
            c.exec(
                "UPDATE jobs SET status = 'failed', billing_status = 'not_charged', completed_at = ?2, \
                 error = 'the server stopped while processing this job ' || attempts || ' times; start it again to retry' \
                 WHERE status = 'processing' AND attempts >= ?1",
                p![max_attempts, now()],
            )?;
            Ok((requeue, fail))
        })
    }

    /// (id, model) of every queued job, oldest first.
    pub fn pending_jobs(&self) -> Result<Vec<(String, ModelName)>> {
        self.with(|c| {
            c.rows(
                "SELECT id, model FROM jobs WHERE status = 'pending' ORDER BY queued_at, rowid",
                p![],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, named(r, 1)?)))
            .collect()
        })
    }

    pub fn count_by_status(&self) -> Result<Vec<(String, i64)>> {
        self.with(|c| {
            c.rows("SELECT status, COUNT(*) FROM jobs GROUP BY status", p![])?
                .iter()
                .map(|r| Ok((r.get(0)?, r.get(1)?)))
                .collect()
        })
    }

    // ---- usage ----

    pub fn usage_summary(&self, key_id: &str, days: i64) -> Result<Value> {
        let since = now() - days * 86_400;
        self.with(|c| {
            let counts = c
                .row(
                    "SELECT COUNT(*), \
                     CAST(COALESCE(SUM(CASE WHEN status = 'completed' THEN 1 ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) \
                     FROM jobs WHERE key_id = ?1 AND created_at >= ?2",
                    p![key_id, since],
                )?
                .ok_or_else(|| Error::Value("no count".into()))?;
            let (total, completed, failed): (i64, i64, i64) =
                (counts.get(0)?, counts.get(1)?, counts.get(2)?);
            let sums = c
                .row(
                    "SELECT COALESCE(SUM(credits), 0), COALESCE(SUM(seconds), 0) FROM usage_events \
                     WHERE key_id = ?1 AND created_at >= ?2",
                    p![key_id, since],
                )?
                .ok_or_else(|| Error::Value("no sum".into()))?;
            let (credits, seconds): (f64, f64) = (sums.get(0)?, sums.get(1)?);
            let day = match c.dialect() {
                Dialect::Sqlite => "date(created_at, 'unixepoch')",
                Dialect::Postgres => {
                    "to_char(to_timestamp(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
                }
            };
            let daily = c
                .rows(
                    &format!(
                        "SELECT {day} AS day, COUNT(*), SUM(credits), SUM(seconds) \
                         FROM usage_events WHERE key_id = ?1 AND created_at >= ?2 \
                         GROUP BY day ORDER BY day"
                    ),
                    p![key_id, since],
                )?
                .iter()
                .map(|r| {
                    Ok(json!({
                        "date": r.get::<String>(0)?,
                        "completed_jobs": r.get::<i64>(1)?,
                        "credits_used": round2(r.get(2)?),
                        "seconds_processed": round2(r.get(3)?),
                    }))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(json!({
                "days": days,
                "total_jobs": total,
                "completed_jobs": completed,
                "failed_jobs": failed,
                "credits_used": round2(credits),
                "seconds_processed": round2(seconds),
                "daily": daily,
            }))
        })
    }

    pub fn usage_events(&self, key_id: &str, limit: i64) -> Result<Vec<Value>> {
        self.with(|c| {
            c.rows(
                "SELECT id, job_id, model, seconds, credits, created_at FROM usage_events \
                 WHERE key_id = ?1 ORDER BY id DESC LIMIT ?2",
                p![key_id, limit],
            )?
            .iter()
            .map(|r| {
                Ok(json!({
                    "id": r.get::<i64>(0)?,
                    "type": "job.charged",
                    "job_id": r.get::<String>(1)?,
                    "model": r.get::<String>(2)?,
                    "seconds": round2(r.get(3)?),
                    "credits": round2(r.get(4)?),
                    "created_at": iso(r.get(5)?),
                }))
            })
            .collect()
        })
    }

    // ---- webhooks ----

    /// Records a delivery, held by this node for `hold_s` seconds.
    pub fn insert_webhook(
        &self,
        id: &str,
        job_id: &str,
        event: &str,
        url: &str,
        body: &str,
        hold_s: i64,
    ) -> Result<()> {
        let node = self.node.as_str();
        self.with(|c| {
            c.exec(
                "INSERT INTO webhook_events (id, job_id, event, url, body, state, created_at, updated_at, \
                 lease_owner, lease_until) VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?6, ?7, ?8)",
                p![id, job_id, event, url, body, now(), node, now() + hold_s],
            )
        })
        .map(|_| ())
    }

    /// Records an attempt and extends this node's hold on the delivery by
    /// `hold_s` seconds.
    #[allow(clippy::too_many_arguments)]
    pub fn update_webhook(
        &self,
        id: &str,
        state: &str,
        attempts: i64,
        status: Option<u16>,
        error: Option<&str>,
        hold_s: i64,
    ) -> Result<()> {
        self.with(|c| {
            c.exec(
                "UPDATE webhook_events SET state = ?2, attempts = ?3, last_status = ?4, last_error = ?5, \
                 updated_at = ?6, lease_until = ?7 WHERE id = ?1",
                p![id, state, attempts, status, error, now(), now() + hold_s],
            )
        })
        .map(|_| ())
    }

    /// (id, url, event, body, attempts) of deliveries not yet done whose
    /// node stopped (their hold ran out; every one when `all`, as a node
    /// alone on its store does at start), now held by this node for `hold_s`.
    pub fn claim_pending_webhooks(&self, all: bool, hold_s: i64) -> Result<Vec<PendingWebhook>> {
        let node = self.node.as_str();
        self.with(|c| {
            let t = now();
            let lock = match c.dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE SKIP LOCKED",
            };
            let rows = c.rows(
                &format!(
                    "SELECT id, url, event, body, attempts FROM webhook_events WHERE state = 'pending' \
                     AND (?1 = 1 OR lease_until IS NULL OR lease_until < ?2) ORDER BY created_at{lock}"
                ),
                p![i64::from(all), t],
            )?;
            let mut out = Vec::with_capacity(rows.len());
            for r in &rows {
                let d: PendingWebhook = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                c.exec(
                    "UPDATE webhook_events SET lease_owner = ?2, lease_until = ?3 WHERE id = ?1",
                    p![&d.0, node, t + hold_s],
                )?;
                out.push(d);
            }
            Ok(out)
        })
    }

    pub fn webhooks_for_job(&self, job_id: &str) -> Result<Vec<Value>> {
        self.with(|c| {
            c.rows(
                "SELECT id, event, state, attempts, last_status, last_error, created_at, updated_at \
                 FROM webhook_events WHERE job_id = ?1 ORDER BY created_at, rowid",
                p![job_id],
            )?
            .iter()
            .map(|r| {
                Ok(json!({
                    "delivery_id": r.get::<String>(0)?,
                    "event": r.get::<String>(1)?,
                    "state": r.get::<String>(2)?,
                    "attempts": r.get::<i64>(3)?,
                    "last_status": r.get::<Option<i64>>(4)?,
                    "last_error": r.get::<Option<String>>(5)?,
                    "created_at": iso(r.get(6)?),
                    "updated_at": iso(r.get(7)?),
                }))
            })
            .collect()
        })
    }
}

pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto;

    /// A new, empty store: on PostgreSQL when `RBV_TEST_DATABASE_URL`
    /// names a server (a database of its own each), else SQLite.
    pub(crate) fn store() -> Store {
        if let Ok(url) = std::env::var("RBV_TEST_DATABASE_URL") {
            let name = format!("rbv_store_{}", crypto::random_hex(6));
            return Store::connect(&db::create_database(&url, &name).unwrap()).unwrap();
        }
        let dir = std::env::temp_dir().join(format!("rbv-store-{}", crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        Store::open(&dir.join("rbv.db")).unwrap()
    }

    /// Two nodes' stores on one database.
    pub(crate) fn two_nodes() -> (Store, Store) {
        if let Ok(url) = std::env::var("RBV_TEST_DATABASE_URL") {
            let name = format!("rbv_store_{}", crypto::random_hex(6));
            let db = db::create_database(&url, &name).unwrap();
            return (Store::connect(&db).unwrap(), Store::connect(&db).unwrap());
        }
        let dir = std::env::temp_dir().join(format!("rbv-store-{}", crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rbv.db");
        (Store::open(&path).unwrap(), Store::open(&path).unwrap())
    }

    pub(crate) fn job(store: &Store, key: &str, status: &str) -> String {
        let id = crypto::new_id("job");
        store
            .insert_job(&Job {
                id: id.clone(),
                key_id: key.into(),
                request_id: "req_1".into(),
                video_url: "http://h/a.webm".into(),
                status: JobStatus::parse(status),
                settings: "{}".into(),
                model: ModelName::Human,
                output_format: OutputFormat::Mov,
                created_at: now(),
                ..Job::default()
            })
            .unwrap();
        id
    }

    #[test]
    fn keys_are_stored_hashed_and_revocable() {
        let s = store();
        let (id, secret) = s.create_key("ci", Some(100.0)).unwrap();
        let k = s.key_by_secret(&secret).unwrap().unwrap();
        assert_eq!(k.id, id);
        assert!(s.key_by_secret("rbv_wrong").unwrap().is_none());
        let stored: String = s
            .with(|c| c.one("SELECT hash FROM api_keys", p![]))
            .unwrap();
        assert_ne!(stored, secret);
        assert!(s.revoke_key(&id).unwrap());
        assert!(s.key_by_secret(&secret).unwrap().is_none());
    }

    #[test]
    fn state_machine_and_one_charge_per_job() {
        let s = store();
        let (key, _) = s.create_key("a", Some(10.0)).unwrap();
        let id = job(&s, &key, "created");
        assert!(s.claim(&id).unwrap().is_none(), "a draft is not claimable");
        assert!(
            s.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
                .unwrap()
        );
        assert!(
            !s.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
                .unwrap(),
            "already queued"
        );
        let j = s.claim(&id).unwrap().unwrap();
        assert_eq!((j.status.as_str(), j.attempts), ("processing", 1));
        assert!(s.claim(&id).unwrap().is_none(), "one worker only");
        s.fail(&id, 1, "boom").unwrap();
        assert!(
            s.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
                .unwrap(),
            "a failed job restarts"
        );
        s.claim(&id).unwrap().unwrap();
        let done = Completion {
            output_file: "o.mov",
            duration_seconds: 60.0,
            credits: 45.0,
            processing_ms: 10,
            resolution: "320x240",
        };
        s.complete(&id, 2, &done).unwrap();
        s.complete(&id, 2, &done).unwrap();
        let key_row = Key {
            id: key.clone(),
            name: "a".into(),
            credits: Some(10.0),
        };
        // Charged as measured: no reservation was made for this job.
        assert_eq!(s.credits_left(&key_row).unwrap(), Some(-35.0));
        assert_eq!(s.usage_events(&key, 10).unwrap().len(), 1);
        let sum = s.usage_summary(&key, 7).unwrap();
        assert_eq!(sum["completed_jobs"], 1);
        assert_eq!(sum["credits_used"], 45.0);
        assert!(
            !s.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
                .unwrap(),
            "completed is final"
        );
    }

    #[test]
    fn leases_give_a_job_to_one_node_and_take_it_back_when_it_stops() {
        let (a, b) = two_nodes();
        assert_ne!(a.node(), b.node());
        let (key, _) = a.create_key("k", Some(100.0)).unwrap();
        let id = job(&a, &key, "created");
        a.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
            .unwrap();
        assert!(b.reserve(&id, 10.0, 1.0).unwrap());
        assert!(matches!(
            a.claim_next("heavy", 3).unwrap(),
            Claimed::Nothing
        ));
        let Claimed::Job(j) = a.claim_next("light", 3).unwrap() else {
            panic!("the queued job")
        };
        assert_eq!((j.id.as_str(), j.attempts), (id.as_str(), 1));
        assert!(
            matches!(b.claim_next("light", 3).unwrap(), Claimed::Nothing),
            "one node"
        );
        assert!(a.renew_lease(&id, 1).unwrap());
        assert!(!b.renew_lease(&id, 1).unwrap(), "not b's lease");

        // a stops renewing: once its lease ran out, b takes the job.
        let expire = |s: &Store, id: &str| {
            s.with(|c| {
                c.exec(
                    "UPDATE jobs SET lease_until = ?2 WHERE id = ?1",
                    p![id, now() - 1],
                )
            })
            .unwrap();
        };
        expire(&a, &id);
        let Claimed::Job(j) = b.claim_next("light", 3).unwrap() else {
            panic!("the job whose lease ran out")
        };
        assert_eq!(j.attempts, 2);
        // a comes back: its result and its failure are not recorded.
        let done = Completion {
            output_file: "o.mov",
            duration_seconds: 4.0,
            credits: 3.0,
            processing_ms: 1,
            resolution: "2x2",
        };
        assert!(!a.complete(&id, 1, &done).unwrap());
        assert!(!a.fail(&id, 1, "late").unwrap());
        assert!(!a.renew_lease(&id, 1).unwrap());
        // Nor can a late run of this node (attempt 1 on b would be b's own
        // earlier run): only the run that holds the lease counts.
        assert!(!b.complete(&id, 1, &done).unwrap());
        assert!(b.complete(&id, 2, &done).unwrap());
        assert!(!b.complete(&id, 2, &done).unwrap(), "once");
        // A completed job never becomes failed.
        assert!(!b.fail(&id, 2, "late").unwrap());
        assert!(!a.fail(&id, 1, "late").unwrap());
        assert_eq!(a.job(&id).unwrap().unwrap().status, JobStatus::Completed);
        assert_eq!(a.usage_events(&key, 10).unwrap().len(), 1);
        assert_eq!(a.job(&id).unwrap().unwrap().credits_used, Some(3.0));
        assert_eq!(a.key_limit(&key).unwrap(), Some(Some(100.0)));

        // A job whose lease runs out max_attempts times fails, its hold released.
        let id = job(&a, &key, "created");
        a.queue_job(&id, "{}", ModelName::Pro, OutputFormat::Mov)
            .unwrap();
        assert!(a.reserve(&id, 5.0, 1.0).unwrap());
        for attempt in 1..=2 {
            let Claimed::Job(j) = a.claim_next("heavy", 2).unwrap() else {
                panic!("attempt {attempt}")
            };
            assert_eq!(j.attempts, attempt);
            expire(&a, &id);
        }
        let Claimed::GaveUp(gone) = b.claim_next("heavy", 2).unwrap() else {
            panic!("given up")
        };
        assert_eq!(gone, id);
        let j = a.job(&id).unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert!(j.error.unwrap().contains("stopped answering 2 times"));
        assert_eq!(j.reserved_credits, None);
    }

    #[test]
    fn a_webhook_delivery_is_one_nodes_until_its_hold_runs_out() {
        let (a, b) = two_nodes();
        let (key, _) = a.create_key("k", None).unwrap();
        let id = job(&a, &key, "completed");
        a.insert_webhook("whd_1", &id, "job.completed", "http://h/", "{}", 60)
            .unwrap();
        assert!(
            b.claim_pending_webhooks(false, 60).unwrap().is_empty(),
            "a holds it"
        );
        a.with(|c| c.exec("UPDATE webhook_events SET lease_until = ?1", p![now() - 1]))
            .unwrap();
        let taken = b.claim_pending_webhooks(false, 60).unwrap();
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].0.as_str(), taken[0].4), ("whd_1", 0));
        assert!(
            a.claim_pending_webhooks(false, 60).unwrap().is_empty(),
            "now b's"
        );
        // A node alone on its store takes every pending one at start.
        assert_eq!(a.claim_pending_webhooks(true, 60).unwrap().len(), 1);
        a.update_webhook("whd_1", "delivered", 1, Some(200), None, 60)
            .unwrap();
        assert!(a.claim_pending_webhooks(true, 60).unwrap().is_empty());
    }

    #[test]
    fn a_broken_database_connection_is_opened_again() {
        let (a, b) = two_nodes();
        if a.dialect() != Dialect::Postgres {
            return; // SQLite has no connection to lose.
        }
        let pid: i64 = a
            .with(|c| c.one("SELECT CAST(pg_backend_pid() AS BIGINT)", p![]))
            .unwrap();
        // What a database restart or a cut network does to the connection.
        let killed: i64 = b
            .with(|c| {
                c.one(
                    "SELECT CASE WHEN pg_terminate_backend(CAST(?1 AS INTEGER)) THEN 1 ELSE 0 END",
                    p![pid],
                )
            })
            .unwrap();
        assert_eq!(killed, 1);
        std::thread::sleep(std::time::Duration::from_millis(200));
        a.ping().expect("the call runs again on a new connection");
        let (key, _) = a.create_key("after", None).unwrap();
        assert!(a.key_active(&key).unwrap());
    }

    #[test]
    fn recovery_requeues_then_gives_up() {
        let s = store();
        let (key, _) = s.create_key("a", None).unwrap();
        let id = job(&s, &key, "pending");
        s.claim(&id).unwrap().unwrap();
        let (requeued, failed) = s.recover(2).unwrap();
        assert_eq!((requeued, failed.len()), (vec![id.clone()], 0));
        assert_eq!(
            s.pending_jobs().unwrap(),
            vec![(id.clone(), ModelName::Human)]
        );
        s.claim(&id).unwrap().unwrap();
        let (requeued, failed) = s.recover(2).unwrap();
        assert_eq!((requeued.len(), failed), (0, vec![id.clone()]));
        let j = s.job(&id).unwrap().unwrap();
        assert_eq!(j.status, JobStatus::Failed);
        assert!(j.error.unwrap().contains("2 times"));
    }

    #[test]
    fn another_keys_job_is_invisible() {
        let s = store();
        let (a, _) = s.create_key("a", None).unwrap();
        let (b, _) = s.create_key("b", None).unwrap();
        let id = job(&s, &a, "created");
        assert!(s.job_for_key(&a, &id).unwrap().is_some());
        assert!(s.job_for_key(&b, &id).unwrap().is_none());
        assert_eq!(s.list_jobs(&b, None, 20, 0).unwrap().1, 0);
        assert_eq!(
            s.list_jobs(&a, Some(&JobStatus::Created), 20, 0).unwrap().1,
            1
        );
        assert_eq!(
            s.list_jobs(&a, Some(&JobStatus::Failed), 20, 0).unwrap().1,
            0
        );
    }

    #[test]
    fn a_database_url_that_cannot_serve_is_named_at_start() {
        let e = Store::connect("mysql://h/db").err().unwrap();
        assert!(e.contains("the database URL is not valid"), "{e}");
        // Nothing listens on port 1 of 127.0.0.1; the password is not shown.
        let e = Store::connect("postgres://rbv:pw-secret@127.0.0.1:1/rbv")
            .err()
            .unwrap();
        assert!(e.contains("cannot reach the database"), "{e}");
        assert!(!e.contains("pw-secret"), "{e}");
    }

    #[test]
    fn reopening_keeps_everything() {
        let dir = std::env::temp_dir().join(format!("rbv-store-{}", crypto::random_hex(6)));
        std::fs::create_dir_all(&dir).unwrap();
        let id = {
            let s = Store::open(&dir.join("rbv.db")).unwrap();
            let (key, _) = s.create_key("a", None).unwrap();
            job(&s, &key, "pending")
        };
        let s = Store::open(&dir.join("rbv.db")).unwrap();
        assert_eq!(s.job(&id).unwrap().unwrap().status, JobStatus::Pending);
        assert_eq!(s.setting_or_init("x", || "1".into()).unwrap(), "1");
        assert_eq!(s.setting_or_init("x", || "2".into()).unwrap(), "1");
    }
}
