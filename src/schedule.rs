//! Cron expressions (six fields, with seconds; UTC), parsed once at the edge, and the timer
//! that fires them.

use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds};
use tokio_util::sync::CancellationToken;

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

/// How long one wait for an occurrence may last before the wall clock is read again: waits run
/// on the monotonic clock, which does not follow the wall clock being set or the machine
/// sleeping. Schedules are checked at least this often, never polled more.
const REREAD_CLOCK_EVERY: Duration = Duration::from_secs(60);

/// Calls `fire` at every occurrence of `cron` (UTC) until `stop` is cancelled or `fire` returns
/// false. Sleeps until each occurrence instead of polling (a polling scheduler woke the idle
/// daemon twice a second), and never fires before it.
pub async fn run(cron: Cron, stop: CancellationToken, mut fire: impl FnMut() -> bool) {
    loop {
        let now = chrono::Utc::now();
        // croner keeps the sub-second part of where it starts from: start from the whole
        // second, so occurrences fall on whole seconds.
        let second = chrono::DateTime::from_timestamp(now.timestamp(), 0).unwrap_or(now);
        let Ok(next) = cron.find_next_occurrence(&second, false) else {
            tracing::warn!(schedule = %cron.pattern, "the schedule has no next occurrence; it stops here");
            return;
        };
        let wait = (next - now)
            .to_std()
            .unwrap_or_default()
            .min(REREAD_CLOCK_EVERY);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        if chrono::Utc::now() >= next && !fire() {
            return;
        }
    }
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

    #[tokio::test]
    async fn fires_at_each_occurrence_and_not_before() {
        let every_second = super::parse("* * * * * *").unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let mut fired = Vec::new();
        let started = chrono::Utc::now();
        super::run(every_second, stop, || {
            fired.push(chrono::Utc::now());
            fired.len() < 3
        })
        .await;
        // Each in a second of its own, at its start: never before it (croner alone would
        // have fired at the sub-second the timer started), and late only by a busy machine.
        let mut prev = started.timestamp();
        for t in &fired {
            assert!(t.timestamp() > prev, "{started} {fired:?}");
            assert!(t.timestamp_subsec_millis() < 900, "late: {fired:?}");
            prev = t.timestamp();
        }
    }

    #[tokio::test]
    async fn stops_when_cancelled() {
        let hourly = super::parse("0 0 * * * *").unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::run(hourly, stop.clone(), || true));
        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("still waiting for the next hour")
            .unwrap();
    }

    #[test]
    fn intervals() {
        let every_minute = super::parse("0 * * * * *").unwrap();
        assert_eq!(super::interval(&every_minute, 1_700_000_000), Some(60));
        let five_min = super::parse("0 */5 * * * *").unwrap();
        assert_eq!(super::interval(&five_min, 1_700_000_000), Some(300));
    }
}
