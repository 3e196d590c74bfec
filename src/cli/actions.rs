//! `ftguard actions`: every recorded decision and what the API answered.

use std::process::ExitCode;

use ftguard::clock;
use ftguard::config::Config;
use ftguard::outln;

use super::{open_store, since_arg};

pub async fn list(
    config: Config,
    job: Option<String>,
    since: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let since = since_arg(since)?;
    let store = open_store(config).await?;
    let actions = store.actions(job.as_deref(), since).await?;
    if json {
        outln!("{}", serde_json::to_string_pretty(&actions)?);
    } else if actions.is_empty() {
        outln!("no actions recorded");
    } else {
        for a in &actions {
            outln!(
                "#{:<4} {} {:<8} {:<10} {:<28} [{}] {} -> {}{}",
                a.id,
                clock::human(a.requested_at),
                a.action,
                a.account,
                a.job_id,
                a.policy,
                a.reason,
                a.outcome,
                a.response_status
                    .as_ref()
                    .map(|s| format!(
                        " (API: {s}, trained_tokens {})",
                        a.response_trained_tokens
                            .map_or("-".into(), |t| t.to_string())
                    ))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
