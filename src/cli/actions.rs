//! `ftguard actions`: every recorded decision and what the API answered.

use std::process::ExitCode;

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::config::Config;
use ftguard::model::time;

use super::{open_store, since_arg};

/// Which actions to list, besides job and time.
#[derive(Debug, Default)]
pub struct Only {
    pub policy: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
}

pub async fn list(
    config: Config,
    job: Option<String>,
    since: Option<String>,
    only: Only,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since_arg(since)?;
    let store = open_store(config).await?;
    let is = |want: &Option<String>, value: &str| want.as_deref().is_none_or(|w| w == value);
    let actions: Vec<_> = store
        .actions(job.as_deref(), since)
        .await?
        .into_iter()
        .filter(|a| {
            is(&only.policy, &a.policy)
                && is(&only.action, &a.action)
                && is(&only.outcome, &a.outcome)
        })
        .collect();
    if json {
        outln!("{}", serde_json::to_string_pretty(&actions)?);
    } else if actions.is_empty() {
        outln!(
            "no actions recorded{}",
            if job.is_some()
                || since.is_some()
                || only.policy.is_some()
                || only.action.is_some()
                || only.outcome.is_some()
            {
                " that match"
            } else {
                ""
            }
        );
    } else {
        let mut table = Tabled::new(
            &[
                ("#", Align::Left),
                ("AT", Align::Left),
                ("ACTION", Align::Left),
                ("ACCOUNT", Align::Left),
                ("JOB", Align::Left),
                ("POLICY", Align::Left),
                ("WHAT", Align::Left),
            ],
            false,
        );
        for a in &actions {
            let detail = a
                .response_status
                .as_ref()
                .map(|s| {
                    format!(
                        " (API: {s}, trained_tokens {})",
                        a.response_trained_tokens
                            .map_or("-".into(), |t| t.to_string())
                    )
                })
                .or_else(|| a.error.as_ref().map(|e| format!(" ({e})")))
                .unwrap_or_default();
            table.row([
                format!("#{}", a.id),
                time::human(a.requested_at),
                a.action.to_string(),
                a.account.to_string(),
                a.job_id.to_string(),
                format!("[{}]", a.policy),
                format!("{} -> {}{detail}", a.reason, a.outcome),
            ]);
        }
        table.print();
    }
    Ok(ExitCode::SUCCESS)
}
