// SPDX-License-Identifier: MPL-2.0
//! A long job's segments: frame ranges any worker of the job's pool claims
//! under a lease (as jobs are claimed: `runs`), while the job's own run, the
//! coordinator, waits for them and joins their outputs. Only the run that
//! holds a segment's lease records it; a segment whose lease ran out is
//! claimed again, and fails after `max_attempts` runs.

use super::db::{Conn, Dialect, Row, p};
use super::{JOBS_CHANNEL, Result, Store, now};

/// A segment as the store has it.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub job_id: String,
    pub idx: i64,
    /// The start of its job it belongs to (the job's `attempts_before`
    /// then): with `attempts`, what names one run of it.
    pub start_mark: i64,
    pub first_frame: i64,
    /// `None`: to the input's end.
    pub end_frame: Option<i64>,
    pub warm_up: i64,
    /// pending, processing, done or failed.
    pub status: String,
    pub attempts: i64,
    /// The node running it, or the one that did it.
    pub node: Option<String>,
    pub frames_done: i64,
    /// Media seconds written (done).
    pub seconds: Option<f64>,
    /// Its lossless part among the outputs in storage (done, with frames).
    pub output_file: Option<String>,
    pub error: Option<String>,
}

const COLUMNS: &str = "job_id, idx, first_frame, end_frame, warm_up, status, attempts, \
    lease_owner, frames_done, seconds, output_file, error, start_mark";

fn segment_row(r: &Row) -> Result<Segment> {
    Ok(Segment {
        job_id: r.get(0)?,
        idx: r.get(1)?,
        first_frame: r.get(2)?,
        end_frame: r.get(3)?,
        warm_up: r.get(4)?,
        status: r.get(5)?,
        attempts: r.get(6)?,
        node: r.get(7)?,
        frames_done: r.get(8)?,
        seconds: r.get(9)?,
        output_file: r.get(10)?,
        error: r.get(11)?,
        start_mark: r.get(12)?,
    })
}

/// What a worker's claim of a segment found.
#[derive(Debug)]
pub enum ClaimedSegment {
    /// A segment, now processing under this node's lease.
    Segment(Box<Segment>),
    /// A segment whose lease ran out `max_attempts` times: failed (its
    /// job's coordinator fails the job).
    GaveUp(String),
    Nothing,
}

/// A frame range to plan: (first frame, end frame, warm-up frames).
pub type Range = (i64, Option<i64>, i64);

fn rows_of(c: &mut Conn, job_id: &str) -> Result<Vec<Segment>> {
    c.rows(
        &format!(
            "SELECT {COLUMNS} FROM segments WHERE job_id = ?1 AND start_mark = \
             (SELECT attempts_before FROM jobs WHERE id = ?1) ORDER BY idx"
        ),
        p![job_id],
    )?
    .iter()
    .map(segment_row)
    .collect()
}

impl Store {
    /// The coordinator's plan: the segments of this start of the job, made
    /// as `ranges` when it has none (a coordinator that takes over after
    /// another stopped keeps what was done; `ranges` may then be empty).
    /// Only for this node's run `attempt` of the job (`None` otherwise).
    /// An earlier start's segments stay until they are released
    /// (`spent_segments`).
    pub fn plan_segments(
        &self,
        job_id: &str,
        attempt: i64,
        ranges: &[Range],
    ) -> Result<Option<Vec<Segment>>> {
        let node = self.node.as_str();
        self.with(|c| {
            let Some(r) = c.row(
                &format!(
                    "SELECT attempts_before, pool, queued_at FROM jobs WHERE id = ?1 \
                     AND status = 'processing' AND lease_owner = ?2 AND attempts = ?3{}",
                    super::lock_row(c.dialect())
                ),
                p![job_id, node, attempt],
            )?
            else {
                return Ok(None);
            };
            let (mark, pool, queued): (i64, String, Option<i64>) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let mut planned = rows_of(c, job_id)?;
            if planned.is_empty() && !ranges.is_empty() {
                // Queued as their job was: an older job's segments first.
                let queued = queued.unwrap_or_else(now);
                for (idx, (first, end, warm_up)) in ranges.iter().enumerate() {
                    c.exec(
                        "INSERT INTO segments (job_id, idx, start_mark, first_frame, end_frame, \
                         warm_up, pool, status, queued_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'pending', ?8)",
                        p![job_id, idx as i64, mark, *first, *end, *warm_up, &pool, queued],
                    )?;
                }
                if c.dialect() == Dialect::Postgres {
                    // One wake-up per segment on every node (notices of one
                    // payload in one transaction are folded into one).
                    for n in 1..ranges.len() {
                        c.exec(
                            "SELECT pg_notify(?1, ?2)",
                            p![JOBS_CHANNEL, format!("{pool}#{n}")],
                        )?;
                    }
                }
                planned = rows_of(c, job_id)?;
            }
            Ok(Some(planned))
        })
    }

    /// The segments of the job's current start, in order.
    pub fn segments(&self, job_id: &str) -> Result<Vec<Segment>> {
        self.with(|c| rows_of(c, job_id))
    }

    /// The first segment of `pool` (of job `only` when given) that is
    /// pending, or whose lease ran out, becomes this node's; its job must be
    /// processing (a coordinator waits for it).
    pub fn claim_segment(
        &self,
        pool: &str,
        only: Option<&str>,
        max_attempts: i64,
    ) -> Result<ClaimedSegment> {
        let (node, lease) = (self.node.as_str(), self.lease_seconds());
        self.with(|c| {
            let t = now();
            let lock = match c.dialect() {
                Dialect::Sqlite => "",
                Dialect::Postgres => " FOR UPDATE OF s SKIP LOCKED",
            };
            let Some(r) = c.row(
                &format!(
                    "SELECT s.job_id, s.idx, s.status, s.attempts, s.start_mark FROM segments s \
                     JOIN jobs j ON j.id = s.job_id \
                     WHERE s.pool = ?1 AND j.status = 'processing' AND s.start_mark = j.attempts_before \
                     AND (s.status = 'pending' OR (s.status = 'processing' AND s.lease_until < ?2)) \
                     AND (?3 = '' OR s.job_id = ?3) \
                     AND NOT EXISTS (SELECT 1 FROM segments f WHERE f.job_id = s.job_id \
                     AND f.start_mark = s.start_mark AND f.status = 'failed') \
                     ORDER BY s.queued_at, s.job_id, s.idx LIMIT 1{lock}"
                ),
                p![pool, t, only.unwrap_or("")],
            )?
            else {
                return Ok(ClaimedSegment::Nothing);
            };
            let (job_id, idx, status, attempts, mark): (String, i64, String, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
            if status == "processing" && attempts >= max_attempts {
                c.exec(
                    "UPDATE segments SET status = 'failed', lease_until = NULL, error = ?3 \
                     WHERE job_id = ?1 AND idx = ?2 AND start_mark = ?4",
                    p![
                        &job_id,
                        idx,
                        format!(
                            "the node processing segment {} of this job stopped answering {attempts} \
                             times; start it again to retry",
                            idx + 1
                        ),
                        mark
                    ],
                )?;
                return Ok(ClaimedSegment::GaveUp(job_id));
            }
            c.exec(
                "UPDATE segments SET status = 'processing', attempts = attempts + 1, frames_done = 0, \
                 lease_owner = ?3, lease_until = ?4 WHERE job_id = ?1 AND idx = ?2 AND start_mark = ?5",
                p![&job_id, idx, node, t + lease, mark],
            )?;
            let r = c.one_row(
                &format!(
                    "SELECT {COLUMNS} FROM segments WHERE job_id = ?1 AND idx = ?2 AND start_mark = ?3"
                ),
                p![&job_id, idx, mark],
            )?;
            Ok(ClaimedSegment::Segment(Box::new(segment_row(&r)?)))
        })
    }

    /// Extends this node's lease on its run `attempt` of a segment and
    /// records the frames written so far; false when the lease is gone.
    pub fn renew_segment(&self, s: &Segment, frames_done: i64) -> Result<bool> {
        let (node, lease) = (self.node.as_str(), self.lease_seconds());
        self.with(|c| {
            c.exec(
                "UPDATE segments SET lease_until = ?5, frames_done = ?6 WHERE job_id = ?1 AND idx = ?2 \
                 AND status = 'processing' AND lease_owner = ?3 AND attempts = ?4 AND start_mark = ?7",
                p![&s.job_id, s.idx, node, s.attempts, now() + lease, frames_done, s.start_mark],
            )
        })
        .map(|n| n == 1)
    }

    /// processing -> done with its part (`None`: the range held no frame).
    /// False when the segment was not this run's to record. The same run
    /// recording again (its answer lost) is told it is recorded.
    pub fn finish_segment(
        &self,
        s: &Segment,
        output_file: Option<&str>,
        frames: i64,
        seconds: f64,
    ) -> Result<bool> {
        let node = self.node.as_str();
        self.with(|c| {
            let n = c.exec(
                "UPDATE segments SET status = 'done', output_file = ?5, frames_done = ?6, seconds = ?7, \
                 lease_until = NULL WHERE job_id = ?1 AND idx = ?2 AND status = 'processing' \
                 AND lease_owner = ?3 AND attempts = ?4 AND start_mark = ?8",
                p![&s.job_id, s.idx, node, s.attempts, output_file, frames, seconds, s.start_mark],
            )?;
            if n == 1 {
                return Ok(true);
            }
            let ours = c.row(
                "SELECT 1 FROM segments WHERE job_id = ?1 AND idx = ?2 AND status = 'done' \
                 AND lease_owner = ?3 AND attempts = ?4 AND COALESCE(output_file, '') = ?5 \
                 AND start_mark = ?6",
                p![&s.job_id, s.idx, node, s.attempts, output_file.unwrap_or(""), s.start_mark],
            )?;
            Ok(ours.is_some())
        })
    }

    /// processing -> failed, by the run holding its lease (the coordinator
    /// fails the job with `error`).
    pub fn fail_segment(&self, s: &Segment, error: &str) -> Result<bool> {
        let node = self.node.as_str();
        self.with(|c| {
            c.exec(
                "UPDATE segments SET status = 'failed', error = ?5, lease_until = NULL \
                 WHERE job_id = ?1 AND idx = ?2 AND status = 'processing' AND lease_owner = ?3 \
                 AND attempts = ?4 AND start_mark = ?6",
                p![&s.job_id, s.idx, node, s.attempts, error, s.start_mark],
            )
        })
        .map(|n| n == 1)
    }

    /// The job's segments no run of it needs any more (all once the job
    /// completed or failed, an earlier start's while it runs again):
    /// (start, index, its part). Closed first (status `spent`), so a late
    /// run can no longer record into them (it deletes its own part). For
    /// storage to delete each part before `forget_segment`.
    pub fn spent_segments(&self, job_id: &str) -> Result<Vec<(i64, i64, Option<String>)>> {
        self.with(|c| {
            c.exec(
                &format!(
                    "UPDATE segments SET status = 'spent', lease_until = NULL WHERE {SPENT} \
                     AND status IN ('pending', 'processing')"
                ),
                p![job_id],
            )?;
            c.rows(
                &format!("SELECT start_mark, idx, output_file FROM segments WHERE {SPENT}"),
                p![job_id],
            )?
            .iter()
            .map(|r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .collect()
        })
    }

    /// Removes a spent segment's row (its part deleted).
    pub fn forget_segment(&self, job_id: &str, start_mark: i64, idx: i64) -> Result<()> {
        self.with(|c| {
            c.exec(
                &format!("DELETE FROM segments WHERE {SPENT} AND start_mark = ?2 AND idx = ?3"),
                p![job_id, start_mark, idx],
            )
        })
        .map(|_| ())
    }

    /// Jobs that have spent segments left (a release that did not finish:
    /// a crash, a part storage would not delete), at most `limit`.
    pub fn jobs_with_spent_segments(&self, limit: i64) -> Result<Vec<String>> {
        self.with(|c| {
            c.rows(
                "SELECT DISTINCT job_id FROM segments s WHERE s.start_mark <> COALESCE((SELECT \
                 attempts_before FROM jobs WHERE id = s.job_id AND status IN ('pending', 'processing')), -1) \
                 LIMIT ?1",
                p![limit],
            )?
            .iter()
            .map(|r| r.get(0))
            .collect()
        })
    }
}

/// A job's segments no run of it needs: not of its current start, or its
/// start is over (the job is neither queued nor running).
const SPENT: &str = "job_id = ?1 AND start_mark <> COALESCE((SELECT attempts_before FROM jobs \
    WHERE id = ?1 AND status IN ('pending', 'processing')), -1)";

#[cfg(test)]
mod tests {
    use super::super::tests::{job, two_nodes};
    use super::super::*;
    use super::*;

    #[test]
    fn segments_go_to_one_node_each_and_come_back_when_it_stops() {
        let (a, b) = two_nodes();
        let (key, _) = a.create_key("k", None).unwrap();
        let id = job(&a, &key, "created");
        a.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
            .unwrap();
        let Claimed::Job(j) = a.claim_next("light", 3).unwrap() else {
            panic!("the job")
        };
        let ranges = [(0, Some(10), 3), (10, Some(20), 3), (20, None, 3)];
        // Only the job's run plans.
        assert!(b.plan_segments(&id, 1, &ranges).unwrap().is_none());
        let plan = a.plan_segments(&id, j.attempts, &ranges).unwrap().unwrap();
        assert_eq!(plan.len(), 3);
        assert!(a.spent_segments(&id).unwrap().is_empty());
        assert_eq!((plan[2].first_frame, plan[2].end_frame), (20, None));
        // Planned once: a second call answers the same segments.
        let again = a
            .plan_segments(&id, j.attempts, &[(0, None, 0)])
            .unwrap()
            .unwrap();
        assert_eq!(again, plan);
        assert!(matches!(
            b.claim_segment("heavy", None, 3).unwrap(),
            ClaimedSegment::Nothing
        ));
        let take = |s: &Store, only: Option<&str>| match s.claim_segment("light", only, 3).unwrap()
        {
            ClaimedSegment::Segment(s) => *s,
            other => panic!("{other:?}"),
        };
        let s0 = take(&b, None);
        let s1 = take(&a, Some(&id));
        let s2 = take(&b, None);
        assert_eq!((s0.idx, s1.idx, s2.idx), (0, 1, 2));
        assert!(matches!(
            a.claim_segment("light", None, 3).unwrap(),
            ClaimedSegment::Nothing
        ));
        assert!(b.renew_segment(&s0, 5).unwrap());
        assert!(!a.renew_segment(&s0, 5).unwrap(), "not a's lease");
        assert!(a.finish_segment(&s1, Some("p1.mkv"), 10, 1.0).unwrap());
        assert!(
            a.finish_segment(&s1, Some("p1.mkv"), 10, 1.0).unwrap(),
            "recorded already"
        );
        assert!(!a.finish_segment(&s1, Some("other.mkv"), 10, 1.0).unwrap());
        // b stops: its segment 0 is taken again once its lease ran out.
        a.with(|c| {
            c.exec(
                "UPDATE segments SET lease_until = ?2 WHERE job_id = ?1 AND idx = 0",
                p![&id, now() - 1],
            )
        })
        .unwrap();
        let s0b = take(&a, None);
        assert_eq!((s0b.idx, s0b.attempts), (0, 2));
        assert!(
            !b.finish_segment(&s0, Some("late.mkv"), 10, 1.0).unwrap(),
            "b's run is late"
        );
        assert!(a.finish_segment(&s0b, Some("p0.mkv"), 10, 1.0).unwrap());
        assert!(b.fail_segment(&s2, "boom").unwrap());
        let now = a.segments(&id).unwrap();
        assert_eq!(
            now.iter()
                .map(|s| (s.status.as_str(), s.node.as_deref()))
                .collect::<Vec<_>>(),
            [
                ("done", Some(a.node())),
                ("done", Some(a.node())),
                ("failed", Some(b.node()))
            ]
        );
        assert_eq!(now[2].error.as_deref(), Some("boom"));

        // The job fails and starts again: the old start's parts are stale.
        assert!(a.fail(&id, j.attempts, "segment 3: boom").unwrap());
        assert!(
            matches!(
                a.claim_segment("light", None, 3).unwrap(),
                ClaimedSegment::Nothing
            ),
            "a failed job's segments are not taken"
        );
        a.queue_job(&id, "{}", ModelName::Human, OutputFormat::Mov)
            .unwrap();
        let Claimed::Job(j) = b.claim_next("light", 3).unwrap() else {
            panic!("the job again")
        };
        let plan = b
            .plan_segments(&id, j.attempts, &ranges[..2])
            .unwrap()
            .unwrap();
        assert_eq!(plan.len(), 2);
        assert!(
            plan.iter()
                .all(|s| s.status == "pending" && s.attempts == 0 && s.start_mark == 1)
        );
        // The earlier start's parts are spent; its late run records nothing
        // in the new start's segments (same index, same attempt number).
        let spent = b.spent_segments(&id).unwrap();
        assert_eq!(
            spent
                .iter()
                .map(|s| (s.0, s.1, s.2.as_deref()))
                .collect::<Vec<_>>(),
            [(0, 0, Some("p0.mkv")), (0, 1, Some("p1.mkv")), (0, 2, None)]
        );
        assert_eq!(b.jobs_with_spent_segments(10).unwrap(), vec![id.clone()]);
        assert!(!b.renew_segment(&s2, 1).unwrap());
        let new0 = take(&b, None);
        assert_eq!((new0.idx, new0.attempts), (0, 1));
        let old0 = Segment {
            start_mark: 0,
            ..new0.clone()
        };
        assert!(!b.finish_segment(&old0, Some("old.mkv"), 10, 1.0).unwrap());
        assert!(!b.fail_segment(&old0, "old").unwrap());
        assert!(!b.renew_segment(&old0, 1).unwrap());
        for (mark, idx, _) in spent {
            b.forget_segment(&id, mark, idx).unwrap();
        }
        assert!(b.spent_segments(&id).unwrap().is_empty());
        assert!(b.jobs_with_spent_segments(10).unwrap().is_empty());
        assert_eq!(
            b.segments(&id).unwrap().len(),
            2,
            "the current start's stay"
        );
        // Back to pending for the test below.
        b.with(|c| {
            c.exec(
                "UPDATE segments SET status = 'pending', attempts = 0 WHERE idx = 0",
                p![],
            )
        })
        .unwrap();

        // Runs that stop answering max_attempts times fail the segment.
        for attempt in 1..=2 {
            let s = take(&a, None);
            assert_eq!((s.idx, s.attempts), (0, attempt));
            a.with(|c| c.exec("UPDATE segments SET lease_until = 0 WHERE idx = 0", p![]))
                .unwrap();
        }
        let ClaimedSegment::GaveUp(gone) = a.claim_segment("light", None, 2).unwrap() else {
            panic!("given up")
        };
        assert_eq!(gone, id);
        assert!(
            b.segments(&id).unwrap()[0]
                .error
                .as_deref()
                .unwrap()
                .contains("segment 1 of this job stopped answering 2 times")
        );
        // A failed segment stops its job's others from being taken.
        assert!(matches!(
            a.claim_segment("light", None, 3).unwrap(),
            ClaimedSegment::Nothing
        ));
        // The job ends while segment 2 runs: every row is spent, closed
        // before it is listed, so the late run cannot record its part.
        a.with(|c| {
            c.exec(
                "UPDATE segments SET status = 'processing', attempts = 1, lease_owner = ?1, \
                 lease_until = ?2 WHERE idx = 1",
                p![a.node(), 9_999_999_999i64],
            )
        })
        .unwrap();
        let late = a.segments(&id).unwrap()[1].clone();
        assert!(a.renew_segment(&late, 2).unwrap(), "still running");
        assert!(b.fail(&id, j.attempts, "segment 1: gave up").unwrap());
        let spent = b.spent_segments(&id).unwrap();
        assert_eq!(spent.len(), 2);
        assert!(spent.iter().all(|s| s.2.is_none()));
        assert!(!a.finish_segment(&late, Some("late.mkv"), 10, 1.0).unwrap());
        assert!(!a.renew_segment(&late, 3).unwrap());
        for (mark, idx, _) in spent {
            b.forget_segment(&id, mark, idx).unwrap();
        }
        assert!(
            b.with(|c| c.rows("SELECT 1 FROM segments", p![]))
                .unwrap()
                .is_empty()
        );
    }
}
