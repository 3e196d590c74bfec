//! `ftguard replay`: what the policies would have done over the stored history, and what that
//! would have saved. Reads the database only.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use serde::Serialize;

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::app::App;
use ftguard::config::Config;
use ftguard::model::{Usd, time};
use ftguard::policy::format::count;
use ftguard::replay::{NotJudged, PolicyReplay, Replay, Stop};

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
        super::output::write_json(&to_json(&r));
    } else {
        print(&r, now);
    }
    Ok(ExitCode::SUCCESS)
}

/// The `--json` shape, serialized straight from the replay (no JSON tree in between).
#[derive(Serialize)]
struct ReplayJson<'a> {
    since: i64,
    until: i64,
    jobs: usize,
    policies: Vec<PolicyJson<'a>>,
    saved_usd: f64,
}

#[derive(Serialize)]
struct PolicyJson<'a> {
    name: &'a str,
    kind: &'a str,
    action: &'a str,
    jobs: StopsJson<'a>,
    jobs_count: usize,
    saved_usd: f64,
    not_judged: &'a [NotJudged],
}

struct StopsJson<'a>(&'a [Stop]);

impl Serialize for StopsJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct One<'a> {
            account: &'a str,
            job_id: &'a str,
            at: i64,
            reason: &'a str,
            actual_status: &'a str,
            actual_cost_usd: Option<f64>,
            saved_usd: f64,
        }
        s.collect_seq(self.0.iter().map(|j| One {
            account: &j.account,
            job_id: &j.job_id,
            at: j.at,
            reason: &j.reason,
            actual_status: &j.actual_status,
            actual_cost_usd: j.actual_cost.map(Usd::as_dollars),
            saved_usd: j.saved.as_dollars(),
        }))
    }
}

fn to_json(r: &Replay) -> ReplayJson<'_> {
    ReplayJson {
        since: r.since,
        until: r.until,
        jobs: r.jobs,
        policies: r
            .policies
            .iter()
            .map(|p| PolicyJson {
                name: &p.name,
                kind: p.kind,
                action: p.action.as_str(),
                jobs: StopsJson(&p.jobs),
                jobs_count: p.jobs.len(),
                saved_usd: p.saved.as_dollars(),
                not_judged: &p.not_judged,
            })
            .collect(),
        saved_usd: r.saved.as_dollars(),
    }
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
