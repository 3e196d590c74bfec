//! Cron expressions (six fields, with seconds; UTC), parsed once at the edge into a
//! [`Schedule`] that keeps both the text and the parsed cron. The timer that fires them is the
//! daemon's (`daemon/schedule_timer.rs`).

use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// Why a cron expression is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("{expr:?} is not a cron expression with seconds (e.g. \"0 */5 * * * *\"): {detail}")]
    Invalid { expr: String, detail: String },
    #[error("{expr:?} never fires (a day that no month has?)")]
    NeverFires { expr: String },
}

/// A parsed schedule: compared, hashed and shown by its text.
#[derive(Debug, Clone)]
pub struct Schedule {
    expr: String,
    cron: Cron,
}

impl Schedule {
    /// Parses a six-field cron expression (`sec min hour dom month dow`) that fires at least
    /// once more: one naming a day no month has (`0 0 0 30 2 *`) would be accepted by the
    /// parser and silently never run.
    pub fn parse(expr: &str) -> Result<Self, ScheduleError> {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(expr)
            .map_err(|e| ScheduleError::Invalid {
                expr: expr.to_owned(),
                detail: e.to_string(),
            })?;
        cron.find_next_occurrence(&chrono::Utc::now(), false)
            .map_err(|_| ScheduleError::NeverFires {
                expr: expr.to_owned(),
            })?;
        Ok(Self {
            expr: expr.to_owned(),
            cron,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    pub fn cron(&self) -> &Cron {
        &self.cron
    }

    /// Seconds between the next two runs after `now` (the schedule's current interval).
    pub fn interval(&self, now: i64) -> Option<i64> {
        let start = chrono::DateTime::from_timestamp(now, 0)?;
        let first = self.cron.find_next_occurrence(&start, false).ok()?;
        let second = self.cron.find_next_occurrence(&first, false).ok()?;
        Some((second - first).num_seconds())
    }

    /// The interval, or 60 s if it cannot be told: `/healthz`, `ftguard status` and the sync
    /// watch tolerate three sync intervals.
    pub fn interval_or_minute(&self, now: i64) -> i64 {
        self.interval(now).unwrap_or(60)
    }

    /// The next run after `now`, as unix seconds.
    pub fn next_after(&self, now: i64) -> Option<i64> {
        let start = chrono::DateTime::from_timestamp(now, 0)?;
        let next = self.cron.find_next_occurrence(&start, false).ok()?;
        Some(next.timestamp())
    }
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Self) -> bool {
        self.expr == other.expr
    }
}
impl Eq for Schedule {}

impl std::hash::Hash for Schedule {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
    }
}

impl std::fmt::Display for Schedule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(&self.expr)
    }
}

impl serde::Serialize for Schedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.expr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_seconds_and_rejects_five_fields() {
        assert!(Schedule::parse("0 * * * * *").is_ok());
        assert!(matches!(
            Schedule::parse("*/5 * * * *"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert!(matches!(
            Schedule::parse("every minute"),
            Err(ScheduleError::Invalid { .. })
        ));
        assert_eq!(
            Schedule::parse("0 0 0 30 2 *").unwrap_err(),
            ScheduleError::NeverFires {
                expr: "0 0 0 30 2 *".into()
            }
        );
        assert!(Schedule::parse("0 0 0 29 2 *").is_ok(), "leap days come");
    }

    #[test]
    fn intervals() {
        let every_minute = Schedule::parse("0 * * * * *").unwrap();
        assert_eq!(every_minute.interval(1_700_000_000), Some(60));
        let five_min = Schedule::parse("0 */5 * * * *").unwrap();
        assert_eq!(five_min.interval(1_700_000_000), Some(300));
        assert_eq!(five_min.to_string(), "0 */5 * * * *");
        assert_eq!(five_min, Schedule::parse("0 */5 * * * *").unwrap());
    }
}
