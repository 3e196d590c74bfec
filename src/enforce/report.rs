//! What a pass did: counts per outcome and the lines people read.

use serde::Serialize;

use crate::store::Outcome;

/// What one pass did, for summaries and `STATUS=`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PassReport {
    /// The syncs before the pass (`run --once --json`), as `sync --json` shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syncs: Vec<serde_json::Value>,
    pub cancelled: u32,
    /// Cancels the API answered with the job still active.
    pub accepted: u32,
    pub paused: u32,
    pub already_finished: u32,
    pub failed: u32,
    pub held: u32,
    pub warned: u32,
    pub cleared: u32,
    pub notified: u32,
    pub dry_run: u32,
    pub lines: Vec<String>,
}

impl PassReport {
    /// Adds another report's counts and lines to this one.
    pub fn absorb(&mut self, other: PassReport) {
        self.cancelled += other.cancelled;
        self.accepted += other.accepted;
        self.paused += other.paused;
        self.already_finished += other.already_finished;
        self.failed += other.failed;
        self.held += other.held;
        self.warned += other.warned;
        self.cleared += other.cleared;
        self.notified += other.notified;
        self.dry_run += other.dry_run;
        self.syncs.extend(other.syncs);
        self.lines.extend(other.lines);
    }

    pub(super) fn add(&mut self, outcome: Outcome, action: &str, line: String) {
        match (outcome, action) {
            (Outcome::Succeeded, "pause") => self.paused += 1,
            (Outcome::Succeeded, _) => self.cancelled += 1,
            (Outcome::Accepted, _) => self.accepted += 1,
            (Outcome::AlreadyFinished, _) => self.already_finished += 1,
            (Outcome::Failed, _) => self.failed += 1,
            (Outcome::Held, _) => self.held += 1,
            (Outcome::Warned, _) => self.warned += 1,
            (Outcome::Cleared, _) => self.cleared += 1,
            (Outcome::Notified, _) => self.notified += 1,
            (Outcome::DryRun, _) => self.dry_run += 1,
            (Outcome::Pending, _) => {}
        }
        self.lines.push(line);
    }
}
