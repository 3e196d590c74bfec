//! Replaying a budget: the jobs' lives merged in time order. Spend accumulates as jobs finish
//! (a job the budget stopped counts what it cost until then), periods roll over, and at each
//! moment a group could be over its limit — a job created, a job finished, a grace period
//! ending, at a run of the policy's own schedule — the budget decides over the active jobs as
//! a pass would: newest first until the group is back within its limit.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};

use super::life::Life;
use crate::cost::pricing::PriceTable;
use crate::model::{GraceKey, Job, Usd};
use crate::policy::{self, BudgetSpec, GroupSpend, JobView, Policy, Verdict};

const FINISH: u8 = 0;
const CREATE: u8 = 1;

/// The budget's running state over the merged lives.
struct State<'l> {
    lives: &'l [Life],
    spec: BudgetSpec,
    /// Active jobs the policy matches: their group and the most they project over their life.
    active: HashMap<usize, (String, Usd)>,
    by_group: HashMap<String, BTreeSet<usize>>,
    /// The active jobs' snapshots ([`Life::snapshots`]), while they are active.
    snapshots: HashMap<usize, Vec<Job>>,
    /// Sum of the active jobs' largest projections per group (i128: never saturates, so it
    /// can be taken back exactly).
    bound: HashMap<String, i128>,
    /// Finished jobs counted in the period, by creation time: they leave as the period moves.
    counted: BTreeMap<(i64, usize), (String, Option<Usd>)>,
    /// Their spend per group, as a pass gets it (see `policy::evaluate_with_spend`).
    finished: HashMap<String, GroupSpend>,
    name: String,
}

impl State<'_> {
    fn spend(&mut self) -> &mut GroupSpend {
        self.finished.entry(self.name.clone()).or_default()
    }

    fn activate(&mut self, i: usize, group: String, bound: Usd) {
        *self.bound.entry(group.clone()).or_default() += i128::from(bound.0);
        self.by_group.entry(group.clone()).or_default().insert(i);
        if let Some(l) = self.lives.get(i) {
            self.snapshots.insert(i, l.snapshots());
        }
        self.active.insert(i, (group, bound));
    }

    /// Takes a job out of the active ones; counts what it cost when created in the period.
    fn finish(&mut self, i: usize, cost: Option<Usd>, period_start: i64) {
        let Some((group, bound)) = self.active.remove(&i) else {
            return;
        };
        *self.bound.entry(group.clone()).or_default() -= i128::from(bound.0);
        self.snapshots.remove(&i);
        if let Some(set) = self.by_group.get_mut(&group) {
            set.remove(&i);
        }
        let created = self.lives.get(i).map_or(i64::MIN, |l| l.job.created_at);
        if created < period_start {
            return;
        }
        let s = self.spend().entry(group.clone()).or_default();
        match cost {
            Some(c) => s.spent = s.spent.saturating_add(c),
            None => s.unknown = s.unknown.saturating_add(1),
        }
        self.counted.insert((created, i), (group, cost));
    }

    /// Finished jobs created before the period's start no longer count.
    fn roll(&mut self, period_start: i64) {
        while let Some(e) = self.counted.first_entry() {
            if e.key().0 >= period_start {
                break;
            }
            let (group, cost) = e.remove();
            let s = self.spend().entry(group).or_default();
            match cost {
                Some(c) => s.spent = Usd(s.spent.0.saturating_sub(c.0)),
                None => s.unknown = s.unknown.saturating_sub(1),
            }
        }
    }

    /// Groups that may be over the limit: finished spend plus the most their active jobs
    /// project. Only there can the budget act; elsewhere evaluating would find nothing.
    fn maybe_over(&self) -> Vec<String> {
        let limit = i128::from(self.spec.limit.0);
        let spend = self.finished.get(&self.name);
        self.bound
            .iter()
            .filter(|(g, b)| {
                let spent = spend
                    .and_then(|s| s.get(*g))
                    .map_or(0, |s| i128::from(s.spent.0));
                spent + **b > limit
            })
            .map(|(g, _)| g.clone())
            .collect()
    }
}

/// The jobs the budget would have acted on: (index into `lives`, when, why), for moments from
/// `since` to `now`. Jobs created before `since` (still in the period) count and may be acted
/// on; the caller reports the window's.
pub fn actions(
    lives: &[Life],
    policy: &Policy,
    spec: BudgetSpec,
    prices: &PriceTable,
    since: i64,
    now: i64,
) -> Vec<(usize, i64, String)> {
    let policies = std::slice::from_ref(policy);
    let mut events: Vec<(i64, u8, usize)> = Vec::with_capacity(lives.len().saturating_mul(2));
    // Each job's group and the most it projects over its life (projections only grow, with
    // the hours of jobs priced by the hour).
    let mut groups: Vec<Option<(String, Usd)>> = Vec::with_capacity(lives.len());
    for (i, l) in lives.iter().enumerate() {
        let snapshots = l.snapshots();
        let (Some(first), Some(last)) = (snapshots.first(), snapshots.last()) else {
            groups.push(None);
            continue;
        };
        let cost = l.cost_at(first, prices, l.job.created_at);
        let v = JobView {
            account: &l.account,
            job: first,
            last_step_at: None,
            steps_checked_at: None,
            curves: None,
            cost: &cost,
        };
        if !policy.matcher.matches(&v) || policy.exempt.exempts(&v) || l.job.created_at > now {
            groups.push(None);
            continue;
        }
        let late = l.cost_at(last, prices, l.end.unwrap_or(now));
        let bound = cost.best().max(late.best()).unwrap_or(Usd(0));
        groups.push(Some((
            policy::group_key(&spec.group_by, &v).to_owned(),
            bound,
        )));
        events.push((l.job.created_at, CREATE, i));
        if let Some(e) = l.end {
            events.push((e, FINISH, i));
        }
    }
    events.sort_unstable();
    let index: HashMap<(&str, &str), usize> = lives
        .iter()
        .enumerate()
        .map(|(i, l)| ((l.account.as_str(), l.job.id.as_str()), i))
        .collect();
    let mut state = State {
        lives,
        spec,
        active: HashMap::new(),
        by_group: HashMap::new(),
        snapshots: HashMap::new(),
        bound: HashMap::new(),
        counted: BTreeMap::new(),
        finished: HashMap::new(),
        name: policy.name.clone(),
    };
    let mut marks: HashMap<GraceKey, i64> = HashMap::new();
    let mut marked: HashSet<usize> = HashSet::new();
    let mut stopped: HashSet<usize> = HashSet::new();
    // A notify policy notifies once and leaves the job running: it goes on counting.
    let notify_only = policy.action == crate::policy::ActionKind::Notify;
    let mut notified: HashSet<usize> = HashSet::new();
    let mut wakes: BinaryHeap<Reverse<i64>> = BinaryHeap::new();
    let mut out = Vec::new();
    let mut e = 0;
    loop {
        let next_event = events.get(e).map(|x| x.0);
        let next_wake = wakes.peek().map(|w| w.0);
        let Some(t) = [next_event, next_wake].into_iter().flatten().min() else {
            break;
        };
        if t > now {
            break;
        }
        while wakes.peek().is_some_and(|w| w.0 <= t) {
            wakes.pop();
        }
        let start = state.spec.start(t);
        while let Some(&(et, kind, i)) = events.get(e) {
            if et != t {
                break;
            }
            e += 1;
            if kind == FINISH {
                state.finish(i, lives[i].cost.actual, start);
            } else if let Some(Some((g, b))) = groups.get(i)
                && !stopped.contains(&i)
            {
                state.activate(i, g.clone(), *b);
            }
        }
        state.roll(start);
        if t < since {
            continue;
        }
        if let Some(s) = &policy.schedule
            && s.next_after(t.saturating_sub(1)) != Some(t)
        {
            if let Some(n) = s.next_after(t) {
                wakes.push(Reverse(n));
            }
            continue;
        }
        let over = state.maybe_over();
        if over.is_empty() && marked.is_empty() {
            continue;
        }
        let mut ids: BTreeSet<usize> = marked.iter().copied().collect();
        for g in &over {
            ids.extend(state.by_group.get(g).into_iter().flatten().copied());
        }
        let mut costs = Vec::with_capacity(ids.len());
        let mut jobs = Vec::with_capacity(ids.len());
        for &i in &ids {
            let job = lives[i]
                .phase_at(t, now)
                .and_then(|k| state.snapshots.get(&i)?.get(k));
            if let Some(job) = job {
                costs.push(lives[i].cost_at(job, prices, t));
                jobs.push((i, job));
            }
        }
        let views: Vec<JobView> = jobs
            .iter()
            .zip(&costs)
            .map(|((i, job), cost)| JobView {
                account: &lives[*i].account,
                job,
                last_step_at: None,
                steps_checked_at: None,
                curves: None,
                cost,
            })
            .collect();
        let decisions: Vec<(usize, Verdict, String)> =
            policy::evaluate_with_spend(&views, &state.finished, t, policies, &marks, false)
                .decisions
                .into_iter()
                .filter_map(|d| {
                    let i = *index.get(&(d.account.as_ref(), d.job_id.as_ref()))?;
                    (!notified.contains(&i)).then_some((i, d.verdict, d.reason))
                })
                .collect();
        drop(views);
        for (i, verdict, reason) in decisions {
            let key = (
                lives[i].account.clone(),
                lives[i].job.id.as_str().to_owned(),
                policy.name.clone(),
            );
            match verdict {
                Verdict::Act(_) if notify_only => {
                    marks.remove(&key);
                    marked.remove(&i);
                    notified.insert(i);
                    out.push((i, t, reason));
                }
                Verdict::Act(_) => {
                    marks.remove(&key);
                    marked.remove(&i);
                    stopped.insert(i);
                    // What it cost until stopped counts in the group from now on.
                    let cost = lives[i]
                        .cost
                        .actual
                        .map(|c| Usd(c.0.saturating_sub(lives[i].saved_if_stopped(t, now).0)));
                    state.finish(i, cost, start);
                    out.push((i, t, reason));
                }
                Verdict::Warn { until } => {
                    marks.insert(key, t);
                    marked.insert(i);
                    wakes.push(Reverse(until));
                }
                Verdict::Clear => {
                    marks.remove(&key);
                    marked.remove(&i);
                }
            }
        }
        // A job that finished while in grace leaves it.
        marked.retain(|i| state.active.contains_key(i));
        marks.retain(|(a, j, _), _| {
            index
                .get(&(a.as_str(), j.as_str()))
                .is_some_and(|i| marked.contains(i))
        });
    }
    out
}
