//! Human forms of measured values for decision reasons ("ran 7h02m > 6h").

use std::time::Duration;

/// `7h02m`, `12m05s`, `40s`; days as hours so values compare at a glance.
pub fn secs(s: i64) -> String {
    let s = s.max(0);
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}

/// A configured limit as written by humantime (`6h`, `1h 30m`).
pub fn limit(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn forms() {
        assert_eq!(super::secs(7 * 3600 + 125), "7h02m");
        assert_eq!(super::secs(725), "12m05s");
        assert_eq!(super::secs(40), "40s");
        assert_eq!(super::limit(std::time::Duration::from_secs(6 * 3600)), "6h");
    }
}
