//! Cron expressions (six fields, with seconds; UTC), parsed once at the edge. The timer that
//! fires them is the daemon's (`daemon/schedule_timer.rs`).

use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Parses a six-field cron expression (`sec min hour dom month dow`) that fires at least once
/// more: one naming a day no month has (`0 0 0 30 2 *`) would be accepted by the parser and
/// silently never run.
pub fn parse(expr: &str) -> Result<Cron, String> {
    let cron = CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("{expr:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\"): {e}")
        })?;
    cron.find_next_occurrence(&chrono::Utc::now(), false)
        .map_err(|_| format!("{expr:?} never fires (a day that no month has?)"))?;
    Ok(cron)
}

/// Seconds between the next two runs after `now` (the schedule's current interval).
pub fn interval(cron: &Cron, now: i64) -> Option<i64> {
    let start = chrono::DateTime::from_timestamp(now, 0)?;
    let first = cron.find_next_occurrence(&start, false).ok()?;
    let second = cron.find_next_occurrence(&first, false).ok()?;
    Some((second - first).num_seconds())
}

/// Seconds between two occurrences of a cron expression as written (60 if it cannot be
/// told): `/healthz`, `ftguard status` and the sync watch tolerate three sync intervals.
pub fn sync_interval(schedule: &str, now: i64) -> i64 {
    parse(schedule)
        .ok()
        .and_then(|c| interval(&c, now))
        .unwrap_or(60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_seconds_and_rejects_five_fields() {
        assert!(super::parse("0 * * * * *").is_ok());
        assert!(super::parse("*/5 * * * *").is_err());
        assert!(super::parse("every minute").is_err());
        let never = super::parse("0 0 0 30 2 *").unwrap_err();
        assert!(never.contains("never fires"), "{never}");
        assert!(super::parse("0 0 0 29 2 *").is_ok(), "leap days come");
    }

    #[test]
    fn intervals() {
        let every_minute = super::parse("0 * * * * *").unwrap();
        assert_eq!(super::interval(&every_minute, 1_700_000_000), Some(60));
        let five_min = super::parse("0 */5 * * * *").unwrap();
        assert_eq!(super::interval(&five_min, 1_700_000_000), Some(300));
    }
}
