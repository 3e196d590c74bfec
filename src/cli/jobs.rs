//! `ftguard jobs` and `ftguard show`: stored jobs for people (a table, one job in full) and for
//! scripts (JSON with the API's values verbatim plus ftguard's own fields).

use std::process::ExitCode;

use anyhow::bail;
use serde_json::{Value, json};

use super::table::{Align, Tabled};
use crate::{out, outln};
use ftguard::app::App;
use ftguard::config::Config;
use ftguard::cost::JobCost;
use ftguard::model::Usd;
use ftguard::model::time;
use ftguard::store::{JobFilter, StoredJob};

/// Rows of `jobs` laid out and printed at a time.
const TABLE_BLOCK: usize = 1000;

/// `jobs --status active`: every job still running its course (queued, running, paused, ...).
const ACTIVE: &str = "active";

/// The listing's filter from `jobs`' arguments.
pub fn filter(
    status: Option<String>,
    account: Option<String>,
    model: Option<String>,
    since: Option<String>,
    limit: Option<u64>,
) -> anyhow::Result<JobFilter> {
    let created_after = super::since_arg(since)?;
    // `active`: every job not finished and still known to the API, from its own index.
    let active_only = status.as_deref() == Some(ACTIVE);
    Ok(JobFilter {
        account,
        status: status.filter(|_| !active_only),
        active_only,
        created_after,
        limit: limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        model,
        ..Default::default()
    })
}

/// `ftguard jobs`: newest first, streamed, one job in memory at a time.
pub async fn list(config: Config, filter: JobFilter, json: bool) -> anyhow::Result<ExitCode> {
    let app = App::build_to_read(config).await?;
    // The JSON carries API values verbatim, read from the payload as received.
    let filter = JobFilter {
        with_payload: json,
        ..filter
    };
    let mut shown = 0usize;
    let mut table = Tabled::new(
        &[
            ("ACCOUNT", Align::Left),
            ("ID", Align::Left),
            ("STATUS", Align::Left),
            ("MODEL", Align::Left),
            ("CREATED", Align::Left),
            ("TRAINED_TOKENS", Align::Right),
            ("COST", Align::Right),
        ],
        true,
    );
    app.for_each_job_with_cost(&filter, time::now(), |j, c| {
        if json {
            // Each element pretty-printed and indented: the whole is one JSON array.
            let element =
                serde_json::to_string_pretty(&job_json(j, c)).unwrap_or_else(|_| "null".into());
            out!(
                "{}\n  {}",
                if shown == 0 { "[" } else { "," },
                element.replace('\n', "\n  ")
            );
        } else {
            table.row([
                j.account.to_string(),
                j.job.id.to_string(),
                status_cell(j),
                j.job.model.clone(),
                time::human(j.job.created_at),
                j.job.trained_tokens.map_or("-".into(), |t| t.to_string()),
                money_cell(c),
            ]);
            // Printed in blocks: a listing of 100,000 jobs holds a block at a time.
            if table.len() == TABLE_BLOCK {
                table.flush();
            }
        }
        shown += 1;
    })
    .await?;
    match (json, shown) {
        (true, 0) => outln!("[]"),
        (true, _) => outln!("\n]"),
        (false, 0) => outln!("{}", no_jobs_line(&app, &filter).await?),
        (false, _) => {
            if table.len() > 0 {
                table.print();
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `ftguard show`: one job with its status history and actions.
pub async fn show(
    app: &App,
    job: String,
    account: Option<String>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let store = app.store().clone();
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
        .with_costs(vec![j.clone()], time::now())
        .await?
        .pop()
        .map(|(_, c)| c)
        .unwrap_or_default();
    let now = time::now();
    let marks = store.grace_marks().await?;
    let curves = store.curves(j.account.as_str(), j.job.id.as_str()).await?;
    let checkpoints = store
        .checkpoints(j.account.as_str(), j.job.id.as_str())
        .await?;
    let standings = super::standing::standings(
        app.config(),
        j,
        &cost,
        Some(&curves).filter(|c| c.last_step().is_some()),
        &marks,
        now,
    );
    let last_change = history.iter().map(|t| t.observed_at).max().unwrap_or(0);
    if json {
        let mut v = job_json(j, &cost);
        v["status_history"] = json!(history);
        v["actions"] = json!(actions);
        v["policies"] = standings
            .iter()
            .map(|(p, s)| super::standing::json(app.config(), p, s, (&actions, last_change)))
            .collect();
        v["metrics"] = json!(store.metrics(j.account.as_str(), j.job.id.as_str()).await?);
        v["checkpoints"] = json!(checkpoints);
        v["raw"] = j.job.raw_value();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        outln!("{} ({})", j.job.id, j.account);
        outln!("  status          {}", status_cell(j));
        if let Some(at) = j.gone_at {
            outln!(
                "  gone            {} (the API answered 404; no longer watched)",
                time::human(at)
            );
        }
        outln!("  model           {}", j.job.model);
        outln!("  created         {}", time::human(j.job.created_at));
        outln!(
            "  finished        {}",
            j.job.finished_at.map_or("-".into(), time::human)
        );
        outln!(
            "  est. finish     {}",
            j.job.estimated_finish.map_or("-".into(), time::human)
        );
        outln!(
            "  trained tokens  {}",
            j.job.trained_tokens.map_or("-".into(), |t| t.to_string())
        );
        outln!(
            "  n_epochs        {}",
            match &j.job.n_epochs {
                None => "-".into(),
                Some(Value::String(s)) => s.clone(),
                Some(v) => v.to_string(),
            }
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
        super::curve::print(&curves, &checkpoints);
        outln!("  history:");
        for t in &history {
            outln!(
                "    {}  {} -> {}",
                time::human(t.observed_at),
                t.from.as_deref().unwrap_or("(first seen)"),
                t.to
            );
        }
        if !standings.is_empty() {
            outln!("  policies (now):");
            let mut table =
                Tabled::new(&[("POLICY", Align::Left), ("STANDING", Align::Left)], false);
            for (p, s) in &standings {
                let (name, text) =
                    super::standing::line(app.config(), p, s, now, (&actions, last_change));
                table.row([name, text]);
            }
            table.print_indented("    ");
        } else if j.job.status.is_terminal() {
            outln!("  policies        none act on a finished job");
        }
        if !actions.is_empty() {
            outln!("  actions:");
            for a in &actions {
                outln!(
                    "    #{} {} {} [{}] {} -> {}",
                    a.id,
                    time::human(a.requested_at),
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

/// The `jobs --json` shape: API values verbatim, but times in unix seconds whatever unit the
/// API sent them in, and `trained_tokens` a number even when it came as a string of digits
/// (`raw` in `show --json` has them as they came).
fn job_json(j: &StoredJob, cost: &JobCost) -> Value {
    let raw = &j.job.raw_value();
    let get = |k: &str| raw.get(k).cloned().unwrap_or(Value::Null);
    json!({
        "account": j.account,
        "id": j.job.id,
        "model": get("model"),
        "status": get("status"),
        "created_at": j.job.created_at,
        "finished_at": j.job.finished_at,
        "trained_tokens": j.job.trained_tokens,
        "estimated_finish": j.job.estimated_finish,
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

pub(super) fn dollars(u: Option<Usd>) -> Value {
    u.map_or(Value::Null, |u| json!(u.as_dollars()))
}

/// Why `jobs` printed nothing: no job stored at all, or none matching the filters (then
/// what is stored, so a mistyped status or account is easy to spot).
async fn no_jobs_line(app: &App, filter: &JobFilter) -> anyhow::Result<String> {
    let counts = app.store().job_counts().await?;
    if counts.is_empty() {
        return Ok("no jobs stored yet: run `ftguard sync`".into());
    }
    let mut asked = Vec::new();
    if let Some(s) = &filter.status {
        asked.push(format!("--status {s}"));
    }
    if filter.active_only {
        asked.push(format!("--status {ACTIVE}"));
    }
    if let Some(a) = &filter.account {
        asked.push(format!("--account {a}"));
    }
    if let Some(m) = &filter.model {
        asked.push(format!("--model {m}"));
    }
    if let Some(t) = filter.created_after {
        asked.push(format!("--since {}", time::human(t)));
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
