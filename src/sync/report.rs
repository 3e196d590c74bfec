//! A sync's outcome for people (one line per account, with what changed and the warnings) and
//! for scripts (`sync --json`, `run --once --json`).

use super::{SyncError, SyncSummary};
use crate::policy::format::count;

/// One account's sync for scripts: `{"account", "ok": true, "summary"}` or
/// `{"account", "ok": false, "error"}` (`sync --json`, `run --once --json`).
pub fn sync_json(account: &str, r: &Result<SyncSummary, SyncError>) -> serde_json::Value {
    match r {
        Ok(s) => serde_json::json!({"account": account, "ok": true, "summary": s}),
        Err(e) => serde_json::json!({"account": account, "ok": false, "error": e.to_string()}),
    }
}

/// One line per account for people.
pub fn sync_line(account: &str, r: &Result<SyncSummary, SyncError>) -> String {
    match r {
        Ok(s) => {
            let mut line = format!(
                "{account}: {} in {}, {} new, {} changed status, {} updated, {} active{}",
                count(s.jobs_seen, "job", "jobs"),
                count(s.pages, "page", "pages"),
                s.new,
                s.changed,
                s.updated,
                s.active,
                if s.full { "" } else { " (incremental)" }
            );
            if s.events_checked > 0 {
                line.push_str(&format!(
                    ", events of {} checked",
                    count(
                        s.events_checked,
                        "suspected stalled job",
                        "suspected stalled jobs"
                    )
                ));
            }
            if s.metrics_read > 0 {
                line.push_str(&format!(
                    ", training metrics of {} read",
                    count(s.metrics_read, "running job", "running jobs")
                ));
            }
            if s.gone > 0 {
                line.push_str(&format!(
                    ", {} unknown to the API marked gone",
                    count(s.gone, "active job", "active jobs")
                ));
            }
            if s.rejected > 0 {
                line.push_str(&format!(
                    ", {} skipped",
                    count(s.rejected, "unparseable item", "unparseable items")
                ));
            }
            for (id, from, to) in &s.changes {
                line.push_str(&format!("\n  {id}: {from} -> {to}"));
            }
            for w in &s.warnings {
                line.push_str(&format!("\n  warning: {w}"));
            }
            line
        }
        Err(e) => format!("{account}: FAILED: {e}"),
    }
}
