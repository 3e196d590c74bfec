//! `budget`: spend of a group in a period (actual cost of jobs created in it + projected cost
//! of its active jobs) above `limit_usd` -> act on its active jobs newest first until the group
//! is back within the limit. `warn_at` thresholds notify once per group and period, and so
//! does a group that stays over the limit whatever is done to its active jobs.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::tz::TimeZone as Tz;
use serde::Serialize;

use super::kinds::Kind;
use super::{EvalContext, GroupNotice, JobView, Rule, SetOutcome, UnknownCost};
use crate::model::Usd;
use crate::policy::format::count;

pub const KIND: Kind = Kind {
    name: "budget",
    keys: &[
        "limit_usd",
        "period",
        "timezone",
        "group_by",
        "warn_at",
        "unknown_cost",
    ],
    build: |c| {
        let period = Period::parse(c.period.as_deref().unwrap_or("month"))?;
        let tz = match &c.timezone {
            Some(t) => parse_timezone(t)?,
            None => Tz::UTC,
        };
        let group_by = GroupBy::parse(c.group_by.as_deref())?;
        let mut warn_at = c.warn_at.clone().unwrap_or_default();
        if let Some(bad) = warn_at
            .iter()
            .find(|w| !(w.is_finite() && **w > 0.0 && **w <= 1.0))
        {
            return Err(format!("warn_at {bad} must be a fraction in (0, 1], e.g. 0.8").into());
        }
        warn_at.sort_by(f64::total_cmp);
        warn_at.dedup();
        Ok(Box::new(Budget {
            limit: c.limit_money()?,
            period,
            tz,
            group_by,
            warn_at,
            unknown: c.unknown_cost.unwrap_or_default(),
        }))
    },
};

/// A budget period.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
    Rolling(Duration),
}

/// A budget's period, grouping or time zone that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BudgetError {
    #[error("period {0:?} is not day, week, month or a duration like \"30d\"")]
    Period(String),
    #[error("period {0:?}: {1}")]
    PeriodOutOfRange(String, crate::model::RangeError),
    #[error("group_by {0:?} is not account, model or metadata.KEY")]
    GroupBy(String),
    #[error("timezone {0:?} is not an IANA time zone like \"Europe/Berlin\"")]
    Timezone(String),
}

impl Period {
    pub fn parse(s: &str) -> Result<Self, BudgetError> {
        match s {
            "day" => Ok(Self::Day),
            "week" => Ok(Self::Week),
            "month" => Ok(Self::Month),
            other => humantime::parse_duration(other)
                .map_err(|_| BudgetError::Period(other.to_owned()))
                .and_then(|d| {
                    crate::model::bounded_duration(d)
                        .map_err(|e| BudgetError::PeriodOutOfRange(other.to_owned(), e))
                })
                .map(Self::Rolling),
        }
    }

    fn describe(self) -> String {
        match self {
            Self::Day => "today".into(),
            Self::Week => "this week".into(),
            Self::Month => "this month".into(),
            Self::Rolling(d) => format!("in the last {}", humantime::format_duration(d)),
        }
    }
}

/// How jobs are grouped for a budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupBy {
    All,
    Account,
    Model,
    Metadata(String),
}

impl GroupBy {
    pub fn parse(s: Option<&str>) -> Result<Self, BudgetError> {
        match s {
            None | Some("all") => Ok(Self::All),
            Some("account") => Ok(Self::Account),
            Some("model") => Ok(Self::Model),
            Some(other) => match other.strip_prefix("metadata.") {
                Some(k) if !k.is_empty() => Ok(Self::Metadata(k.to_owned())),
                _ => Err(BudgetError::GroupBy(other.to_owned())),
            },
        }
    }
}

/// The group a job belongs to (borrowed: evaluation over 100k jobs allocates nothing here).
pub fn group_key<'a>(g: &GroupBy, v: &JobView<'a>) -> &'a str {
    match g {
        GroupBy::All => "all",
        GroupBy::Account => v.account,
        GroupBy::Model => v.job.model.as_str(),
        GroupBy::Metadata(k) => v.job.metadata.get(k).map_or("(none)", String::as_str),
    }
}

/// An IANA time zone by name ("Europe/Berlin"), from the system's zoneinfo or, when that is
/// missing, the copy built into ftguard.
pub fn parse_timezone(name: &str) -> Result<Tz, BudgetError> {
    Tz::get(name).map_err(|_| BudgetError::Timezone(name.to_owned()))
}

/// Start of the period containing `now`, as unix seconds (calendar periods in `tz`).
pub fn period_start(period: Period, tz: &Tz, now: i64) -> i64 {
    if let Period::Rolling(d) = period {
        return now.saturating_sub(crate::model::secs(d));
    }
    let Ok(utc) = jiff::Timestamp::from_second(now) else {
        return now;
    };
    let local = tz.to_datetime(utc).date();
    let day = match period {
        Period::Rolling(_) | Period::Day => local,
        Period::Week => local
            .checked_sub(jiff::Span::new().days(local.weekday().to_monday_zero_offset()))
            .unwrap_or(local),
        Period::Month => local.first_of_month(),
    };
    // Midnight may not exist on a DST change day: the period then starts when the day does
    // (the instant after the gap).
    day.to_zoned(tz.clone())
        .map_or(now, |t| t.timestamp().as_second())
}

/// Money of one group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Spend {
    /// Actual cost of finished jobs created in the period.
    pub spent: Usd,
    /// Projected cost of active jobs.
    pub projected: Usd,
    /// Jobs whose cost is unknown (not counted in the sums).
    pub unknown: u32,
}

impl Spend {
    pub fn total(&self) -> Usd {
        self.spent.saturating_add(self.projected)
    }
}

impl Spend {
    /// Adds another tally of the same group.
    pub fn absorb(&mut self, other: &Spend) {
        self.spent = self.spent.saturating_add(other.spent);
        self.projected = self.projected.saturating_add(other.projected);
        self.unknown = self.unknown.saturating_add(other.unknown);
    }
}

/// Spend per group name.
pub type GroupSpend = BTreeMap<String, Spend>;

/// Spend per group since `start`.
pub fn spend_by_group(jobs: &[JobView], start: i64, g: &GroupBy) -> GroupSpend {
    let mut tally = SpendTally::new(start, g.clone());
    for v in jobs {
        tally.add(v);
    }
    tally.finish()
}

/// [`spend_by_group`] one job at a time, for callers that stream jobs instead of holding
/// them all (`ftguard spend` over a large history).
#[derive(Debug)]
pub struct SpendTally {
    start: i64,
    group_by: GroupBy,
    groups: std::collections::HashMap<String, Spend>,
}

impl SpendTally {
    pub fn new(start: i64, group_by: GroupBy) -> Self {
        Self {
            start,
            group_by,
            groups: std::collections::HashMap::new(),
        }
    }

    /// Counts one job: finished jobs created since the period start as spent, active jobs
    /// (whenever created) as projected, jobs without a cost as unknown.
    pub fn add(&mut self, v: &JobView) {
        let terminal = v.job.status.is_terminal();
        if terminal && v.job.created_at < self.start {
            return;
        }
        let key = group_key(&self.group_by, v);
        if !self.groups.contains_key(key) {
            self.groups.insert(key.to_owned(), Spend::default());
        }
        let Some(s) = self.groups.get_mut(key) else {
            return;
        };
        let figure = if terminal {
            v.cost.actual
        } else {
            v.cost.best()
        };
        match figure {
            Some(c) if terminal => s.spent = s.spent.saturating_add(c),
            Some(c) => s.projected = s.projected.saturating_add(c),
            None => s.unknown = s.unknown.saturating_add(1),
        }
    }

    /// Spend per group, by group name.
    pub fn finish(self) -> GroupSpend {
        self.groups.into_iter().collect()
    }
}

/// What a budget measures, for `/metrics` and `spend`.
#[derive(Debug, Clone)]
pub struct BudgetSpec {
    pub limit: Usd,
    pub period: Period,
    pub tz: Tz,
    pub group_by: GroupBy,
}

impl BudgetSpec {
    /// Start of the current period.
    pub fn start(&self, now: i64) -> i64 {
        period_start(self.period, &self.tz, now)
    }
}

#[derive(Debug, Clone)]
struct Budget {
    limit: Usd,
    period: Period,
    tz: Tz,
    group_by: GroupBy,
    /// Ascending, no repeats.
    warn_at: Vec<f64>,
    unknown: UnknownCost,
}

impl Budget {
    fn notice(&self, group: &str, period_start: i64, percent: u32, reason: String) -> GroupNotice {
        GroupNotice {
            policy: String::new(),
            group: group.to_owned(),
            period_start,
            percent,
            reason,
        }
    }
}

impl Rule for Budget {
    fn evaluate(&self, _: &JobView, _: &EvalContext) -> Option<String> {
        None // a budget is about groups: see evaluate_set
    }
    fn evaluate_set(
        &self,
        jobs: &[JobView],
        ctx: &EvalContext,
        finished: &GroupSpend,
    ) -> SetOutcome {
        let start = period_start(self.period, &self.tz, ctx.now);
        let mut out = SetOutcome::default();
        let mut groups = spend_by_group(jobs, start, &self.group_by);
        for (group, spend) in finished {
            groups.entry(group.clone()).or_default().absorb(spend);
        }
        for (group, spend) in groups {
            let mut total = spend.total();
            for t in &self.warn_at {
                if total.0 as f64 >= self.limit.0 as f64 * t {
                    let pct = u32::try_from(crate::model::round_i64(t * 100.0)).unwrap_or(0);
                    out.notices.push(self.notice(
                        &group,
                        start,
                        pct,
                        format!(
                            "group {group} reached {pct}% of its {} budget {}: {total}",
                            self.limit,
                            self.period.describe()
                        ),
                    ));
                }
            }
            if total <= self.limit {
                continue;
            }
            let over = total;
            let mut active: Vec<(usize, &JobView)> = jobs
                .iter()
                .enumerate()
                .filter(|(_, v)| {
                    !v.job.status.is_terminal() && group_key(&self.group_by, v) == group
                })
                .collect();
            active.sort_by(|a, b| {
                b.1.job
                    .created_at
                    .cmp(&a.1.job.created_at)
                    .then(b.1.job.id.cmp(&a.1.job.id))
            });
            let label = if self.group_by == GroupBy::All {
                String::new()
            } else {
                format!(" {group}")
            };
            let active_in_group = active.len();
            let unknown_in_group = active
                .iter()
                .filter(|(_, v)| v.cost.best().is_none())
                .count();
            for (i, v) in active {
                if total <= self.limit {
                    break;
                }
                match v.cost.best() {
                    Some(c) => {
                        out.hits.push((
                            i,
                            format!("budget{label}: {total} > {} {}; newest first, this job projects {c}", self.limit, self.period.describe()),
                        ));
                        total.0 -= c.0;
                    }
                    None if v.cost.no_price && self.unknown == UnknownCost::Cancel => {
                        out.hits.push((
                            i,
                            format!("budget{label}: {total} > {} {}; cost of this job unknown and unknown_cost = \"cancel\"", self.limit, self.period.describe()),
                        ));
                    }
                    None => {}
                }
            }
            // Still over whatever is done to its active jobs (spent by jobs that finished,
            // or by jobs whose cost is unknown): nothing left to cancel, so it is said, once
            // per period, as 100% (unless warn_at = 1.0 said so already).
            if total > self.limit && !self.warn_at.contains(&1.0) {
                let left = if active_in_group == 0 {
                    "with no active job to act on".to_owned()
                } else if unknown_in_group == active_in_group {
                    format!(
                        "and the cost of its {} is unknown",
                        count(active_in_group as u64, "active job", "active jobs")
                    )
                } else {
                    format!("still {total} after acting on every active job it can")
                };
                out.notices.push(self.notice(
                    &group,
                    start,
                    100,
                    format!(
                        "group {group} is over its {} budget {}: {over}, {left}",
                        self.limit,
                        self.period.describe()
                    ),
                ));
            }
        }
        out
    }
    fn lookback(&self, now: i64) -> Option<i64> {
        Some(period_start(self.period, &self.tz, now))
    }
    fn per_job(&self) -> bool {
        false
    }

    fn needs_finished_jobs(&self) -> bool {
        true
    }
    fn budget(&self) -> Option<BudgetSpec> {
        Some(BudgetSpec {
            limit: self.limit,
            period: self.period,
            tz: self.tz.clone(),
            group_by: self.group_by.clone(),
        })
    }
    fn needs_costs(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;
    use super::super::{Verdict, evaluate};
    use super::*;
    use crate::cost::JobCost;
    use crate::model::Job;
    use std::collections::HashMap;

    fn ts(s: &str) -> i64 {
        s.parse::<jiff::Timestamp>().unwrap().as_second()
    }

    #[test]
    fn period_boundaries() {
        let utc = &Tz::UTC;
        let berlin = &parse_timezone("Europe/Berlin").unwrap();
        let now = ts("2026-03-31T23:30:00Z");
        assert_eq!(
            period_start(Period::Month, utc, now),
            ts("2026-03-01T00:00:00Z")
        );
        // 01:30 in Berlin on April 1st: already the next month there.
        assert_eq!(
            period_start(Period::Month, berlin, now),
            ts("2026-04-01T00:00:00+02:00")
        );
        assert_eq!(
            period_start(Period::Day, berlin, now),
            ts("2026-04-01T00:00:00+02:00")
        );
        assert_eq!(
            period_start(Period::Day, utc, now),
            ts("2026-03-31T00:00:00Z")
        );
        // 2026-03-31 is a Tuesday.
        assert_eq!(
            period_start(Period::Week, utc, now),
            ts("2026-03-30T00:00:00Z")
        );
        assert_eq!(
            period_start(Period::Rolling(Duration::from_secs(30 * 86400)), utc, now),
            now - 30 * 86400
        );
        // Leap-year February end.
        assert_eq!(
            period_start(Period::Month, utc, ts("2028-02-29T12:00:00Z")),
            ts("2028-02-01T00:00:00Z")
        );
        // A DST day: Berlin's 2026-03-29 starts at 00:00 +01:00.
        assert_eq!(
            period_start(Period::Day, berlin, ts("2026-03-29T12:00:00Z")),
            ts("2026-03-29T00:00:00+01:00")
        );
        // Havana skips from 00:00 to 01:00 on 2026-03-08: the day starts at 01:00 -04:00.
        let havana = &parse_timezone("America/Havana").unwrap();
        assert_eq!(
            period_start(Period::Day, havana, ts("2026-03-08T12:00:00Z")),
            ts("2026-03-08T01:00:00-04:00")
        );
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err(),
            BudgetError::Timezone("Mars/Olympus".into())
        );
    }

    #[test]
    fn parsing() {
        assert_eq!(
            Period::parse("30d").unwrap(),
            Period::Rolling(Duration::from_secs(30 * 86400))
        );
        assert_eq!(
            Period::parse("fortnight").unwrap_err(),
            BudgetError::Period("fortnight".into())
        );
        assert!(matches!(
            Period::parse("1000y"),
            Err(BudgetError::PeriodOutOfRange(..))
        ));
        assert_eq!(
            GroupBy::parse(Some("metadata.team")).unwrap(),
            GroupBy::Metadata("team".into())
        );
        assert!(GroupBy::parse(Some("metadata.")).is_err());
        assert_eq!(
            GroupBy::parse(Some("user")).unwrap_err(),
            BudgetError::GroupBy("user".into())
        );
    }

    fn usd(d: f64) -> JobCost {
        JobCost {
            actual: Some(Usd::from_dollars(d)),
            projected: Some(Usd::from_dollars(d)),
            ..Default::default()
        }
    }

    /// One budget over these jobs at NOW, everything inline (no tallies, no marks).
    fn evaluate_one<'a>(
        views: &[JobView<'a>],
        p: &'a crate::policy::Policy,
    ) -> crate::policy::Evaluation<'a> {
        super::super::evaluate_with_spend(
            views,
            &HashMap::new(),
            NOW,
            std::slice::from_ref(p),
            &HashMap::new(),
            false,
        )
    }

    #[test]
    fn cancels_newest_first_until_within_the_limit() {
        let p =
            policy("name='b'\nkind='budget'\nlimit_usd=100.0\nperiod='month'\nwarn_at=[0.5,0.8]");
        let spent = job("spent", "succeeded", 3600);
        let older = job("older", "running", 1800);
        let newer = job("newer", "queued", 60);
        let (c90, c01, c18) = (usd(90.0), usd(0.10), usd(18.0));
        let views = [view(&spent, &c90), view(&older, &c01), view(&newer, &c18)];
        let found = evaluate_one(&views, &p);
        let d = &found.decisions;
        let acts: Vec<&str> = d.iter().map(|d| d.job_id.as_ref()).collect();
        assert_eq!(acts, ["newer"]);
        assert!(
            d[0].reason.contains("$108.10 > $100.00 this month"),
            "{}",
            d[0].reason
        );
        assert!(
            d.iter().all(|d| d.account == "prod"
                && d.verdict == Verdict::Act(crate::policy::ActionKind::Cancel))
        );
        let notices: Vec<(&str, &str, i64, u32)> = found
            .notices
            .iter()
            .map(|n| {
                (
                    n.policy.as_str(),
                    n.group.as_str(),
                    n.period_start,
                    n.percent,
                )
            })
            .collect();
        let start = period_start(Period::Month, &Tz::UTC, NOW);
        assert_eq!(
            notices,
            [("b", "all", start, 50), ("b", "all", start, 80)],
            "50% and 80% reached; cancelling the newest job brings it back within"
        );
        assert!(
            found.notices[1]
                .reason
                .contains("reached 80% of its $100.00 budget this month: $108.10")
        );
    }

    /// A group that stays over its limit whatever is done to its active jobs is notified, as
    /// 100% (once: warn_at = 1.0 already says it); one that acting brings back within is not.
    #[test]
    fn a_group_left_over_the_limit_is_notified() {
        let spent = job("spent", "succeeded", 3600);
        let active = job("active", "running", 60);
        for (warn_at, spent_usd, active_usd, expect) in [
            (
                "",
                130.0,
                None,
                vec![
                    "group all is over its $100.00 budget this month: $130.00, with no active job to act on",
                ],
            ),
            (
                "",
                105.0,
                Some(20.0),
                vec![
                    "group all is over its $100.00 budget this month: $125.00, still $105.00 after acting on every active job it can",
                ],
            ),
            ("", 95.0, Some(20.0), vec![]),
            (
                "",
                130.0,
                Some(f64::NAN),
                vec![
                    "group all is over its $100.00 budget this month: $130.00, and the cost of its 1 active job is unknown",
                ],
            ),
            (
                "\nwarn_at=[1.0]",
                130.0,
                None,
                vec!["group all reached 100% of its $100.00 budget this month: $130.00"],
            ),
            ("", 100.0, None, vec![]),
        ] {
            let p = policy(&format!(
                "name='b'\nkind='budget'\nlimit_usd=100.0\nperiod='month'{warn_at}"
            ));
            // NaN: an active job whose cost is unknown.
            let ac = match active_usd {
                Some(d) if d.is_nan() => JobCost::default(),
                d => usd(d.unwrap_or(0.0)),
            };
            let sc = usd(spent_usd);
            let mut views = vec![view(&spent, &sc)];
            if active_usd.is_some() {
                views.push(view(&active, &ac));
            }
            let found = evaluate_one(&views, &p);
            let reasons: Vec<&str> = found.notices.iter().map(|n| n.reason.as_str()).collect();
            assert_eq!(
                reasons, expect,
                "warn_at {warn_at:?}, ${spent_usd} + {active_usd:?}"
            );
            assert!(found.notices.iter().all(|n| n.percent == 100));
        }
    }

    #[test]
    fn groups_are_separate_and_old_spend_is_outside_the_period() {
        let p = policy(
            "name='b'\nkind='budget'\nlimit_usd=10.0\nperiod='1h'\ngroup_by='metadata.team'",
        );
        let mut a = job("a", "queued", 60);
        a.metadata.insert("team".into(), "x".into());
        let mut b = job("b", "queued", 60);
        b.metadata.insert("team".into(), "y".into());
        let old = job("old", "succeeded", 7200);
        let (c8, c8b, c50) = (usd(8.0), usd(8.0), usd(50.0));
        let views = [view(&a, &c8), view(&b, &c8b), view(&old, &c50)];
        assert!(
            evaluate(
                &views,
                NOW,
                std::slice::from_ref(&p),
                &HashMap::new(),
                false
            )
            .is_empty()
        );
        let g = spend_by_group(&views, NOW - 3600, &GroupBy::Metadata("team".into()));
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g["x"].projected, Usd::from_dollars(8.0));
    }

    /// The daemon streams finished jobs into `BudgetTallies` and evaluates only active ones;
    /// that must decide exactly what evaluating everything at once decides.
    #[test]
    fn tallied_finished_spend_decides_like_finished_jobs_inline() {
        use super::super::{BudgetTallies, evaluate_with_spend};
        let cases = [
            // (policy, finished jobs (id, team, dollars, age), active jobs (id, team, dollars))
            (
                "name='b'\nkind='budget'\nlimit_usd=100.0\nperiod='month'\nwarn_at=[0.5]",
                vec![("f1", "x", 60.0, 3600), ("f2", "y", 30.0, 7200)],
                vec![("a1", "x", 5.0), ("a2", "y", 9.0)],
            ),
            (
                "name='b'\nkind='budget'\nlimit_usd=10.0\nperiod='1h'\ngroup_by='metadata.team'",
                vec![("f1", "x", 8.0, 600), ("old", "x", 50.0, 7200)],
                vec![("a1", "x", 3.0), ("a2", "y", 3.0)],
            ),
            (
                "name='b'\nkind='budget'\nlimit_usd=10.0\nperiod='month'\nmatch={ metadata = { team = 'y' } }",
                vec![("f1", "x", 80.0, 600), ("f2", "y", 9.0, 600)],
                vec![("a1", "x", 3.0), ("a2", "y", 3.0)],
            ),
        ];
        for (i, (text, finished, active)) in cases.into_iter().enumerate() {
            let p = policy(text);
            let policies = std::slice::from_ref(&p);
            let with_team = |id: &str, status: &str, age: i64, team: &str| {
                let mut j = job(id, status, age);
                j.metadata.insert("team".into(), team.into());
                j
            };
            let fin: Vec<(Job, JobCost)> = finished
                .iter()
                .map(|(id, t, d, age)| (with_team(id, "succeeded", *age, t), usd(*d)))
                .collect();
            let act: Vec<(Job, JobCost)> = active
                .iter()
                .map(|(id, t, d)| (with_team(id, "running", 60, t), usd(*d)))
                .collect();
            let all: Vec<JobView> = fin.iter().chain(&act).map(|(j, c)| view(j, c)).collect();
            let inline =
                evaluate_with_spend(&all, &HashMap::new(), NOW, policies, &HashMap::new(), false);

            let mut tallies = BudgetTallies::new(policies, NOW);
            for (j, c) in &fin {
                tallies.add(&view(j, c));
            }
            let only_active: Vec<JobView> = act.iter().map(|(j, c)| view(j, c)).collect();
            let tallied = evaluate_with_spend(
                &only_active,
                &tallies.finish(),
                NOW,
                policies,
                &HashMap::new(),
                false,
            );
            let show = |e: &crate::policy::Evaluation| -> Vec<String> {
                e.decisions
                    .iter()
                    .map(|d| format!("{} {} {}", d.job_id, d.policy, d.reason))
                    .chain(e.notices.iter().map(|n| format!("{n:?}")))
                    .collect()
            };
            assert!(!show(&inline).is_empty(), "case {i} decides something");
            assert_eq!(show(&tallied), show(&inline), "case {i}");
        }
    }
}
