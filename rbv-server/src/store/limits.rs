// SPDX-License-Identifier: MPL-2.0
//! The store's side of the resource caps: credits reserved up front (one
//! conditional UPDATE of the key's row, atomic under SQLite's writer lock and
//! PostgreSQL's row lock alike) and settled or released with the job; each
//! key's upload bytes; the retention sweep; revoked keys.

use super::db::{Conn, p};
use super::{Result, Store, now};

/// What the retention sweep took out of the store: the files to delete.
#[derive(Debug, Default, PartialEq)]
pub struct Expired {
    /// Upload paths.
    pub uploads: Vec<String>,
    /// Output file names (under the outputs directory).
    pub outputs: Vec<String>,
}

/// Gives a job's reservation back to its key (inside the caller's
/// transaction); a job holds at most one, so this runs once per reservation.
pub(super) fn release(c: &mut Conn, job_id: &str) -> Result<()> {
    let held: Option<Option<f64>> = c
        .row(
            &format!(
                "SELECT reserved_credits FROM jobs WHERE id = ?1{}",
                super::lock_row(c.dialect())
            ),
            p![job_id],
        )?
        .map(|r| r.get(0))
        .transpose()?;
    if let Some(Some(credits)) = held {
        c.exec(
            "UPDATE api_keys SET credits_reserved = credits_reserved - ?2 \
             WHERE id = (SELECT key_id FROM jobs WHERE id = ?1)",
            p![job_id, credits],
        )?;
        c.exec(
            "UPDATE jobs SET reserved_credits = NULL, reserved_seconds = NULL WHERE id = ?1",
            p![job_id],
        )?;
    }
    Ok(())
}

impl Store {
    /// Holds `credits` of the job's key for it (covering `seconds` of
    /// video), if the key has that many left; a job's earlier reservation is
    /// replaced. False when the key cannot cover it.
    pub fn reserve(&self, job_id: &str, credits: f64, seconds: f64) -> Result<bool> {
        self.with(|c| {
            let held: f64 = c
                .row(
                    &format!(
                        "SELECT reserved_credits FROM jobs WHERE id = ?1{}",
                        super::lock_row(c.dialect())
                    ),
                    p![job_id],
                )?
                .map(|r| r.get::<Option<f64>>(0))
                .transpose()?
                .flatten()
                .unwrap_or(0.0);
            // The check, the release of what the job held and the new hold
            // are one statement on the key's row; when the key cannot cover
            // it nothing changes.
            let n = c.exec(
                "UPDATE api_keys SET credits_reserved = credits_reserved - ?3 + ?2 \
                 WHERE id = (SELECT key_id FROM jobs WHERE id = ?1) \
                 AND (credits IS NULL \
                      OR credits - credits_used - (credits_reserved - ?3) >= CAST(?2 AS DOUBLE PRECISION) - 0.000001)",
                p![job_id, credits, held],
            )?;
            if n != 1 {
                return Ok(false);
            }
            c.exec(
                "UPDATE jobs SET reserved_credits = ?2, reserved_seconds = ?3 WHERE id = ?1",
                p![job_id, credits, seconds],
            )?;
            Ok(true)
        })
    }

    /// Gives back what a job holds, unless it is queued or running (a
    /// start that lost a race to another start).
    pub fn release_reservation(&self, job_id: &str) -> Result<()> {
        self.with(|c| {
            let idle = c
                .row(
                    &format!(
                        "SELECT id FROM jobs WHERE id = ?1 AND status IN ('created', 'failed'){}",
                        super::lock_row(c.dialect())
                    ),
                    p![job_id],
                )?
                .is_some();
            if idle {
                release(c, job_id)?;
            }
            Ok(())
        })
    }

    /// A key's credit limit: None when the key does not exist, Some(None)
    /// when it has no limit.
    pub fn key_limit(&self, key_id: &str) -> Result<Option<Option<f64>>> {
        self.with(|c| {
            c.row("SELECT credits FROM api_keys WHERE id = ?1", p![key_id])?
                .map(|r| r.get(0))
                .transpose()
        })
    }

    /// Whether a key exists and is not revoked (its output links die with it).
    pub fn key_active(&self, key_id: &str) -> Result<bool> {
        self.with(|c| {
            c.one::<i64>(
                "SELECT COUNT(*) FROM api_keys WHERE id = ?1 AND revoked = 0",
                p![key_id],
            )
        })
        .map(|n| n > 0)
    }

    /// Bytes of a key's uploads still on disk.
    pub fn upload_bytes(&self, key_id: &str) -> Result<i64> {
        self.with(|c| {
            c.one(
                "SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM uploads \
                 WHERE key_id = ?1 AND removed_at IS NULL",
                p![key_id],
            )
        })
    }

    /// The retention sweep: uploads created before `cutoff` (unless a queued
    /// or running job still needs them) and outputs of jobs completed before
    /// it leave the store; the caller deletes the files returned.
    pub fn expire(&self, cutoff: i64) -> Result<Expired> {
        self.with(|c| {
            let t = now();
            let pairs = |rows: Vec<super::db::Row>| -> Result<Vec<(String, String)>> {
                rows.iter().map(|r| Ok((r.get(0)?, r.get(1)?))).collect()
            };
            let uploads = pairs(c.rows(
                "SELECT id, path FROM uploads WHERE removed_at IS NULL AND created_at < ?1 \
                 AND id NOT IN (SELECT upload_id FROM jobs WHERE upload_id IS NOT NULL \
                 AND status IN ('pending', 'processing'))",
                p![cutoff],
            )?)?;
            for (id, _) in &uploads {
                c.exec(
                    "UPDATE uploads SET removed_at = ?2 WHERE id = ?1",
                    p![id, t],
                )?;
            }
            let outputs = pairs(c.rows(
                "SELECT id, output_file FROM jobs WHERE status = 'completed' \
                 AND output_file IS NOT NULL AND completed_at < ?1",
                p![cutoff],
            )?)?;
            for (id, _) in &outputs {
                c.exec(
                    "UPDATE jobs SET output_file = NULL, output_removed_at = ?2 WHERE id = ?1",
                    p![id, t],
                )?;
            }
            Ok(Expired {
                uploads: uploads.into_iter().map(|u| u.1).collect(),
                outputs: outputs.into_iter().map(|o| o.1).collect(),
            })
        })
    }

    /// Whether the retention sweep removed a job's output.
    pub fn output_removed(&self, job_id: &str) -> Result<bool> {
        self.with(|c| {
            c.row(
                "SELECT output_removed_at FROM jobs WHERE id = ?1",
                p![job_id],
            )?
            .map(|r| r.get::<Option<i64>>(0))
            .transpose()
        })
        .map(|t| t.flatten().is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{job, store};
    use super::super::{Completion, Key};
    use rbv_api::{ModelName, OutputFormat};

    #[test]
    fn reservations_never_let_a_key_overspend() {
        let s = store();
        let (key, _) = s.create_key("one credit", Some(1.0)).unwrap();
        let row = Key {
            id: key.clone(),
            name: "k".into(),
            credits: Some(1.0),
        };
        let ids: Vec<String> = (0..3).map(|_| job(&s, &key, "pending")).collect();
        assert!(s.reserve(&ids[0], 0.75, 1.0).unwrap());
        assert!(!s.reserve(&ids[1], 0.75, 1.0).unwrap(), "0.25 left");
        assert!((s.credits_left(&row).unwrap().unwrap() - 0.25).abs() < 1e-9);
        // Failing releases; completing charges at most what was held.
        s.fail(&ids[0], 0, "x").unwrap();
        s.fail(&ids[0], 0, "x").unwrap();
        assert_eq!(s.credits_left(&row).unwrap(), Some(1.0));
        assert!(s.reserve(&ids[1], 0.75, 1.0).unwrap());
        s.claim(&ids[1]).unwrap().unwrap();
        let done = Completion {
            output_file: "o.mov",
            duration_seconds: 2.0,
            credits: 1.5,
            processing_ms: 1,
            resolution: "2x2",
        };
        s.complete(&ids[1], 1, &done).unwrap();
        s.complete(&ids[1], 1, &done).unwrap();
        assert!((s.credits_left(&row).unwrap().unwrap() - 0.25).abs() < 1e-9);
        assert_eq!(s.job(&ids[1]).unwrap().unwrap().credits_used, Some(0.75));
        assert!(!s.reserve(&ids[2], 0.5, 1.0).unwrap());
        // Unlimited keys always reserve.
        let (free, _) = s.create_key("free", None).unwrap();
        let j = job(&s, &free, "pending");
        assert!(s.reserve(&j, 1e9, 1e9).unwrap());
        assert_eq!(s.key_limit(&free).unwrap(), Some(None));
    }

    #[test]
    fn a_refused_start_keeps_the_error_and_the_credits() {
        let s = store();
        let (key, _) = s.create_key("k", Some(5.0)).unwrap();
        let id = job(&s, &key, "pending");
        s.claim(&id).unwrap().unwrap();
        s.fail(&id, 1, "the first run failed").unwrap();
        assert!(
            s.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
                .unwrap()
        );
        assert!(s.reserve(&id, 2.0, 1.0).unwrap());
        s.unqueue_job(
            &id,
            &rbv_api::JobStatus::Failed,
            Some("the first run failed"),
        )
        .unwrap();
        let j = s.job(&id).unwrap().unwrap();
        assert_eq!(j.error.as_deref(), Some("the first run failed"));
        assert_eq!(j.reserved_credits, None);
        assert_eq!(s.key_limit(&key).unwrap(), Some(Some(5.0)));
    }

    #[test]
    fn retention_spares_what_queued_jobs_need() {
        let s = store();
        let (key, _) = s.create_key("k", None).unwrap();
        let up = |id: &str| super::super::Upload {
            id: id.into(),
            filename: "a.webm".into(),
            content_type: "video/webm".into(),
            size: 100,
            path: format!("/x/{id}.webm"),
            width: 2,
            height: 2,
            frames: 1,
            seconds: 1.0,
        };
        s.insert_upload(&key, &up("old")).unwrap();
        s.insert_upload(&key, &up("needed")).unwrap();
        assert_eq!(s.upload_bytes(&key).unwrap(), 200);
        let j = job(&s, &key, "pending");
        s.with(|c| {
            c.exec(
                "UPDATE jobs SET upload_id = 'needed' WHERE id = ?1",
                super::p![&j],
            )
        })
        .unwrap();
        let gone = s.expire(super::super::now() + 10).unwrap();
        assert_eq!(gone.uploads, vec!["/x/old.webm".to_string()]);
        assert!(s.upload(&key, "old").unwrap().is_none());
        assert!(s.upload(&key, "needed").unwrap().is_some());
        assert_eq!(s.upload_bytes(&key).unwrap(), 100);
    }
}
