// SPDX-License-Identifier: MPL-2.0
//! Retry and poll timing for the `/v1` client, as pure functions.

use std::time::{Duration, SystemTime};

/// HTTP statuses worth another try: rate limited or a passing server fault.
/// 400, 401, 402, 403 and 404 are answers, not accidents, and are never retried.
pub fn retryable(status: u16) -> bool {
    matches!(status, 429 | 500 | 502 | 503 | 504)
}

/// Capped exponential back-off with jitter, the official SDKs' schedule by
/// default: 1-2 s, 2-4 s, 4-8 s, then 8-16 s.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// The first wait (before jitter).
    pub base: Duration,
    /// The longest wait (before jitter).
    pub cap: Duration,
    /// Tries after the first; 0 = never retry.
    pub max_retries: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(8),
            max_retries: 4,
        }
    }
}

impl RetryPolicy {
    /// The wait before retry number `retry` (0-based); `unit` in [0, 1)
    /// spreads it over [d, 2d) so clients that failed together do not come
    /// back together.
    pub fn delay(&self, retry: u32, unit: f64) -> Duration {
        let d = self
            .base
            .saturating_mul(1u32.checked_shl(retry.min(31)).unwrap_or(u32::MAX))
            .min(self.cap);
        d + d.mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// The wait a `Retry-After` header asks for: delta-seconds or an HTTP date.
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

/// Poll intervals for a running job: the first, growing by half each time
/// to five times the first (2 s to 10 s by default), each with +-10 % jitter.
#[derive(Debug, Clone)]
pub struct Poll {
    next: Duration,
    max: Duration,
}

impl Poll {
    pub fn new(first: Duration) -> Poll {
        Poll {
            next: first,
            max: first.saturating_mul(5),
        }
    }

    /// The wait before the next poll; `unit` in [0, 1) picks the jitter.
    pub fn next_delay(&mut self, unit: f64) -> Duration {
        let d = self.next;
        self.next = self.next.mul_f64(1.5).min(self.max);
        d.mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_follow_the_sdk_schedule() {
        let p = RetryPolicy::default();
        let secs = |r, u| p.delay(r, u).as_secs_f64();
        assert_eq!(secs(0, 0.0), 1.0);
        assert!((secs(0, 0.999_999) - 1.999_999).abs() < 1e-9);
        assert_eq!(secs(1, 0.0), 2.0);
        assert_eq!(secs(2, 0.5), 6.0);
        assert_eq!(secs(3, 0.0), 8.0);
        assert_eq!(secs(30, 0.0), 8.0);
        assert_eq!(secs(200, 1.0), 16.0);
    }

    #[test]
    fn which_statuses_retry() {
        for s in [429, 500, 502, 503, 504] {
            assert!(retryable(s), "{s}");
        }
        for s in [200, 400, 401, 402, 403, 404, 410, 422, 501] {
            assert!(!retryable(s), "{s}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2026 07:28:00 GMT").unwrap();
        assert_eq!(retry_after(" 3 ", now), Some(Duration::from_secs(3)));
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:28:07 GMT", now),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            retry_after("Wed, 21 Oct 2026 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn polling_backs_off_from_2_to_10_seconds() {
        let mut p = Poll::new(Duration::from_secs(2));
        let waits: Vec<f64> = (0..7).map(|_| p.next_delay(0.5).as_secs_f64()).collect();
        assert_eq!(waits, [2.0, 3.0, 4.5, 6.75, 10.0, 10.0, 10.0]);
        let mut p = Poll::new(Duration::from_secs(2));
        assert_eq!(p.next_delay(0.0).as_secs_f64(), 1.8);
        assert!((p.next_delay(1.0).as_secs_f64() - 3.3).abs() < 1e-9);
    }
}
