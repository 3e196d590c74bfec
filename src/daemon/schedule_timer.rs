//! Fires a cron schedule ([`Schedule`]) by sleeping until each occurrence.

use std::time::Duration;

use crate::model::schedule::Schedule;
use tokio_util::sync::CancellationToken;

/// How long one wait for an occurrence may last before the wall clock is read again: waits run
/// on the monotonic clock, which does not follow the wall clock being set or the machine
/// sleeping. Schedules are checked at least this often, never polled more.
const REREAD_CLOCK_EVERY: Duration = Duration::from_secs(60);

/// Calls `fire` at every occurrence of `cron` (UTC) until `stop` is cancelled or `fire` returns
/// false. Sleeps until each occurrence instead of polling (a polling scheduler woke the idle
/// daemon twice a second), and never fires before it.
pub async fn run(schedule: Schedule, stop: CancellationToken, mut fire: impl FnMut() -> bool) {
    let cron = schedule.cron();
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
    use crate::model::schedule::Schedule;

    fn parse(expr: &str) -> Result<Schedule, crate::model::schedule::ScheduleError> {
        Schedule::parse(expr)
    }

    #[tokio::test]
    async fn fires_at_each_occurrence_and_not_before() {
        let every_second = parse("* * * * * *").unwrap();
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
        let hourly = parse("0 0 * * * *").unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(super::run(hourly, stop.clone(), || true));
        stop.cancel();
        tokio::time::timeout(std::time::Duration::from_secs(5), task)
            .await
            .expect("still waiting for the next hour")
            .unwrap();
    }
}
