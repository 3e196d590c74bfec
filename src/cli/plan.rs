//! `ftguard plan`: what the policies would do now and why. Never acts.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::{Value, json};

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::app::{self, App};
use ftguard::model::time;
use ftguard::policy::format::secs;
use ftguard::policy::{Standing, Verdict, standing};
use ftguard::store::JobFilter;

pub async fn plan(
    app: &App,
    offline: bool,
    upcoming: Option<Duration>,
    json: bool,
) -> anyhow::Result<ExitCode> {
    if !offline {
        for (a, r) in app.sync().await {
            eprintln!("{}", ftguard::sync::sync_line(&a, &r));
        }
        app.estimate().await?;
    }
    let now = time::now();
    let evaluation = app.decide(&app.config().policies, now).await?;
    let (coming, watching) = match upcoming {
        Some(within) => {
            coming_up(app, now, now.saturating_add(ftguard::model::secs(within))).await?
        }
        None => (Vec::new(), Vec::new()),
    };
    let decisions = &evaluation.decisions;
    // An action recorded earlier may stand for a decision (a notify policy notified once, a
    // cancel the API accepted, a pause refused under `fallback = "notify"`): the pass will not
    // act again, and the plan says what stands instead of "would ...", as `show` does.
    let mut already = Vec::with_capacity(decisions.len());
    for d in decisions {
        let policy = app.config().policies.iter().find(|p| p.name == d.policy);
        already.push(match (&d.verdict, policy) {
            (Verdict::Act(_), Some(p)) if !d.dry_run => {
                let actions: Vec<_> = app
                    .store()
                    .actions(Some(&d.job_id), None)
                    .await?
                    .into_iter()
                    .filter(|a| a.account == d.account)
                    .collect();
                let changed = app
                    .store()
                    .last_status_change(&d.account, &d.job_id)
                    .await?;
                super::standing::already_done(p, &actions, changed)
            }
            _ => None,
        });
    }
    // Thresholds already notified are not notified again: not part of the plan.
    let mut notices = Vec::new();
    for n in &evaluation.notices {
        if !app.store().has_budget_notice(n).await? {
            notices.push(n);
        }
    }
    if json {
        let mut out: Vec<Value> = decisions.iter().zip(&already).map(|(d, done)| json!({
            "account": d.account, "job_id": d.job_id, "policy": d.policy,
            "action": match &d.verdict { Verdict::Act(k) => k.as_str(), Verdict::Warn { .. } => "warn", Verdict::Clear => "clear" },
            "act_after": match &d.verdict { Verdict::Warn { until } => Some(*until), _ => None },
            "reason": d.reason, "dry_run": d.dry_run,
            "already_done": done.map(|(id, what)| json!({"action_id": id, "what": what})),
        })).collect();
        out.extend(notices.iter().map(|n| {
            json!({
                "action": "budget_notice", "policy": n.policy, "group": n.group,
                "period_start": n.period_start, "percent": n.percent, "reason": n.reason,
            })
        }));
        out.extend(coming.iter().map(|c| {
            json!({
                "action": "upcoming", "account": c.account, "job_id": c.job_id,
                "policy": c.policy, "at": c.at, "then": c.then, "dry_run": c.dry_run,
                "schedule": c.schedule,
            })
        }));
        out.extend(watching.iter().map(|w| {
            json!({
                "action": "watching", "account": w.account, "job_id": w.job_id,
                "policy": w.policy, "progress": w.progress,
            })
        }));
        outln!("{}", serde_json::to_string_pretty(&out)?);
    } else if decisions.is_empty() && notices.is_empty() {
        outln!("nothing to do: no active job breaks a policy");
        print_coming(&coming, upcoming, now);
        print_watching(&watching);
    } else {
        let mut table = Tabled::new(
            &[
                ("WHAT", Align::Left),
                ("ACCOUNT", Align::Left),
                ("JOB", Align::Left),
                ("POLICY", Align::Left),
                ("WHY", Align::Left),
            ],
            false,
        );
        for (d, done) in decisions.iter().zip(&already) {
            if let Some((id, what)) = done {
                table.row([
                    "done".to_owned(),
                    d.account.to_string(),
                    d.job_id.to_string(),
                    format!("[{}]", d.policy),
                    format!("{}: {what} (#{id})", d.reason),
                ]);
                continue;
            }
            let what = match &d.verdict {
                Verdict::Act(k) => format!("would {}", k.as_str()),
                Verdict::Warn { until } => {
                    format!("would warn (acts after {})", time::human(*until))
                }
                Verdict::Clear => "would clear grace".into(),
            };
            table.row([
                what,
                d.account.to_string(),
                d.job_id.to_string(),
                format!("[{}]", d.policy),
                format!("{}{}", d.reason, if d.dry_run { " (dry run)" } else { "" }),
            ]);
        }
        for n in &notices {
            table.row([
                "would notify".to_owned(),
                "budget group".to_owned(),
                n.group.to_string(),
                format!("[{}]", n.policy),
                n.reason.to_string(),
            ]);
        }
        table.print();
        print_coming(&coming, upcoming, now);
        print_watching(&watching);
    }
    Ok(ExitCode::SUCCESS)
}

/// A limit an active job will reach (or a grace period that will end) within the horizon.
struct Coming {
    at: i64,
    account: String,
    job_id: String,
    policy: String,
    /// What follows: the policy's action, or `warn` when it has a grace period.
    then: &'static str,
    /// For `warn`: the action after the grace period, and its length.
    after_grace: Option<(&'static str, Duration)>,
    /// The policy's own cron: it acts at its next run after `at`, not at `at`.
    schedule: Option<String>,
    dry_run: bool,
}

/// A running job a training-quality policy keeps for now: how far it is from the limit, in
/// steps (time cannot tell: it depends on the loss to come).
struct Watching {
    account: String,
    job_id: String,
    policy: String,
    progress: String,
}

/// What will happen before `until` if nothing changes, soonest first, from the same rules
/// as the passes (`policy::standing`); and the jobs training-quality policies are watching.
async fn coming_up(
    app: &App,
    now: i64,
    until: i64,
) -> anyhow::Result<(Vec<Coming>, Vec<Watching>)> {
    let jobs = app.store().jobs(&JobFilter::active()).await?;
    let jobs = app.with_costs(jobs, now).await?;
    let marks = app.store().grace_marks().await?;
    let curves = app.running_curves(&app.config().policies).await?;
    let mut out = Vec::new();
    let mut watching = Vec::new();
    for (j, cost) in &jobs {
        let mut views = [app::view(j, cost)];
        app::attach(&mut views, &curves);
        let [v] = views;
        for p in &app.config().policies {
            let key = (
                j.account.to_string(),
                j.job.id.as_str().to_owned(),
                p.name.clone(),
            );
            let (at, then, after_grace) = match standing(&v, now, p, marks.get(&key).copied()) {
                Standing::Due { at } if p.grace.is_zero() => (at, p.action.as_str(), None),
                Standing::Due { at } => (at, "warn", Some((p.action.as_str(), p.grace))),
                Standing::InGrace { until, .. } => (until, p.action.as_str(), None),
                Standing::Watching { progress } => {
                    watching.push(Watching {
                        account: j.account.to_string(),
                        job_id: j.job.id.as_str().to_owned(),
                        policy: p.name.clone(),
                        progress,
                    });
                    continue;
                }
                _ => continue,
            };
            if at <= until {
                out.push(Coming {
                    at,
                    account: j.account.to_string(),
                    job_id: j.job.id.as_str().to_owned(),
                    policy: p.name.clone(),
                    then,
                    after_grace,
                    schedule: p.schedule.as_ref().map(|s| s.as_str().to_owned()),
                    dry_run: app.config().dry_run || p.dry_run,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.at, &a.account, &a.job_id).cmp(&(b.at, &b.account, &b.job_id)));
    Ok((out, watching))
}

fn print_watching(watching: &[Watching]) {
    if watching.is_empty() {
        return;
    }
    outln!("\ntraining quality, watched in steps (if the loss does not improve):");
    for w in watching {
        outln!("  {} {} [{}] {}", w.account, w.job_id, w.policy, w.progress);
    }
}

fn print_coming(coming: &[Coming], upcoming: Option<Duration>, now: i64) {
    let Some(within) = upcoming else {
        return;
    };
    let within = humantime::format_duration(within);
    if coming.is_empty() {
        outln!("\nnothing comes due within {within}");
        return;
    }
    outln!("\ncoming up within {within} (if nothing changes):");
    let mut table = Tabled::new(
        &[
            ("AT", Align::Left),
            ("IN", Align::Left),
            ("ACCOUNT", Align::Left),
            ("JOB", Align::Left),
            ("POLICY", Align::Left),
            ("THEN", Align::Left),
        ],
        false,
    );
    for c in coming {
        let then = match c.after_grace {
            Some((action, grace)) => format!(
                "warn, {action} {} later if still over",
                humantime::format_duration(grace)
            ),
            None => c.then.to_owned(),
        };
        let then = match &c.schedule {
            Some(cron) => format!("{then}, at its next scheduled pass ({cron})"),
            None => then,
        };
        table.row([
            time::human(c.at),
            format!("(in {})", secs(c.at - now)),
            c.account.to_string(),
            c.job_id.to_string(),
            format!("[{}]", c.policy),
            format!("then {then}{}", if c.dry_run { " (dry run)" } else { "" }),
        ]);
    }
    table.print_indented("  ");
}
