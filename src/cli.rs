//! Command implementations: build what a command needs, run it, print for people or JSON.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::{Cli, Command, ConfigCommand};
use ftguard::app::{self, App};
use ftguard::clock;
use ftguard::config::{Config, Secrets};
use ftguard::cost::JobCost;
use ftguard::daemon;
use ftguard::model::Usd;
use ftguard::output::count;
use ftguard::policy::{GroupBy, Period, SpendTally, Verdict, parse_timezone, period_start};
use ftguard::store::{JobFilter, Store, StoredJob};
use ftguard::{out, outln};

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.as_deref();
    let load = || Config::load(path).context("invalid configuration");
    // Commands that only read the database work without the accounts' credentials.
    let load_to_read = || Config::load_with(path, Secrets::Skip).context("invalid configuration");
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "ftguard",
                &mut out,
            );
            out!("{}", String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim {
            listen,
            jobs,
            active,
            latency,
        } => {
            let now = clock::now();
            let mut all: Vec<ftguard::sim::SimJob> = (0..active)
                .map(|i| {
                    ftguard::sim::SimJob::in_status(
                        &format!("ftjob-active-{i:04}"),
                        "running",
                        if i == 0 { 7 * 3600 } else { 60 + i as i64 },
                        now,
                    )
                })
                .collect();
            all.extend((0..jobs).map(|i| {
                ftguard::sim::SimJob::in_status(
                    &ftguard::sim::history_id(i as u64),
                    "succeeded",
                    8 * 3600 + i as i64 * 10,
                    now,
                )
            }));
            let sim = ftguard::sim::Sim::start_on(listen, all)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            sim.set_latency(latency);
            outln!(
                "simulator of the fine-tuning API at {} ({jobs} finished, {active} running jobs); Ctrl-C stops it",
                sim.base_url()
            );
            tokio::signal::ctrl_c().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { seconds } => ftguard::demo::run(seconds).await.map(|_| ExitCode::SUCCESS),
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let config = load()?;
            outln!(
                "# configuration OK: {}",
                config
                    .source
                    .as_ref()
                    .map_or("built-in defaults (no file found)".into(), |p| p
                        .display()
                        .to_string())
            );
            outln!(
                "# {}, {}, {}; secrets shown as references only",
                count(config.accounts.len() as u64, "account", "accounts"),
                count(config.policies.len() as u64, "policy", "policies"),
                count(config.notifiers.len() as u64, "notifier", "notifiers")
            );
            for w in config.warnings() {
                outln!("# warning: {w}");
            }
            out!("{}", config.redacted_toml());
            outln!("\n# training prices in force (USD):");
            for line in config.prices.describe() {
                outln!("#   {line}");
            }

            Ok(ExitCode::SUCCESS)
        }
        Command::Run { once, json } => {
            let config = load()?;
            let report = daemon::run(
                config,
                daemon::Options {
                    config_path: cli.config.clone(),
                    once,
                    report: (once && !json).then(|| {
                        std::sync::Arc::new(|l: String| outln!("{l}")) as daemon::Reporter
                    }),
                    stop: CancellationToken::new(),
                },
            )
            .await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            }
            Ok(if report.failed > 0 && once {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Sync { full, json } => {
            let app = App::build(load()?).await?;
            if app.clients.is_empty() {
                bail!(
                    "no [[accounts]] configured in {}",
                    app.config
                        .source
                        .as_ref()
                        .map_or("the configuration".into(), |p| p.display().to_string())
                );
            }
            let results = app.sync_with(full).await;
            if json {
                let out: Vec<Value> = results.iter().map(|(a, r)| app::sync_json(a, r)).collect();
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for (a, r) in &results {
                    outln!("{}", app::sync_line(a, r));
                }
            }
            Ok(if results.iter().any(|(_, r)| r.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plan { offline, json } => {
            let app = App::build(if offline { load_to_read()? } else { load()? }).await?;
            if !offline {
                for (a, r) in app.sync().await {
                    eprintln!("{}", app::sync_line(&a, &r));
                }
                app.estimate().await?;
            }
            let evaluation = app.decide(&app.config.policies, clock::now()).await?;
            let decisions = &evaluation.decisions;
            // Thresholds already notified are not notified again: not part of the plan.
            let mut notices = Vec::new();
            for n in &evaluation.notices {
                if !app.store.has_budget_notice(n).await? {
                    notices.push(n);
                }
            }
            if json {
                let mut out: Vec<Value> = decisions.iter().map(|d| json!({
                    "account": d.account, "job_id": d.job_id, "policy": d.policy,
                    "action": match &d.verdict { Verdict::Act(k) => k.as_str(), Verdict::Warn { .. } => "warn", Verdict::Clear => "clear" },
                    "act_after": match &d.verdict { Verdict::Warn { until } => Some(*until), _ => None },
                    "reason": d.reason, "dry_run": d.dry_run,
                })).collect();
                out.extend(notices.iter().map(|n| {
                    json!({
                        "action": "budget_notice", "policy": n.policy, "group": n.group,
                        "period_start": n.period_start, "percent": n.percent, "reason": n.reason,
                    })
                }));
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else if decisions.is_empty() && notices.is_empty() {
                outln!("nothing to do: no active job breaks a policy");
            } else {
                for d in decisions {
                    let what = match &d.verdict {
                        Verdict::Act(k) => format!("would {}", k.as_str()),
                        Verdict::Warn { until } => {
                            format!("would warn (acts after {})", clock::human(*until))
                        }
                        Verdict::Clear => "would clear grace".into(),
                    };
                    outln!(
                        "{what:<12} {:<10} {:<28} [{}] {}{}",
                        d.account,
                        d.job_id,
                        d.policy,
                        d.reason,
                        if d.dry_run { " (dry run)" } else { "" }
                    );
                }
                for n in &notices {
                    outln!(
                        "{:<12} {:<39} [{}] {}",
                        "would notify",
                        format!("budget group {}", n.group),
                        n.policy,
                        n.reason
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Jobs {
            status,
            account,
            since,
            limit,
            json,
        } => {
            let created_after = since
                .map(|s| clock::parse_since(&s, clock::now()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let app = App::build(load_to_read()?).await?;
            let filter = JobFilter {
                account,
                status,
                created_after,
                limit: limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
                ..Default::default()
            };
            // Streamed: one job in memory at a time, whatever the history's size.
            let mut shown = 0usize;
            app.for_each_job_with_cost(&filter, clock::now(), |j, c| {
                if json {
                    // Each element pretty-printed and indented: the whole is one JSON array.
                    let element = serde_json::to_string_pretty(&job_json(j, c))
                        .unwrap_or_else(|_| "null".into());
                    out!(
                        "{}\n  {}",
                        if shown == 0 { "[" } else { "," },
                        element.replace('\n', "\n  ")
                    );
                } else {
                    if shown == 0 {
                        outln!(
                            "{:<10} {:<30} {:<18} {:<26} {:<20} {:>14} {:>10}",
                            "ACCOUNT",
                            "ID",
                            "STATUS",
                            "MODEL",
                            "CREATED",
                            "TRAINED_TOKENS",
                            "COST"
                        );
                    }
                    outln!(
                        "{:<10} {:<30} {:<18} {:<26} {:<20} {:>14} {:>10}",
                        j.account,
                        j.job.id,
                        status_cell(j),
                        j.job.model,
                        clock::human(j.job.created_at),
                        j.job.trained_tokens.map_or("-".into(), |t| t.to_string()),
                        money_cell(c)
                    );
                }
                shown += 1;
            })
            .await?;
            match (json, shown) {
                (true, 0) => outln!("[]"),
                (true, _) => outln!("\n]"),
                (false, 0) => outln!("{}", no_jobs_line(&app, &filter).await?),
                (false, _) => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Spend { period, by, json } => spend(load_to_read()?, period, by, json).await,
        Command::Show { job, account, json } => {
            let app = App::build(load_to_read()?).await?;
            let store = app.store.clone();
            let found = store.job(account.as_deref(), &job).await?;
            let j = match found.as_slice() {
                [] => bail!(
                    "job {job:?} is not stored{}: run `ftguard sync`, or check the id",
                    account
                        .map(|a| format!(" in account {a:?}"))
                        .unwrap_or_default()
                ),
                [one] => one,
                many => bail!(
                    "job {job:?} exists in several accounts ({}): add --account",
                    many.iter()
                        .map(|j| j.account.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let history = store
                .transitions(j.account.as_str(), j.job.id.as_str())
                .await?;
            let actions: Vec<_> = store
                .actions(Some(&job), None)
                .await?
                .into_iter()
                .filter(|a| a.account == j.account.as_str())
                .collect();
            let cost = app
                .with_costs(vec![j.clone()], clock::now())
                .await?
                .pop()
                .map(|(_, c)| c)
                .unwrap_or_default();
            if json {
                let mut v = job_json(j, &cost);
                v["status_history"] = json!(history);
                v["actions"] = json!(actions);
                v["raw"] = j.job.raw_value();
                outln!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                outln!("{} ({})", j.job.id, j.account);
                outln!("  status          {}", status_cell(j));
                if let Some(at) = j.gone_at {
                    outln!(
                        "  gone            {} (the API answered 404; no longer watched)",
                        clock::human(at)
                    );
                }
                outln!("  model           {}", j.job.model);
                outln!("  created         {}", clock::human(j.job.created_at));
                outln!(
                    "  finished        {}",
                    j.job.finished_at.map_or("-".into(), clock::human)
                );
                outln!(
                    "  est. finish     {}",
                    j.job.estimated_finish.map_or("-".into(), clock::human)
                );
                outln!(
                    "  trained tokens  {}",
                    j.job.trained_tokens.map_or("-".into(), |t| t.to_string())
                );
                outln!(
                    "  n_epochs        {}",
                    j.job
                        .n_epochs
                        .as_ref()
                        .map_or("-".into(), |v| v.to_string())
                );
                outln!(
                    "  training file   {}",
                    j.job.training_file.as_deref().unwrap_or("-")
                );
                match &cost.unknown {
                    Some(why) if cost.best().is_none() => {
                        outln!("  cost            ? ({why})")
                    }
                    _ => outln!("  cost            {}", money_cell(&cost)),
                }
                outln!(
                    "  metadata        {}",
                    serde_json::to_string(&j.job.metadata)?
                );
                outln!("  history:");
                for t in &history {
                    outln!(
                        "    {}  {} -> {}",
                        clock::human(t.observed_at),
                        t.from.as_deref().unwrap_or("(first seen)"),
                        t.to
                    );
                }
                if !actions.is_empty() {
                    outln!("  actions:");
                    for a in &actions {
                        outln!(
                            "    #{} {} {} [{}] {} -> {}",
                            a.id,
                            clock::human(a.requested_at),
                            a.action,
                            a.policy,
                            a.reason,
                            a.outcome
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Actions { job, since, json } => {
            let since = since
                .map(|s| clock::parse_since(&s, clock::now()))
                .transpose()
                .map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            let store = open_store(load_to_read()?).await?;
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
        Command::Cancel {
            job,
            account,
            reason,
        } => {
            let app = App::build(load()?).await?;
            let account = resolve_account(&app, &job, account).await?;
            let report = app.enforcer.manual_cancel(&account, &job, &reason).await?;
            for l in &report.lines {
                outln!("{l}");
            }
            if report.lines.is_empty() {
                outln!("{job} already has a pending or successful cancel: nothing sent");
            }
            Ok(
                if report.cancelled + report.already_finished > 0 || report.lines.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Resume { job, account } => {
            let app = App::build(load()?).await?;
            let account = resolve_account(&app, &job, account).await?;
            let client = app.client(&account).context("account not configured")?;
            let j = client.resume(&job).await?;
            app.store
                .upsert_jobs(client.account(), std::slice::from_ref(&j), clock::now())
                .await?;
            outln!("{} resumed: status {}", j.id, j.status);
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn open_store(config: Config) -> anyhow::Result<Store> {
    Ok(Store::open(&config.database).await?)
}

/// The account a job belongs to: given, or the one account storing it, or the only account.
async fn resolve_account(app: &App, job: &str, given: Option<String>) -> anyhow::Result<String> {
    if let Some(a) = given {
        if app.config.account(&a).is_none() {
            bail!(
                "unknown account {a:?} (configured: {})",
                app.config
                    .accounts
                    .iter()
                    .map(|a| a.name.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
        return Ok(a);
    }
    let stored = app.store.job(None, job).await?;
    match (stored.as_slice(), app.config.accounts.as_slice()) {
        ([one], _) => Ok(one.account.to_string()),
        ([], [only]) => Ok(only.name.to_string()),
        ([], _) => bail!("job {job:?} is not stored: run `ftguard sync` or pass --account"),
        (many, _) => bail!(
            "job {job:?} exists in {} accounts: pass --account",
            many.len()
        ),
    }
}

/// The `jobs --json` shape: API values verbatim.
fn job_json(j: &StoredJob, cost: &JobCost) -> Value {
    let raw = &j.job.raw_value();
    let get = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "account": j.account,
        "id": j.job.id,
        "model": get("model"),
        "status": get("status"),
        "created_at": get("created_at"),
        "finished_at": get("finished_at"),
        "trained_tokens": get("trained_tokens"),
        "estimated_finish": get("estimated_finish"),
        "n_epochs": j.job.n_epochs.clone().unwrap_or(Value::Null),
        "training_file": get("training_file"),
        "validation_file": get("validation_file"),
        "fine_tuned_model": get("fine_tuned_model"),
        "method": j.job.method,
        "user_provided_suffix": get("user_provided_suffix"),
        "metadata": get("metadata"),
        "error": get("error"),
        "cost_usd": dollars(cost.actual),
        "projected_cost_usd": dollars(cost.projected),
        "cost_unknown_reason": cost.unknown,
        "last_step_at": j.last_step_at,
        "steps_checked_at": j.steps_checked_at,
        "gone_at": j.gone_at,
        "first_seen_at": j.first_seen_at,
        "updated_at": j.updated_at,
    })
}

/// The API's status, or `gone (was running)` for a job the API no longer knows.
fn status_cell(j: &StoredJob) -> String {
    match j.gone_at {
        Some(_) => format!("gone (was {})", j.job.status),
        None => j.job.status.to_string(),
    }
}

/// `$18.40`, `~$18.40` (projected) or `?` (unknown).
fn money_cell(c: &JobCost) -> String {
    match (c.actual, c.projected) {
        (Some(a), Some(p)) if a == p => a.to_string(),
        (_, Some(p)) => format!("~{p}"),
        (Some(a), None) => a.to_string(),
        (None, None) => "?".into(),
    }
}

fn dollars(u: Option<Usd>) -> Value {
    u.map_or(Value::Null, |u| json!(u.as_dollars()))
}

/// `ftguard spend`: per group, spent, projected, limit and remaining.
async fn spend(
    config: Config,
    period: String,
    by: Option<String>,
    json_out: bool,
) -> anyhow::Result<ExitCode> {
    let period = Period::parse(&period).map_err(|e| anyhow::anyhow!("--period: {e}"))?;
    let group_by = GroupBy::parse(by.as_deref()).map_err(|e| anyhow::anyhow!("--by: {e}"))?;
    // Limit and time zone come from a budget policy with the same period and grouping.
    let budget = config.raw.policies.iter().find(|p| {
        p.kind == "budget"
            && Period::parse(p.period.as_deref().unwrap_or("month")).ok() == Some(period)
            && GroupBy::parse(p.group_by.as_deref()).ok().as_ref() == Some(&group_by)
    });
    let limit = budget.and_then(|p| p.limit_usd).map(Usd::from_dollars);
    let budget_name = budget.map(|p| p.name.clone());
    let tz = budget
        .and_then(|p| p.timezone.as_deref())
        .and_then(|t| parse_timezone(t).ok())
        .unwrap_or(jiff::tz::TimeZone::UTC);
    let app = App::build(config).await?;
    let now = clock::now();
    let start = period_start(period, &tz, now);
    let filter = JobFilter {
        active_only: true,
        created_since: Some(start),
        ..Default::default()
    };
    // Streamed: one job in memory at a time, however many the period holds.
    let mut tally = SpendTally::new(start, group_by);
    app.for_each_job_with_cost(&filter, now, |j, cost| tally.add(&app::view(j, cost)))
        .await?;
    let groups = tally.finish();
    let remaining = |s: &ftguard::policy::Spend| limit.map(|l| Usd(l.0 - s.total().0));
    // The budget's thresholds already reached (and notified) this period, per group.
    let mut notified: std::collections::HashMap<String, Vec<u32>> = Default::default();
    if let Some(b) = &budget_name {
        for n in app.store.budget_notices(start).await? {
            if n.policy == *b && n.period_start == start {
                notified.entry(n.group).or_default().push(n.percent);
            }
        }
        notified.values_mut().for_each(|p| p.sort_unstable());
    }
    let notified_of = |g: &str| notified.get(g).cloned().unwrap_or_default();
    if json_out {
        let out: Vec<Value> = groups
            .iter()
            .map(|(g, s)| {
                json!({
                    "group": g, "since": start, "spent_usd": s.spent.as_dollars(), "projected_usd": s.projected.as_dollars(),
                    "total_usd": s.total().as_dollars(), "limit_usd": dollars(limit),
                    "remaining_usd": dollars(remaining(s)), "unknown_cost_jobs": s.unknown,
                    "notified_percent": notified_of(g),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if groups.is_empty() {
        outln!("no spend since {}", clock::human(start));
    } else {
        outln!("since {}", clock::human(start));
        outln!(
            "{:<24} {:>12} {:>12} {:>12} {:>12} {:>12}",
            "GROUP",
            "SPENT",
            "PROJECTED",
            "TOTAL",
            "LIMIT",
            "REMAINING"
        );
        for (g, s) in &groups {
            let thresholds = notified_of(g);
            outln!(
                "{:<24} {:>12} {:>12} {:>12} {:>12} {:>12}{}{}",
                g,
                s.spent.to_string(),
                s.projected.to_string(),
                s.total().to_string(),
                limit.map_or("-".into(), |l| l.to_string()),
                remaining(s).map_or("-".into(), |r| r.to_string()),
                if s.unknown > 0 {
                    format!("  ({} of unknown cost)", count(s.unknown, "job", "jobs"))
                } else {
                    String::new()
                },
                if thresholds.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> = thresholds.iter().map(|p| format!("{p}%")).collect();
                    format!("  (notified at {})", p.join(", "))
                }
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Why `jobs` printed nothing: no job stored at all, or none matching the filters (then
/// what is stored, so a mistyped status or account is easy to spot).
async fn no_jobs_line(app: &App, filter: &JobFilter) -> anyhow::Result<String> {
    let counts = app.store.job_counts().await?;
    if counts.is_empty() {
        return Ok("no jobs stored yet: run `ftguard sync`".into());
    }
    let mut asked = Vec::new();
    if let Some(s) = &filter.status {
        asked.push(format!("--status {s}"));
    }
    if let Some(a) = &filter.account {
        asked.push(format!("--account {a}"));
    }
    if let Some(t) = filter.created_after {
        asked.push(format!("--since {}", clock::human(t)));
    }
    let list = |pick: fn(&(String, String, i64)) -> &String| {
        let mut v: Vec<&str> = counts.iter().map(|c| pick(c).as_str()).collect();
        v.sort_unstable();
        v.dedup();
        v.join(", ")
    };
    Ok(format!(
        "no stored job matches {}; stored accounts: {}; stored statuses: {}",
        asked.join(" "),
        list(|c| &c.0),
        list(|c| &c.1)
    ))
}
