//! Wall-clock time as unix seconds, the one unit ftguard stores and compares.

/// Seconds since the unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(crate::model::secs)
        .unwrap_or(0)
}

/// Wall-clock now in milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `2026-11-27 20:34:09Z` for people.
pub fn human(ts: i64) -> String {
    jiff::Timestamp::from_second(ts)
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string())
        .unwrap_or_else(|_| ts.to_string())
}

/// A `--since` argument: a duration back from `now` (`24h`, `7d`), a UTC date (`2026-11-01`)
/// or a timestamp (`2026-11-01T12:00:00Z`, `2026-11-01 12:00:00Z`). Unix seconds.
pub fn parse_since(text: &str, now: i64) -> Result<i64, SinceError> {
    let t = text.trim();
    if let Ok(d) = humantime::parse_duration(t) {
        return Ok(now.saturating_sub(super::secs(d)));
    }
    if let Ok(date) = jiff::civil::Date::strptime("%Y-%m-%d", t)
        && let Ok(midnight) = date.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(midnight.timestamp().as_second());
    }
    if let Ok(ts) = t.replacen(' ', "T", 1).parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    Err(SinceError(text.to_owned()))
}

/// A `--since` that is neither a duration nor a date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is neither a duration like 24h or 7d nor a date like 2026-11-01 or 2026-11-01T12:00:00Z"
)]
pub struct SinceError(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_durations_dates_and_timestamps() {
        let now = 1_795_843_200; // 2026-11-28 00:00:00Z
        assert_eq!(parse_since("24h", now), Ok(now - 86_400));
        assert_eq!(parse_since("7d", now), Ok(now - 7 * 86_400));
        assert_eq!(parse_since("2026-11-01", now), Ok(1_793_491_200));
        assert_eq!(
            parse_since("2026-11-01T12:00:00Z", now),
            Ok(1_793_491_200 + 43_200)
        );
        assert_eq!(
            parse_since("2026-11-01 12:00:00Z", now),
            Ok(1_793_491_200 + 43_200)
        );
        assert_eq!(
            parse_since("2026-11-01T13:00:00+01:00", now),
            Ok(1_793_491_200 + 43_200)
        );
        let err = parse_since("yesterday", now).unwrap_err();
        assert_eq!(err, SinceError("yesterday".into()));
        let err = err.to_string();
        assert!(
            err.contains("\"yesterday\"") && err.contains("24h"),
            "{err}"
        );
    }
}
