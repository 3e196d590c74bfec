//! `ftguard spend`: spent, projected, limit and remaining per group in a period.

use std::process::ExitCode;

use serde_json::{Value, json};

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::app::{self, App};
use ftguard::config::Config;
use ftguard::model::Usd;
use ftguard::model::time;
use ftguard::policy::format::count;
use ftguard::policy::{GroupBy, Period, SpendTally, parse_timezone, period_start};
use ftguard::store::JobFilter;

use super::jobs::dollars;

/// `ftguard spend`: per group, spent, projected, limit and remaining.
pub async fn spend(
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
    let app = App::build_to_read(config).await?;
    let now = time::now();
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
    let remaining =
        |s: &ftguard::policy::Spend| limit.map(|l| Usd(l.0.saturating_sub(s.total().0)));
    // The budget's thresholds already reached (and notified) this period, per group.
    let mut notified: std::collections::HashMap<String, Vec<u32>> = Default::default();
    if let Some(b) = &budget_name {
        for n in app.store().budget_notices(start).await? {
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
        outln!("no spend since {}", time::human(start));
    } else {
        outln!("since {}", time::human(start));
        let mut table = Tabled::new(
            &[
                ("GROUP", Align::Left),
                ("SPENT", Align::Right),
                ("PROJECTED", Align::Right),
                ("TOTAL", Align::Right),
                ("LIMIT", Align::Right),
                ("REMAINING", Align::Right),
                ("NOTES", Align::Left),
            ],
            true,
        );
        for (g, s) in &groups {
            let thresholds = notified_of(g);
            let mut notes = Vec::new();
            if s.unknown > 0 {
                notes.push(format!(
                    "{} of unknown cost",
                    count(s.unknown, "job", "jobs")
                ));
            }
            if !thresholds.is_empty() {
                let p: Vec<String> = thresholds.iter().map(|p| format!("{p}%")).collect();
                notes.push(format!("notified at {}", p.join(", ")));
            }
            table.row([
                g.clone(),
                s.spent.to_string(),
                s.projected.to_string(),
                s.total().to_string(),
                limit.map_or("-".into(), |l| l.to_string()),
                remaining(s).map_or("-".into(), |r| r.to_string()),
                notes.join("; "),
            ]);
        }
        table.print();
    }
    if !json_out {
        // Jobs training-quality policies stopped early: what their remaining steps would have
        // cost (`actions --json` has each as `estimated_saving_usd`).
        let (saved, stops) = app.store().estimated_savings_since(start).await?;
        if stops > 0 {
            outln!(
                "stopped early by training-quality policies since {}: {}, about {saved} not spent",
                time::human(start),
                count(u64::try_from(stops).unwrap_or(0), "job", "jobs")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
