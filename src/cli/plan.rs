//! `ftguard plan`: what the policies would do now and why. Never acts.

use std::process::ExitCode;

use serde_json::{Value, json};

use ftguard::app::{self, App};
use ftguard::clock;
use ftguard::outln;
use ftguard::policy::Verdict;

pub async fn plan(app: &App, offline: bool, json: bool) -> anyhow::Result<ExitCode> {
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
