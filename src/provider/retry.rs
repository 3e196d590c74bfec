//! Backoff for retried requests: exponential with jitter, honouring `Retry-After` (capped).

use std::time::Duration;

/// Which failures a request may be retried on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryOn {
    /// Reads: 429, 5xx and any transport error.
    Transient,
    /// Cancel/pause: only answers that prove the request was not applied (429, refused connection).
    NotApplied,
    /// One attempt: a check that reports what happened rather than waiting it out.
    Never,
}

/// Whether a status is worth retrying for reads.
pub fn retryable_status(status: u16) -> bool {
    status == 429 || (500..=599).contains(&status)
}

/// Delay before attempt `attempt + 1` (attempt counts from 1).
pub fn backoff(attempt: u32, retry_after: Option<Duration>, cap: Duration) -> Duration {
    if let Some(ra) = retry_after {
        return ra.min(cap);
    }
    let base_ms = 250u64.saturating_mul(1u64 << attempt.min(10).saturating_sub(1));
    let base = Duration::from_millis(base_ms).min(Duration::from_secs(30));
    // Jitter of up to half the delay, from the clock's nanoseconds: enough to spread
    // synchronized clients, no dependency needed.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos() as u64)
        .unwrap_or(0);
    let jitter = Duration::from_millis(nanos % (base_ms / 2 + 1));
    base + jitter
}

/// Parses `Retry-After` in seconds (HTTP dates are rare from these APIs and fall back to backoff).
pub fn parse_retry_after(value: Option<&reqwest::header::HeaderValue>) -> Option<Duration> {
    let s = value?.to_str().ok()?.trim();
    s.parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_wins_but_is_capped() {
        let cap = Duration::from_secs(60);
        assert_eq!(
            backoff(1, Some(Duration::from_secs(2)), cap),
            Duration::from_secs(2)
        );
        assert_eq!(backoff(1, Some(Duration::from_secs(3600)), cap), cap);
    }

    #[test]
    fn grows_exponentially_within_jitter() {
        let cap = Duration::from_secs(60);
        for attempt in 1..=4u32 {
            let base = Duration::from_millis(250 * (1 << (attempt - 1)));
            let d = backoff(attempt, None, cap);
            assert!(
                d >= base && d <= base + base / 2 + Duration::from_millis(1),
                "{attempt}: {d:?}"
            );
        }
    }

    #[test]
    fn parses_seconds() {
        let v = reqwest::header::HeaderValue::from_static("7");
        assert_eq!(parse_retry_after(Some(&v)), Some(Duration::from_secs(7)));
        let bad = reqwest::header::HeaderValue::from_static("soon");
        assert_eq!(parse_retry_after(Some(&bad)), None);
    }
}
