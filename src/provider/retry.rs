//! Backoff for retried requests: exponential with jitter, honouring `Retry-After` and
//! `retry-after-ms` (capped).

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

/// How long the API asks to wait before the next request, from the headers of its answer:
/// `retry-after-ms` (milliseconds: OpenAI and Azure OpenAI send it beside `retry-after`, and
/// it is the more precise), else `retry-after` as seconds or as an HTTP date (RFC 9110; a date
/// already past means now). A value too large for a `Duration` is the largest one: the caller
/// caps it at the account's `max_retry_after`. Anything else (negative, `soon`) is ignored, and
/// the backoff applies.
pub fn parse_retry_after(
    headers: &reqwest::header::HeaderMap,
    now: std::time::SystemTime,
) -> Option<Duration> {
    let text = |name: &str| headers.get(name)?.to_str().ok().map(str::trim);
    if let Some(ms) = text("retry-after-ms").and_then(seconds) {
        return Some(ms / 1000);
    }
    let value = text("retry-after")?;
    seconds(value).or_else(|| {
        let at = httpdate::parse_http_date(value).ok()?;
        Some(at.duration_since(now).unwrap_or(Duration::ZERO))
    })
}

/// A non-negative decimal number of seconds (`7`, `1.5`), saturating instead of overflowing:
/// `Duration::from_secs_f64` panics on `1e300`, and a panic would stop the daemon.
fn seconds(s: &str) -> Option<Duration> {
    let v = s.parse::<f64>().ok().filter(|v| *v >= 0.0)?;
    // NaN fails the filter above; +inf and anything too large saturate.
    Some(Duration::try_from_secs_f64(v).unwrap_or(Duration::MAX))
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

    type Headers<'a> = &'a [(&'static str, &'a str)];

    fn headers(pairs: Headers) -> reqwest::header::HeaderMap {
        let mut h = reqwest::header::HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, reqwest::header::HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn reads_every_form_of_the_wait_and_never_panics() {
        let now = std::time::UNIX_EPOCH + Duration::from_secs(1_795_000_000);
        let date = |secs: u64| httpdate::fmt_http_date(now + Duration::from_secs(secs));
        let in_90s = date(90);
        let secs = Duration::from_secs;
        let cases: &[(Headers, Option<Duration>)] = &[
            (&[("retry-after", "7")], Some(secs(7))),
            (
                &[("retry-after", " 1.5 ")],
                Some(Duration::from_millis(1500)),
            ),
            (&[("retry-after", "0")], Some(Duration::ZERO)),
            (
                &[("retry-after-ms", "250")],
                Some(Duration::from_millis(250)),
            ),
            // The milliseconds win over the seconds they round.
            (
                &[("retry-after", "1"), ("retry-after-ms", "350.5")],
                Some(Duration::from_micros(350_500)),
            ),
            (&[("retry-after", &in_90s)], Some(secs(90))),
            (
                &[("retry-after", "Thu, 01 Jan 2026 00:00:00 GMT")],
                Some(Duration::ZERO),
            ),
            // Too large for a Duration: the largest, which the caller caps.
            (&[("retry-after", "1e300")], Some(Duration::MAX)),
            (&[("retry-after", "inf")], Some(Duration::MAX)),
            (&[("retry-after-ms", "1e300")], Some(Duration::MAX / 1000)),
            (&[("retry-after", "-3")], None),
            (&[("retry-after", "NaN")], None),
            (&[("retry-after", "soon")], None),
            (
                &[("retry-after-ms", "soon"), ("retry-after", "2")],
                Some(secs(2)),
            ),
            (&[], None),
        ];
        for (pairs, want) in cases {
            assert_eq!(parse_retry_after(&headers(pairs), now), *want, "{pairs:?}");
        }
        let cap = secs(60);
        assert_eq!(backoff(1, Some(Duration::MAX), cap), cap);
    }
}
