//! Which recorded action already stands for a decision, so a pass does not act again: a
//! notify policy notifies once, a pause refused under `fallback = "notify"` is not sent again
//! while the job keeps its status, and a job is cancelled once. One rule for the passes and
//! for what `show` and `plan` say about them.

use crate::policy::{ActionKind, Fallback};
use crate::store::ActionRecord;

/// The recorded action among a job's `actions` that stands for a decision of `policy` to do
/// `kind` (with `fallback`), as (action id, what it says); `None` when the pass would act.
/// `last_change` is when the job last changed status: a refused pause stands only since then.
pub fn already_done(
    kind: ActionKind,
    fallback: Fallback,
    policy: &str,
    actions: &[ActionRecord],
    last_change: i64,
) -> Option<(i64, &'static str)> {
    let found = |pred: &dyn Fn(&ActionRecord) -> bool| actions.iter().rev().find(|a| pred(a));
    let a = match kind {
        ActionKind::Notify => found(&|a| a.policy == policy && a.outcome == "notified")?,
        ActionKind::Pause if fallback == Fallback::Notify => found(&|a| {
            a.policy == policy
                && a.action == "pause"
                && a.outcome == "notified"
                && a.requested_at >= last_change
        })?,
        ActionKind::Pause => return None,
        ActionKind::Cancel => found(&|a| {
            a.action == "cancel"
                && matches!(a.outcome.as_str(), "pending" | "succeeded" | "accepted")
        })?,
    };
    let what = match (a.action.as_str(), a.outcome.as_str()) {
        ("cancel", "pending") => {
            "a cancel is pending (in flight, or left by a crash and settled when `run` starts): not sent again"
        }
        ("cancel", _) => "the API accepted its cancel: not sent again",
        ("pause", _) => "its pause was refused and notified: not sent again",
        _ => "notified already: said once",
    };
    Some((a.id, what))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, policy: &str, action: &str, outcome: &str, at: i64) -> ActionRecord {
        ActionRecord {
            id,
            account: "prod".into(),
            job_id: "ftjob-1".into(),
            policy: policy.into(),
            action: action.into(),
            reason: String::new(),
            outcome: outcome.into(),
            attempts: 1,
            requested_at: at,
            completed_at: Some(at),
            http_status: None,
            response_status: None,
            response_trained_tokens: None,
            response_finished_at: None,
            response_fine_tuned_model: None,
            response_error: None,
            error: None,
            note: None,
            best_checkpoint: None,
            estimated_saving_usd: None,
        }
    }

    #[test]
    fn cases() {
        use ActionKind::{Cancel, Notify, Pause};
        use Fallback::{Cancel as ThenCancel, Notify as ThenNotify};
        let refused = [row(1, "rt", "pause", "notified", 100)];
        let id = |r: Option<(i64, &str)>| r.map(|(id, _)| id);
        // A refused pause stands while the job keeps its status, for the policy that tried.
        assert_eq!(
            id(already_done(Pause, ThenNotify, "rt", &refused, 100)),
            Some(1)
        );
        assert_eq!(
            id(already_done(Pause, ThenNotify, "rt", &refused, 101)),
            None
        );
        assert_eq!(
            id(already_done(Pause, ThenNotify, "other", &refused, 0)),
            None
        );
        assert_eq!(id(already_done(Pause, ThenCancel, "rt", &refused, 0)), None);
        // A cancel by any policy stands while pending or accepted; a failed one does not.
        let failed = [row(2, "manual", "cancel", "failed", 5)];
        assert_eq!(id(already_done(Cancel, ThenCancel, "rt", &failed, 0)), None);
        for outcome in ["pending", "succeeded", "accepted"] {
            let done = [row(3, "manual", "cancel", outcome, 5)];
            assert_eq!(
                id(already_done(Cancel, ThenCancel, "rt", &done, 0)),
                Some(3)
            );
        }
        // A notify policy's notice stands for that policy only.
        let told = [row(4, "tell", "notify", "notified", 5)];
        assert_eq!(
            id(already_done(Notify, ThenCancel, "tell", &told, 0)),
            Some(4)
        );
        assert_eq!(
            id(already_done(Notify, ThenCancel, "other", &told, 0)),
            None
        );
    }
}
