// SPDX-License-Identifier: MPL-2.0
//! What a key used: the `/v1/usage` summary and events, from the charges
//! completed jobs made.

use serde_json::{Value, json};

use super::db::{Dialect, p};
use super::{Error, Result, Store, iso, now, round2};

impl Store {
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
}
