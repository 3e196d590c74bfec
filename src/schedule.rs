//! Cron expressions (with seconds, as tokio-cron-scheduler reads them), parsed once at the edge.

use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Parses a six-field cron expression (`sec min hour dom month dow`).
pub fn parse(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
        .map_err(|e| {
            format!("{expr:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\"): {e}")
        })
}

/// Seconds between the next two runs after `now` (the schedule's current interval).
pub fn interval(cron: &Cron, now: i64) -> Option<i64> {
    let start = chrono::DateTime::from_timestamp(now, 0)?;
    let first = cron.find_next_occurrence(&start, false).ok()?;
    let second = cron.find_next_occurrence(&first, false).ok()?;
    Some((second - first).num_seconds())
}

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_seconds_and_rejects_five_fields() {
        assert!(super::parse("0 * * * * *").is_ok());
        assert!(super::parse("*/5 * * * *").is_err());
        assert!(super::parse("every minute").is_err());
    }

    #[test]
    fn intervals() {
        let every_minute = super::parse("0 * * * * *").unwrap();
        assert_eq!(super::interval(&every_minute, 1_700_000_000), Some(60));
        let five_min = super::parse("0 */5 * * * *").unwrap();
        assert_eq!(super::interval(&five_min, 1_700_000_000), Some(300));
    }
}
