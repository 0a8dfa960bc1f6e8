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
    lease_owner, frames_done, seconds, output_file, error";

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
    /// another stopped keeps what was done). Only for this node's run
    /// `attempt` of the job (`None` otherwise). Also answers the parts of
    /// an earlier start's segments, removed here, for storage to delete.
    pub fn plan_segments(
        &self,
        job_id: &str,
        attempt: i64,
        ranges: &[Range],
    ) -> Result<Option<(Vec<Segment>, Vec<String>)>> {
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
            let stale: Vec<String> = c
                .rows(
                    "SELECT output_file FROM segments WHERE job_id = ?1 AND start_mark <> ?2 \
                     AND output_file IS NOT NULL",
                    p![job_id, mark],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<_>>()?;
            c.exec(
                "DELETE FROM segments WHERE job_id = ?1 AND start_mark <> ?2",
                p![job_id, mark],
            )?;
            let mut planned = rows_of(c, job_id)?;
            if planned.is_empty() {
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
                    c.exec("SELECT pg_notify(?1, ?2)", p![JOBS_CHANNEL, &pool])?;
                }
                planned = rows_of(c, job_id)?;
            }
            Ok(Some((planned, stale)))
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
                    "SELECT s.job_id, s.idx, s.status, s.attempts FROM segments s \
                     JOIN jobs j ON j.id = s.job_id \
                     WHERE s.pool = ?1 AND j.status = 'processing' AND s.start_mark = j.attempts_before \
                     AND (s.status = 'pending' OR (s.status = 'processing' AND s.lease_until < ?2)) \
                     AND (?3 = '' OR s.job_id = ?3) \
                     ORDER BY s.queued_at, s.job_id, s.idx LIMIT 1{lock}"
                ),
                p![pool, t, only.unwrap_or("")],
            )?
            else {
                return Ok(ClaimedSegment::Nothing);
            };
            let (job_id, idx, status, attempts): (String, i64, String, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            if status == "processing" && attempts >= max_attempts {
                c.exec(
                    "UPDATE segments SET status = 'failed', lease_until = NULL, error = ?3 \
                     WHERE job_id = ?1 AND idx = ?2",
                    p![
                        &job_id,
                        idx,
                        format!(
                            "the node processing segment {} of this job stopped answering {attempts} \
                             times; start it again to retry",
                            idx + 1
                        )
                    ],
                )?;
                return Ok(ClaimedSegment::GaveUp(job_id));
            }
            c.exec(
                "UPDATE segments SET status = 'processing', attempts = attempts + 1, frames_done = 0, \
                 lease_owner = ?3, lease_until = ?4 WHERE job_id = ?1 AND idx = ?2",
                p![&job_id, idx, node, t + lease],
            )?;
            let r = c.one_row(
                &format!("SELECT {COLUMNS} FROM segments WHERE job_id = ?1 AND idx = ?2"),
                p![&job_id, idx],
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
                 AND status = 'processing' AND lease_owner = ?3 AND attempts = ?4",
                p![&s.job_id, s.idx, node, s.attempts, now() + lease, frames_done],
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
                 AND lease_owner = ?3 AND attempts = ?4",
                p![&s.job_id, s.idx, node, s.attempts, output_file, frames, seconds],
            )?;
            if n == 1 {
                return Ok(true);
            }
            let ours = c.row(
                "SELECT 1 FROM segments WHERE job_id = ?1 AND idx = ?2 AND status = 'done' \
                 AND lease_owner = ?3 AND attempts = ?4 AND COALESCE(output_file, '') = ?5",
                p![&s.job_id, s.idx, node, s.attempts, output_file.unwrap_or("")],
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
                 AND attempts = ?4",
                p![&s.job_id, s.idx, node, s.attempts, error],
            )
        })
        .map(|n| n == 1)
    }

    /// Removes every segment of the job (it completed or failed); answers
    /// their parts for storage to delete.
    pub fn drop_segments(&self, job_id: &str) -> Result<Vec<String>> {
        self.with(|c| {
            let files = c
                .rows(
                    "SELECT output_file FROM segments WHERE job_id = ?1 AND output_file IS NOT NULL",
                    p![job_id],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect::<Result<_>>()?;
            c.exec("DELETE FROM segments WHERE job_id = ?1", p![job_id])?;
            Ok(files)
        })
    }
}

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
        let (plan, stale) = a.plan_segments(&id, j.attempts, &ranges).unwrap().unwrap();
        assert_eq!(plan.len(), 3);
        assert!(stale.is_empty());
        assert_eq!((plan[2].first_frame, plan[2].end_frame), (20, None));
        // Planned once: a second call answers the same segments.
        let (again, _) = a
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
        let (plan, mut stale) = b
            .plan_segments(&id, j.attempts, &ranges[..2])
            .unwrap()
            .unwrap();
        stale.sort();
        assert_eq!(stale, ["p0.mkv", "p1.mkv"]);
        assert_eq!(plan.len(), 2);
        assert!(
            plan.iter()
                .all(|s| s.status == "pending" && s.attempts == 0)
        );

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
        assert_eq!(b.drop_segments(&id).unwrap(), Vec::<String>::new());
        assert!(b.segments(&id).unwrap().is_empty());
    }
}
