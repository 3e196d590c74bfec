//! Human forms of measured values for decision reasons ("ran 7h02m > 6h").

use std::time::Duration;

/// `1 page`, `3 pages`; `many` for irregular plurals (`count(2, "policy", "policies")`).
pub fn count(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

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

#[cfg(test)]
mod count_tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::count(1u32, "page", "pages"), "1 page");
        assert_eq!(super::count(0u32, "page", "pages"), "0 pages");
        assert_eq!(super::count(2u32, "policy", "policies"), "2 policies");
    }
}

/// A loss value as reasons and lines show it: four decimals at most, trailing zeros dropped.
pub fn loss(v: f64) -> String {
    if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_owned()
    }
}
