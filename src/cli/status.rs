//! `ftguard status`: is ftguard doing its job? From the database alone (no credentials, no
//! running daemon needed): each account's last sync, active and stored jobs, recent actions.
//! Exit 1 when unhealthy, by the same rule as `/healthz`, for monitoring scripts.

use std::collections::BTreeMap;
use std::process::ExitCode;

use serde_json::{Value, json};

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::app::health::Health;
use ftguard::config::Config;
use ftguard::model::JobStatus;
use ftguard::model::time;
use ftguard::policy::format::secs;
use ftguard::store::Store;

/// How far back the action summary looks.
const RECENT: i64 = 24 * 3600;

pub async fn status(config: &Config, store: &Store, json_out: bool) -> anyhow::Result<ExitCode> {
    let now = time::now();
    let accounts: Vec<String> = config.accounts.iter().map(|a| a.name.to_string()).collect();
    let latest = store.latest_sync_runs().await?;
    let interval = config.sync_schedule.interval_or_minute(now);
    let health = Health::read(config, store, now).await?;
    let healthy = health.healthy();

    // (active, stored) per account; "gone" jobs are stored but not active.
    let mut jobs: BTreeMap<String, (i64, i64)> = BTreeMap::new();
    for (account, status, n) in store.job_counts().await? {
        let e = jobs.entry(account).or_default();
        e.1 += n;
        if status != ftguard::store::GONE && !JobStatus::parse(&status).is_terminal() {
            e.0 += n;
        }
    }
    // action -> outcome -> count ("cancel" -> "succeeded" -> 2).
    let mut outcomes: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
    for a in store.actions(None, Some(now - RECENT)).await? {
        *outcomes
            .entry(a.action)
            .or_default()
            .entry(a.outcome)
            .or_default() += 1;
    }
    let pending = store.pending_actions().await?.len();
    let (waiting, oldest_waiting) = store.waiting_notices().await?;

    if json_out {
        let per_account: Vec<Value> = accounts
            .iter()
            .map(|a| {
                let (active, stored) = jobs.get(a).copied().unwrap_or_default();
                let run = latest.iter().find(|r| &r.account == a);
                let h = health.accounts.get(a);
                json!({
                    "account": a,
                    "healthy": h.is_some_and(|h| h.healthy),
                    "last_successful_sync": h.and_then(|h| h.last_successful_sync),
                    "last_sync": run.map(|r| r.started_at),
                    "last_error": run.and_then(|r| r.error.clone()),
                    "active_jobs": active,
                    "stored_jobs": stored,
                })
            })
            .collect();
        outln!(
            "{:#}",
            json!({
                "healthy": healthy,
                "problems": health.problems,
                "sync_interval_secs": interval,
                "accounts": per_account,
                "actions_last_24h": outcomes,
                "pending_actions": pending,
                "notices_waiting": waiting,
                "oldest_notice_waiting_since": oldest_waiting,
                "database": config.database.display().to_string(),
            })
        );
    } else {
        if accounts.is_empty() {
            outln!("ftguard: {}", health.summary);
        } else if healthy {
            outln!("ftguard: healthy: {} (3 sync intervals)", health.summary);
        } else {
            outln!("ftguard: UNHEALTHY: {}", health.summary);
            for p in &health.problems {
                outln!("  {}: {}", p.account, p.reason);
            }
        }
        outln!();
        let mut table = Tabled::new(
            &[
                ("ACCOUNT", Align::Left),
                ("LAST SUCCESSFUL SYNC", Align::Left),
                ("AGO", Align::Right),
                ("ACTIVE", Align::Right),
                ("STORED", Align::Right),
            ],
            true,
        );
        // The unhealthy first, so with hundreds of accounts they are not lost among the others.
        let healthy_account = |a: &str| health.accounts.get(a).is_some_and(|h| h.healthy);
        let mut ordered: Vec<&String> = accounts.iter().collect();
        ordered.sort_by_key(|a| healthy_account(a));
        for a in ordered {
            let (active, stored) = jobs.get(a).copied().unwrap_or_default();
            let ok_at = health.accounts.get(a).and_then(|h| h.last_successful_sync);
            table.row([
                a.to_string(),
                ok_at.map_or("never".into(), time::human),
                ok_at.map_or("-".into(), |t| secs(now - t)),
                active.to_string(),
                stored.to_string(),
            ]);
        }
        table.print();
        let recent: Vec<String> = outcomes
            .iter()
            .flat_map(|(action, by)| by.iter().map(move |(o, n)| format!("{n} {action} {o}")))
            .collect();
        outln!(
            "\nactions in the last 24h: {}",
            if recent.is_empty() {
                "none".to_owned()
            } else {
                recent.join(", ")
            }
        );
        if pending > 0 {
            outln!(
                "{pending} pending (sent, answer not yet recorded): in flight, or left by a crash and settled when `ftguard run` next starts"
            );
        }
        if let Some(since) = oldest_waiting {
            outln!(
                "webhook notices not delivered yet: {waiting} (oldest {} ago; retried with backoff for a day)",
                secs(now - since)
            );
        }
        outln!("database: {}", config.database.display());
    }
    Ok(if healthy {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
