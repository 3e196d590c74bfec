//! The "policies" part of `ftguard show`: where an active job stands with each configured
//! policy, and what ftguard will do about it (see `policy::standing`).

use std::collections::HashMap;

use serde_json::{Value, json};

use ftguard::app;
use ftguard::config::Config;
use ftguard::cost::JobCost;
use ftguard::model::time;
use ftguard::policy::{Curves, GraceKey, JobView, Policy, Standing, format, standing};
use ftguard::store::{ActionRecord, StoredJob};

/// Each policy's standing for a job ftguard still watches; empty for finished or gone jobs,
/// which no policy acts on.
pub fn standings<'c>(
    config: &'c Config,
    j: &StoredJob,
    cost: &JobCost,
    curves: Option<&Curves>,
    marks: &HashMap<GraceKey, i64>,
    now: i64,
) -> Vec<(&'c Policy, Standing)> {
    if j.job.status.is_terminal() || j.gone_at.is_some() {
        return Vec::new();
    }
    let v = JobView {
        curves,
        ..app::view(j, cost)
    };
    config
        .policies
        .iter()
        .map(|p| {
            let key = (
                j.account.to_string(),
                j.job.id.as_str().to_owned(),
                p.name.clone(),
            );
            (p, standing(&v, now, p, marks.get(&key).copied()))
        })
        .collect()
}

/// What the policy does, as a verb phrase: `cancel`, `would cancel (dry run)`.
fn act(config: &Config, p: &Policy) -> String {
    let action = p.action.as_str();
    if config.dry_run || p.dry_run {
        format!("would {action} (dry run)")
    } else {
        action.to_owned()
    }
}

/// `in 2h10m` or `2h10m ago`.
fn from_now(at: i64, now: i64) -> String {
    if at >= now {
        format!("in {}", format::secs(at - now))
    } else {
        format!("{} ago", format::secs(now - at))
    }
}

/// For a job breaking `p`: the recorded action that already stands for it (see
/// [`ftguard::enforce::already_done`]).
pub fn already_done(
    p: &Policy,
    actions: &[ActionRecord],
    last_change: i64,
) -> Option<(i64, &'static str)> {
    ftguard::enforce::already_done(p.action, p.fallback, &p.name, actions, last_change)
}

/// One line per policy for people: the policy's name and where the job stands.
pub fn line(
    config: &Config,
    p: &Policy,
    s: &Standing,
    now: i64,
    (actions, last_change): (&[ActionRecord], i64),
) -> (String, String) {
    let act = act(config, p);
    if let Standing::Breaks { reason } | Standing::InGrace { reason, .. } = s
        && let Some((id, what)) = already_done(p, actions, last_change)
    {
        return (
            p.name.clone(),
            format!("breaks it: {reason} — {what} (#{id})"),
        );
    }
    let grace = format::limit(p.grace);
    let when = match &p.schedule {
        Some(cron) => format!("its next scheduled pass ({cron})"),
        None => "the next pass".to_owned(),
    };
    let text = match s {
        Standing::Breaks { reason } if p.grace.is_zero() => {
            format!("breaks it: {reason} — {act} at {when}")
        }
        Standing::Breaks { reason } => {
            format!("breaks it: {reason} — warn at {when}, {act} {grace} later if still over")
        }
        Standing::Paused { reason } => {
            format!("breaks it: {reason} — paused already: nothing more until it is resumed")
        }
        Standing::InGrace { reason, until } => format!(
            "in grace: {reason} — {act} at {} ({}) if still over",
            time::human(*until),
            from_now(*until, now)
        ),
        Standing::Due { at } if p.grace.is_zero() => format!(
            "reaches the limit at {} ({}) — then {act}",
            time::human(*at),
            from_now(*at, now)
        ),
        Standing::Due { at } => format!(
            "reaches the limit at {} ({}) — then warn, {act} {grace} later if still over",
            time::human(*at),
            from_now(*at, now)
        ),
        Standing::Watching { progress } => format!("keeps it for now: {progress} — then {act}"),
        Standing::Keeps => "keeps it".to_owned(),
        Standing::Group => "budget, decided over its group: see `ftguard spend`".to_owned(),
        Standing::NotMatched => "does not apply (its match leaves this job out)".to_owned(),
        Standing::Exempt => "exempt".to_owned(),
    };
    (p.name.clone(), text)
}

/// The JSON form: `policy`, `standing` and its fields (`reason`, `until`, `at`), `action`,
/// `dry_run`, `grace_secs`, and for a job breaking it, `already_done`: the recorded action
/// that stands for it (`action_id`, `what`), so the next pass does not act again.
pub fn json(
    config: &Config,
    p: &Policy,
    s: &Standing,
    (actions, last_change): (&[ActionRecord], i64),
) -> Value {
    let mut v = serde_json::to_value(s).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        if matches!(s, Standing::Breaks { .. } | Standing::InGrace { .. })
            && let Some((id, what)) = already_done(p, actions, last_change)
        {
            m.insert(
                "already_done".into(),
                json!({"action_id": id, "what": what}),
            );
        }
        m.insert("policy".into(), json!(p.name));
        m.insert("action".into(), json!(p.action.as_str()));
        m.insert("dry_run".into(), json!(config.dry_run || p.dry_run));
        m.insert("grace_secs".into(), json!(p.grace.as_secs()));
    }
    v
}
