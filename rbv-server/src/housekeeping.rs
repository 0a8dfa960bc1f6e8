// SPDX-License-Identifier: MPL-2.0
//! The data directory kept private and clean: folders 0700 and files 0600
//! (the database holds the link secret), partial uploads and job work
//! folders a crash left removed at start, and the retention sweep.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::{App, log, store};

fn private(path: &Path, mode: u32) -> Result<(), String> {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Creates the data directory and its folders, owner-only, and removes
/// what a crash left half-made (unless the directory is `shared` with other
/// nodes, whose uploads and runs may be under way there). The SQLite file
/// is made unless the store is on PostgreSQL (`postgres`).
pub fn prepare_data_dir(dir: &Path, postgres: bool, shared: bool) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    private(dir, 0o700)?;
    for d in ["uploads", "outputs", "work"] {
        let sub = dir.join(d);
        std::fs::create_dir_all(&sub).map_err(|e| format!("{}: {e}", sub.display()))?;
        private(&sub, 0o700)?;
    }
    // SQLite makes its -wal and -shm files with the database's mode.
    let db = dir.join("rbv.db");
    if !postgres && !db.exists() {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&db)
            .map_err(|e| format!("{}: {e}", db.display()))?;
    }
    for f in ["rbv.db", "rbv.db-wal", "rbv.db-shm"] {
        let p = dir.join(f);
        if p.exists() {
            private(&p, 0o600)?;
        }
    }
    if shared {
        return Ok(());
    }
    let mut removed = 0;
    if let Ok(entries) = std::fs::read_dir(dir.join("uploads")) {
        for e in entries.flatten() {
            if e.path().extension().is_some_and(|x| x == "part")
                && std::fs::remove_file(e.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    // Jobs run again from their input: nothing in work/ is needed.
    if let Ok(entries) = std::fs::read_dir(dir.join("work")) {
        for e in entries.flatten() {
            let p = e.path();
            let gone = if p.is_dir() {
                std::fs::remove_dir_all(&p)
            } else {
                std::fs::remove_file(&p)
            };
            if gone.is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        log::line(&[("event", "cleaned"), ("removed", &removed.to_string())]);
    }
    Ok(())
}

use std::os::unix::fs::OpenOptionsExt;

/// Holds `dir` for this process (an exclusive `flock` on `dir/.lock`, let go
/// when the process ends, however it ends): a node that cleans its data
/// directory at start must be the only one using it.
pub fn lock_data_dir(dir: &Path) -> Result<std::fs::File, String> {
    use std::os::fd::AsRawFd;
    let path = dir.join(".lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: flock on a descriptor this function owns; no memory involved.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Err(format!(
            "{}: another rbv serve uses this data directory; with --storage s3:// each node \
             needs one of its own (--data-dir)",
            dir.display()
        ));
    }
    Ok(f)
}

/// Deletes uploads and outputs older than the retention period, and the
/// parts of long jobs' segments a release left (a crash, a part storage
/// would not delete).
pub async fn sweep(app: Arc<App>) {
    match app.store.jobs_with_spent_segments(100) {
        Ok(jobs) => {
            for id in jobs {
                crate::worker::release_spent_segments(&app, &id).await;
            }
        }
        Err(e) => log::line(&[("event", "segments"), ("error", &e.to_string())]),
    }
    if app.config.retention.is_zero() {
        return;
    }
    let cutoff = store::now() - app.config.retention.as_secs() as i64;
    let a = app.clone();
    let expired = tokio::task::spawn_blocking(move || a.store.expire(cutoff)).await;
    let Ok(expired) = expired else { return };
    match expired {
        Ok(gone) => {
            for p in &gone.uploads {
                if let Err(e) = app.storage.delete_upload(p).await {
                    log::line(&[("event", "retention"), ("error", &e)]);
                }
            }
            for f in &gone.outputs {
                if let Err(e) = app.storage.delete_output(f).await {
                    log::line(&[("event", "retention"), ("error", &e)]);
                }
            }
            if !gone.uploads.is_empty() || !gone.outputs.is_empty() {
                log::line(&[
                    ("event", "retention"),
                    ("uploads", &gone.uploads.len().to_string()),
                    ("outputs", &gone.outputs.len().to_string()),
                ]);
            }
        }
        Err(e) => log::line(&[("event", "retention"), ("error", &e.to_string())]),
    }
}

/// The sweep at start and then every hour (or every tenth of the
/// retention period, when that is shorter).
pub async fn sweep_every_hour(app: Arc<App>) {
    let period =
        (app.config.retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(3600));
    loop {
        sweep(app.clone()).await;
        tokio::time::sleep(period).await;
    }
}
