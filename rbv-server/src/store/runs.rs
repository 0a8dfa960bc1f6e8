// SPDX-License-Identifier: MPL-2.0
//! A job's runs: a worker of any node claims the oldest queued job of its
//! pool (or one whose lease ran out) and holds a lease on that run while it
//! works; only the run holding the lease completes (charged once) or fails
//! the job. A node alone on its store requeues interrupted runs at start.

use super::db::{Dialect, p};
use super::{Completion, Job, Result, Store, limits, now};

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

/// `FOR UPDATE` where the database has row locks (SQLite's transaction
/// holds the whole database's write lock already).
pub(crate) fn lock_row(d: Dialect) -> &'static str {
    match d {
        Dialect::Sqlite => "",
        Dialect::Postgres => " FOR UPDATE",
    }
}

impl Store {
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
                    "SELECT id, status, attempts - attempts_before FROM jobs WHERE pool = ?1 \
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
                // Not running here. Recorded by this very run already (its
                // commit went through, its answer was lost and the call ran
                // again): say so. Otherwise another run's: nothing to record.
                let ours = c.row(
                    "SELECT 1 FROM jobs WHERE id = ?1 AND status = 'completed' \
                     AND attempts = ?2 AND output_file = ?3",
                    p![id, attempt, done.output_file],
                )?;
                return Ok(ours.is_some());
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
            let requeue = ids(
                "SELECT id FROM jobs WHERE status = 'processing' AND attempts - attempts_before < ?1",
            )?;
            let fail = ids(
                "SELECT id FROM jobs WHERE status = 'processing' AND attempts - attempts_before >= ?1",
            )?;
            for id in &fail {
                limits::release(c, id)?;
            }
            c.exec(
                "UPDATE jobs SET status = 'pending', progress = 0, lease_owner = NULL, lease_until = NULL \
                 WHERE status = 'processing' AND attempts - attempts_before < ?1",
                p![max_attempts],
            )?;
            c.exec(
                "UPDATE jobs SET status = 'failed', billing_status = 'not_charged', completed_at = ?2, \
                 error = 'the server stopped while processing this job ' || (attempts - attempts_before) || ' times; start it again to retry' \
                 WHERE status = 'processing' AND attempts - attempts_before >= ?1",
                p![max_attempts, now()],
            )?;
            // Segments the stop caught are taken again at once too.
            c.exec(
                "UPDATE segments SET status = 'pending', lease_until = NULL WHERE status = 'processing'",
                p![],
            )?;
            Ok((requeue, fail))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{job, store, two_nodes};
    use super::super::*;
    use super::*;

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
        // The same run recording again (a commit whose answer was lost): yes,
        // recorded, and charged once.
        assert!(b.complete(&id, 2, &done).unwrap(), "recorded already");
        let other = Completion {
            output_file: "other.mov",
            ..done
        };
        assert!(!b.complete(&id, 2, &other).unwrap(), "not this file");
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

        // Started again, as the error says: max_attempts runs more, their
        // numbers going on from the last start's.
        assert!(
            a.queue_job(&id, "{}", ModelName::Pro, OutputFormat::Mov)
                .unwrap()
        );
        for attempt in 3..=4 {
            let Claimed::Job(j) = a.claim_next("heavy", 2).unwrap() else {
                panic!("attempt {attempt} after the new start")
            };
            assert_eq!(j.attempts, attempt);
            expire(&a, &id);
        }
        let Claimed::GaveUp(gone) = a.claim_next("heavy", 2).unwrap() else {
            panic!("given up again")
        };
        assert_eq!(gone, id);
        assert!(
            a.job(&id)
                .unwrap()
                .unwrap()
                .error
                .unwrap()
                .contains("stopped answering 2 times")
        );
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
}
