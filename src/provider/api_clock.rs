//! How far the API's clock is from this machine's, read from the `Date` header of its answers.
//!
//! Time limits are measured with this machine's clock against the API's `created_at`: a
//! machine whose clock runs ten minutes ahead cancels a 6h job ten minutes early. ftguard
//! says so (a warning, `sync --json`, `config check --online`, the metric
//! `ftguard_clock_offset_seconds`) but does not correct for it: keeping time is NTP's job, and
//! a `Date` header is only good to the second.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Offsets up to this are not worth a warning: whole-second headers, network time, and a
/// limit of hours barely moves.
pub const SKEW_WARN_SECS: i64 = 30;

const UNKNOWN: i64 = i64::MIN;

/// The latest offset seen by one account's client (shared by its clones).
#[derive(Debug, Clone)]
pub struct ClockOffset {
    secs: Arc<AtomicI64>,
    skewed: Arc<AtomicBool>,
}

impl Default for ClockOffset {
    fn default() -> Self {
        Self {
            secs: Arc::new(AtomicI64::new(UNKNOWN)),
            skewed: Arc::new(AtomicBool::new(false)),
        }
    }
}

/// A change worth one log line: the offset grew past [`SKEW_WARN_SECS`], or came back within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkewChange {
    Became(i64),
    Recovered(i64),
}

impl ClockOffset {
    /// Notes an answer's `Date` header, received at `local`. Anything that is not an HTTP date
    /// is ignored (some proxies drop or mangle it).
    pub fn observe(&self, date: Option<&reqwest::header::HeaderValue>, local: SystemTime) {
        if let Some(off) = date
            .and_then(|v| v.to_str().ok())
            .and_then(|d| offset(d, local))
        {
            self.secs.store(off, Ordering::Relaxed);
        }
    }

    /// The API's clock minus this machine's, in seconds, from the latest answer that had a
    /// `Date` header.
    pub fn get(&self) -> Option<i64> {
        Some(self.secs.load(Ordering::Relaxed)).filter(|&s| s != UNKNOWN)
    }

    /// Whether the offset crossed [`SKEW_WARN_SECS`] since the last call: so a daemon warns
    /// once when its clock drifts, not at every sync.
    pub fn change(&self) -> Option<SkewChange> {
        let off = self.get()?;
        let skewed = is_skewed(off);
        match (self.skewed.swap(skewed, Ordering::Relaxed), skewed) {
            (false, true) => Some(SkewChange::Became(off)),
            (true, false) => Some(SkewChange::Recovered(off)),
            _ => None,
        }
    }
}

pub fn is_skewed(offset: i64) -> bool {
    offset.abs() > SKEW_WARN_SECS
}

/// The API's time (an HTTP date, `Sun, 06 Nov 1994 08:49:37 GMT`) minus `local`, whole seconds.
pub fn offset(date: &str, local: SystemTime) -> Option<i64> {
    let api = httpdate::parse_http_date(date.trim()).ok()?;
    let secs = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .ok()
            .and_then(|d| i64::try_from(d.as_secs()).ok())
    };
    Some(secs(api)? - secs(local)?)
}

/// What an offset means for the policies, for people: "this machine's clock is 10m ahead of
/// the API's ...".
pub fn describe(offset: i64) -> String {
    let by = humantime::format_duration(Duration::from_secs(offset.unsigned_abs()));
    // The API ahead of this machine: limits are reached later here than in the API's time.
    let (side, when) = if offset > 0 {
        ("behind", "late")
    } else {
        ("ahead of", "early")
    };
    format!(
        "this machine's clock is {by} {side} the API's (by the Date header of its answers): time \
         limits are measured with this machine's clock, so jobs would be acted on about {by} \
         {when}; check time synchronisation (timedatectl status)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn offsets_are_read_from_http_dates() {
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        let date = "Sun, 06 Nov 1994 08:49:37 GMT";
        for (local, want) in [
            (784_111_777, Some(0)),
            (784_111_177, Some(600)),  // the API is 10 minutes ahead
            (784_112_377, Some(-600)), // this machine is 10 minutes ahead
        ] {
            assert_eq!(offset(date, at(local)), want, "local {local}");
        }
        for bad in [
            "",
            "yesterday",
            "1994-11-06T08:49:37Z",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(offset(bad, at(784_111_777)), None, "{bad:?}");
        }
    }

    #[test]
    fn a_drift_is_reported_once_when_it_starts_and_once_when_it_ends() {
        let c = ClockOffset::default();
        let date = |s: &str| reqwest::header::HeaderValue::from_str(s).unwrap();
        assert_eq!(c.get(), None);
        assert_eq!(c.change(), None, "nothing seen yet");
        c.observe(
            Some(&date("Sun, 06 Nov 1994 08:49:37 GMT")),
            at(784_111_777 + 5),
        );
        assert_eq!(
            (c.get(), c.change()),
            (Some(-5), None),
            "within the tolerance"
        );
        c.observe(
            Some(&date("Sun, 06 Nov 1994 08:49:37 GMT")),
            at(784_111_777 + 31),
        );
        assert_eq!(c.change(), Some(SkewChange::Became(-31)));
        assert_eq!(c.change(), None, "said once");
        // A header that is not a date keeps what was known.
        c.observe(Some(&date("soon")), at(0));
        c.observe(None, at(0));
        assert_eq!(c.get(), Some(-31));
        c.clone().observe(
            Some(&date("Sun, 06 Nov 1994 08:49:37 GMT")),
            at(784_111_777 - 30),
        );
        assert_eq!(c.get(), Some(30), "clones share what they see");
        assert_eq!(c.change(), Some(SkewChange::Recovered(30)));
    }

    #[test]
    fn descriptions_say_which_way_and_what_it_means() {
        let ahead = describe(-600);
        assert!(ahead.contains("10m ahead of the API's"), "{ahead}");
        assert!(ahead.contains("about 10m early"), "{ahead}");
        let behind = describe(90);
        assert!(behind.contains("1m 30s behind the API's"), "{behind}");
        assert!(behind.contains("about 1m 30s late"), "{behind}");
    }
}
