//! Retry arithmetic for the API client: the [`RetryPolicy`], which HTTP
//! statuses are worth another attempt, exponential backoff with full jitter,
//! and `Retry-After` parsing (delta-seconds or HTTP-date). Everything here is a
//! pure function of its inputs (randomness is passed in as a number in
//! `[0, 1)`), so the bounds can be tested without a clock; the loop that
//! sleeps and resends lives in `client.rs`.

use std::time::{Duration, SystemTime};

/// How the client retries transient failures (transport errors, HTTP 429, and
/// 500/502/503/504).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts per call, the first one included (at least 1 is always made).
    pub max_attempts: u32,
    /// Backoff ceiling of the first retry; it doubles on every further retry.
    pub base_delay: Duration,
    /// Largest backoff ceiling.
    pub max_delay: Duration,
    /// Longest `Retry-After` the client waits out inside one call. A 429 asking
    /// for longer ends the call at once with `Error::RateLimited` carrying the
    /// server's delay, so the caller can schedule the next sync itself.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 6,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The number of attempts actually made per call (`max_attempts`, at least 1).
    pub fn attempts(&self) -> u32 {
        self.max_attempts.max(1)
    }
}

/// True for the HTTP statuses that are retried with backoff: 500, 502, 503
/// and 504 (PROTOCOL.md), and 408 Request Timeout, which proxies send when a
/// request stalled on the way and which is as transient as a 504.
pub fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 500 | 502 | 503 | 504)
}

/// The backoff ceiling after `failures` failed attempts (1 for the first
/// failure): `min(max_delay, base_delay * 2^(failures - 1))`, without overflow.
pub fn backoff_ceiling(policy: &RetryPolicy, failures: u32) -> Duration {
    let exponent = failures.saturating_sub(1).min(63);
    let factor = 1u64 << exponent;
    let base = policy.base_delay.as_nanos();
    let ceiling = base.saturating_mul(u128::from(factor));
    let cap = policy.max_delay.as_nanos();
    let nanos = ceiling.min(cap);
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Full-jitter backoff: `unit * backoff_ceiling(policy, failures)`, where `unit`
/// is a random number in `[0, 1)` (clamped into that range). The result is
/// always within `[0, ceiling]`.
pub fn backoff_delay(policy: &RetryPolicy, failures: u32, unit: f64) -> Duration {
    let ceiling = backoff_ceiling(policy, failures);
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.0
    };
    ceiling.mul_f64(unit).min(ceiling)
}

/// [`backoff_delay`] with a fresh random `unit` (fastrand).
pub fn jittered_backoff(policy: &RetryPolicy, failures: u32) -> Duration {
    backoff_delay(policy, failures, fastrand::f64())
}

/// Parses a `Retry-After` header value: delta-seconds (`"120"`) or an
/// HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`), relative to `now`. A date
/// in the past is a zero wait. `None` when the value is neither.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() {
        return None;
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // Delta-seconds: an absurdly long number saturates rather than failing.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// What to do after a 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateLimitWait {
    /// Sleep this long, then retry.
    Sleep(Duration),
    /// The server asked for a wait longer than `max_retry_after`: give up now
    /// and report it.
    GiveUp(Duration),
}

/// The wait after a 429 whose `Retry-After` parsed to `retry_after`: at least
/// the server's delay when it is within `max_retry_after` (never shortened),
/// [`RateLimitWait::GiveUp`] when it is beyond it, and full-jitter backoff
/// with a floor of `base_delay` when the server gave no usable delay.
pub fn rate_limit_wait(
    policy: &RetryPolicy,
    retry_after: Option<Duration>,
    failures: u32,
    unit: f64,
) -> RateLimitWait {
    match retry_after {
        Some(d) if d > policy.max_retry_after => RateLimitWait::GiveUp(d),
        Some(d) => RateLimitWait::Sleep(d),
        None => RateLimitWait::Sleep(
            backoff_delay(policy, failures, unit).max(policy.base_delay.min(policy.max_delay)),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            max_retry_after: Duration::from_secs(60),
        }
    }

    #[test]
    fn ceiling_doubles_and_is_capped() {
        let p = policy();
        assert_eq!(backoff_ceiling(&p, 0), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(&p, 1), Duration::from_millis(100));
        assert_eq!(backoff_ceiling(&p, 2), Duration::from_millis(200));
        assert_eq!(backoff_ceiling(&p, 3), Duration::from_millis(400));
        assert_eq!(backoff_ceiling(&p, 5), Duration::from_millis(1600));
        assert_eq!(backoff_ceiling(&p, 6), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(&p, 64), Duration::from_secs(2));
        assert_eq!(backoff_ceiling(&p, u32::MAX), Duration::from_secs(2));
    }

    #[test]
    fn ceiling_survives_huge_delays() {
        let p = RetryPolicy {
            base_delay: Duration::from_secs(u64::MAX / 2),
            max_delay: Duration::MAX,
            ..policy()
        };
        // No panic, saturates at what a Duration built from u64 nanos holds.
        assert!(backoff_ceiling(&p, 40) > Duration::ZERO);
    }

    #[test]
    fn full_jitter_stays_within_zero_and_ceiling() {
        let p = policy();
        for failures in 0..70 {
            let ceiling = backoff_ceiling(&p, failures);
            assert_eq!(backoff_delay(&p, failures, 0.0), Duration::ZERO);
            assert!(backoff_delay(&p, failures, 0.999_999) <= ceiling);
            assert!(backoff_delay(&p, failures, 1.0) <= ceiling);
            assert!(backoff_delay(&p, failures, 7.0) <= ceiling);
            assert_eq!(backoff_delay(&p, failures, -1.0), Duration::ZERO);
            assert_eq!(backoff_delay(&p, failures, f64::NAN), Duration::ZERO);
            for _ in 0..50 {
                let d = jittered_backoff(&p, failures);
                assert!(d <= ceiling, "{d:?} > {ceiling:?}");
            }
        }
        assert_eq!(backoff_delay(&p, 3, 0.5), Duration::from_millis(200));
    }

    #[test]
    fn retry_after_delta_seconds() {
        let now = SystemTime::now();
        assert_eq!(parse_retry_after("0", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_retry_after("", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn retry_after_http_date() {
        let now = httpdate::parse_http_date("Wed, 21 Oct 2015 07:28:00 GMT").unwrap();
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        // Other formats httpdate accepts (RFC 850, asctime).
        assert_eq!(
            parse_retry_after("Wednesday, 21-Oct-15 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed Oct 21 07:28:10 2015", now),
            Some(Duration::from_secs(10))
        );
        // In the past: no wait.
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("Wed, 41 Oct 2015 07:00:00 GMT", now),
            None
        );
    }

    #[test]
    fn rate_limit_waits_at_least_the_server_delay() {
        let p = policy();
        assert_eq!(
            rate_limit_wait(&p, Some(Duration::from_secs(7)), 1, 0.0),
            RateLimitWait::Sleep(Duration::from_secs(7))
        );
        assert_eq!(
            rate_limit_wait(&p, Some(Duration::from_secs(60)), 1, 0.9),
            RateLimitWait::Sleep(Duration::from_secs(60))
        );
        assert_eq!(
            rate_limit_wait(&p, Some(Duration::from_secs(61)), 1, 0.9),
            RateLimitWait::GiveUp(Duration::from_secs(61))
        );
        // No header: jittered backoff, but never an immediate retry.
        for failures in 1..10 {
            match rate_limit_wait(&p, None, failures, 0.0) {
                RateLimitWait::Sleep(d) => {
                    assert!(d >= p.base_delay && d <= backoff_ceiling(&p, failures))
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [200, 400, 401, 429, 501, 505] {
            assert!(!is_retryable_status(s));
        }
    }

    #[test]
    fn at_least_one_attempt() {
        let p = RetryPolicy {
            max_attempts: 0,
            ..policy()
        };
        assert_eq!(p.attempts(), 1);
    }
}
