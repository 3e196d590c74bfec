//! `ftguard replay`: what the policies would have done over the stored history, and what that
//! would have saved. Reads the database only.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde_json::{Value, json};

use super::jobs::dollars;
use super::table::{Align, Tabled};
use crate::outln;
use ftguard::app::App;
use ftguard::config::Config;
use ftguard::model::{Usd, time};
use ftguard::policy::format::count;
use ftguard::replay::{PolicyReplay, Replay};

/// Rows shown per policy; `--json` lists every one.
const ROWS: usize = 25;

pub async fn replay(
    config: Config,
    since: i64,
    candidate: Option<&Path>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let config = match candidate {
        Some(path) => config
            .with_candidate(path)
            .context("invalid --policies file")?,
        None => config,
    };
    if config.policies.is_empty() {
        anyhow::bail!(
            "no [[policies]] in {} to replay: add some, or pass --policies FILE",
            config
                .source
                .as_ref()
                .map_or("the configuration".into(), |p| p.display().to_string())
        );
    }
    let policies = config.policies.clone();
    let prices = config.prices.clone();
    let app = App::build_to_read(config).await?;
    let now = time::now();
    let r = app.replay(&policies, &prices, since, now).await?;
    if json_out {
        outln!("{:#}", to_json(&r));
    } else {
        print(&r, now);
    }
    Ok(ExitCode::SUCCESS)
}

fn to_json(r: &Replay) -> Value {
    let policies: Vec<Value> = r
        .policies
        .iter()
        .map(|p| {
            json!({
                "name": p.name, "kind": p.kind, "action": p.action.as_str(),
                "jobs": p.jobs.iter().map(|s| json!({
                    "account": s.account, "job_id": s.job_id, "at": s.at, "reason": s.reason,
                    "actual_status": s.actual_status, "actual_cost_usd": dollars(s.actual_cost),
                    "saved_usd": s.saved.as_dollars(),
                })).collect::<Vec<_>>(),
                "jobs_count": p.jobs.len(),
                "saved_usd": p.saved.as_dollars(),
                "not_judged": p.not_judged.iter().map(|n| json!({"jobs": n.jobs, "why": n.why})).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "since": r.since, "until": r.until, "jobs": r.jobs,
        "policies": policies, "saved_usd": r.saved.as_dollars(),
    })
}

fn print(r: &Replay, now: i64) {
    outln!(
        "replay of {} over {} created since {} ({} ago); nothing was sent",
        count(r.policies.len() as u64, "policy", "policies"),
        count(r.jobs as u64, "job", "jobs"),
        time::human(r.since),
        ftguard::policy::format::secs(now.saturating_sub(r.since)),
    );
    // Largest savings first.
    let mut order: Vec<&PolicyReplay> = r.policies.iter().collect();
    order.sort_by(|a, b| b.saved.cmp(&a.saved).then(b.jobs.len().cmp(&a.jobs.len())));
    for p in &order {
        outln!(
            "\n[{}] {}, {}: {}, saved {}",
            p.name,
            p.kind,
            p.action.as_str(),
            if p.jobs.is_empty() {
                "would have acted on no job".to_owned()
            } else {
                format!(
                    "would have acted on {}",
                    count(p.jobs.len() as u64, "job", "jobs")
                )
            },
            p.saved
        );
        for n in &p.not_judged {
            outln!(
                "  not judged: {} ({})",
                count(n.jobs as u64, "job", "jobs"),
                n.why
            );
        }
        if p.jobs.is_empty() {
            continue;
        }
        let mut table = Tabled::new(
            &[
                ("AT", Align::Left),
                ("ACCOUNT", Align::Left),
                ("JOB", Align::Left),
                ("WHY", Align::Left),
                ("ACTUALLY", Align::Left),
                ("SAVED", Align::Right),
            ],
            true,
        );
        for s in p.jobs.iter().take(ROWS) {
            let cost = s
                .actual_cost
                .map_or("cost unknown".to_owned(), |c| c.to_string());
            table.row([
                time::human(s.at),
                s.account.clone(),
                s.job_id.clone(),
                s.reason.clone(),
                format!("{} {cost}", s.actual_status),
                s.saved.to_string(),
            ]);
        }
        table.print_indented("  ");
        if p.jobs.len() > ROWS {
            outln!(
                "  ... and {} more (--json lists every one)",
                p.jobs.len() - ROWS
            );
        }
    }
    let acted: std::collections::HashSet<(&str, &str)> = r
        .policies
        .iter()
        .flat_map(|p| {
            p.jobs
                .iter()
                .map(|s| (s.account.as_str(), s.job_id.as_str()))
        })
        .collect();
    let total = if r.saved == Usd(0) && acted.is_empty() {
        "no policy would have acted".to_owned()
    } else {
        format!(
            "the policies would have acted on {} and saved {} (each job counted once, at its largest saving)",
            count(acted.len() as u64, "job", "jobs"),
            r.saved
        )
    };
    outln!("\ntotal: {total}");
}
