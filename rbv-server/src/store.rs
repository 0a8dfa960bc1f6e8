// SPDX-License-Identifier: MPL-2.0
//! The server's durable state, in SQLite (embedded, the default) or
//! PostgreSQL (`--database postgres://...`): keys (hashed), uploads, jobs and
//! their state machine, usage and webhook deliveries. Migrations live in
//! `migrations/`, one set for both databases (`db` says how they differ),
//! and run at open; times are Unix seconds.

use std::path::Path;
use std::sync::Mutex;

use rbv_api::{JobStatus, ModelName, OutputFormat};

pub mod db;
pub mod keys;
mod limits;
mod runs;
mod segments;
mod usage;
mod webhooks;
use db::{Conn, Dialect, Row, p};
pub use db::{Error, Result};
pub use keys::KeyInfo;
pub use limits::Expired;
pub use runs::Claimed;
pub(crate) use runs::lock_row;
pub use segments::{ClaimedSegment, Range, Segment};

/// Schema versions, applied in order; SQLite's `PRAGMA user_version` and
/// PostgreSQL's `rbv_schema` table record the last.
const MIGRATIONS: [&str; 7] = [
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_limits.sql"),
    include_str!("../migrations/0003_admin.sql"),
    include_str!("../migrations/0004_leases.sql"),
    include_str!("../migrations/0005_webhook_leases.sql"),
    include_str!("../migrations/0006_attempts_per_start.sql"),
    include_str!("../migrations/0007_segments.sql"),
];

/// The channel PostgreSQL notifies when a job is queued (its pool as payload).
pub const JOBS_CHANNEL: &str = "rbv_jobs";

/// The worker pool a model's jobs go to.
pub fn pool_of(model: ModelName) -> &'static str {
    if model.is_heavy() { "heavy" } else { "light" }
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
                 lease_until = NULL, attempts_before = attempts \
                 WHERE id = ?1 AND status IN ('created', 'failed')",
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

    pub fn set_progress(&self, id: &str, progress: f64) -> Result<()> {
        self.with(|c| {
            c.exec(
                "UPDATE jobs SET progress = ?2 WHERE id = ?1 AND status = 'processing'",
                p![id, progress],
            )
        })
        .map(|_| ())
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
