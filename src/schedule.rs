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

#[cfg(test)]
mod tests {
    #[test]
    fn accepts_seconds_and_rejects_five_fields() {
        assert!(super::parse("0 * * * * *").is_ok());
        assert!(super::parse("*/5 * * * *").is_err());
        assert!(super::parse("every minute").is_err());
    }
}
