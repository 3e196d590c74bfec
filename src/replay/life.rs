//! A stored job's life as replay walks it: the statuses it went through and when, what it
//! looked like at any moment of it, what it cost, and what stopping it at a moment would have
//! saved.

use crate::cost::pricing::PriceTable;
use crate::cost::{self, FileTokens, JobCost};
use crate::model::metrics::StepMetrics;
use crate::model::{Job, JobStatus, Usd};

/// One status a job held from `from` until the next phase (or its end).
#[derive(Debug, Clone)]
pub struct Phase {
    pub from: i64,
    pub status: JobStatus,
}

/// A job as stored, with its status changes: what [`Life::new`] rebuilds a life from.
#[derive(Debug, Clone)]
pub struct Stored {
    pub account: String,
    /// The job as last stored (its final status, `finished_at`, trained tokens).
    pub job: Job,
    pub first_seen_at: i64,
    /// When the API said it no longer knows the job.
    pub gone_at: Option<i64>,
    /// Status changes ftguard observed: (observed at, new status), oldest first. The status it
    /// was first seen in is `first_status`.
    pub first_status: String,
    pub changes: Vec<(i64, String)>,
    /// Its training file's count, when counted.
    pub file: Option<FileTokens>,
    /// Its stored training metrics, each with when it was reported, in step order (empty when
    /// none were read).
    pub metrics: Vec<(i64, StepMetrics)>,
}

/// A job's life, from its creation to its end (or to now, while it is active).
#[derive(Debug, Clone)]
pub struct Life {
    pub account: String,
    /// The job as last stored.
    pub job: Job,
    /// What it cost in the end (or so far, while active).
    pub cost: JobCost,
    /// Oldest first; the first starts at `created_at`.
    pub phases: Vec<Phase>,
    /// When it stopped: finished (`finished_at`, else when ftguard saw it finished) or gone.
    /// None while active.
    pub end: Option<i64>,
    /// When it started training: its change to `running` when stored, else `created_at`.
    pub training_start: i64,
    /// Its training metrics as reported: (reported at, values), in step order.
    pub metrics: Vec<(i64, StepMetrics)>,
    file: Option<FileTokens>,
}

impl Life {
    /// Rebuilds a life. A job first seen finished (a first sync of old history) is taken as
    /// running from its creation to its `finished_at`: nothing else about it is known.
    pub fn new(stored: Stored, prices: &PriceTable, now: i64) -> Self {
        let Stored {
            account,
            job,
            first_seen_at: _,
            gone_at,
            first_status,
            changes,
            file,
            metrics,
        } = stored;
        let created = job.created_at;
        let first = JobStatus::parse(&first_status);
        let mut statuses: Vec<(i64, JobStatus)> = Vec::new();
        let mut seen_finished: Option<i64> = None;
        if first.is_terminal() {
            statuses.push((created, JobStatus::Running));
        } else {
            statuses.push((created, first));
            for (at, to) in changes {
                let last = statuses.last().map_or(created, |s| s.0);
                let at = at.max(last);
                let to = JobStatus::parse(&to);
                if to.is_terminal() {
                    seen_finished.get_or_insert(at);
                } else {
                    // Left a finished status again (the API corrected itself): the life goes on.
                    seen_finished = None;
                    statuses.push((at, to));
                }
            }
        }
        let last_start = statuses.last().map_or(created, |s| s.0);
        let end = if job.status.is_terminal() {
            Some(
                job.finished_at
                    .or(seen_finished)
                    .unwrap_or(last_start)
                    .max(last_start),
            )
        } else {
            gone_at.map(|g| g.max(last_start))
        };
        let training_start = statuses
            .iter()
            .find(|(_, s)| *s == JobStatus::Running)
            .map_or(created, |(t, _)| *t);
        let phases = statuses
            .into_iter()
            .map(|(from, status)| Phase { from, status })
            .collect();
        let cost = cost::job_cost(&job, file.as_ref(), prices, end.unwrap_or(now));
        Self {
            account,
            job,
            cost,
            phases,
            end,
            training_start,
            metrics,
            file,
        }
    }

    /// The phase the job was in at `t` (its index), or None before its creation, from its end
    /// on, and after `now`.
    pub fn phase_at(&self, t: i64, now: i64) -> Option<usize> {
        if t > now || self.end.is_some_and(|e| t >= e) {
            return None;
        }
        self.phases.partition_point(|p| p.from <= t).checked_sub(1)
    }

    /// The job as it stood in each phase: its status then, not yet finished, no trained tokens
    /// reported; `estimated_finish` (only its last stored value is known) while running. Built
    /// when the life is replayed, not kept: a history of 100,000 jobs holds each job once.
    pub fn snapshots(&self) -> Vec<Job> {
        self.phases
            .iter()
            .map(|p| {
                let running = p.status == JobStatus::Running;
                Job {
                    status: p.status.clone(),
                    finished_at: None,
                    trained_tokens: None,
                    fine_tuned_model: None,
                    error: None,
                    estimated_finish: self.job.estimated_finish.filter(|_| running),
                    ..self.job.clone()
                }
            })
            .collect()
    }

    /// When phase `i` ended: the next phase's start, or the job's end.
    pub fn phase_end(&self, i: usize) -> Option<i64> {
        self.phases
            .get(i.saturating_add(1))
            .map(|p| p.from)
            .or(self.end)
    }

    /// What the job looked like it would cost at `t`, as `snapshot` (its phase then, from
    /// [`Life::snapshots`]): its projection then (from
    /// its counted training file, or by the hour). Where nothing projected it (the file never
    /// counted), what it did cost in the end stands in: had ftguard watched, it would have
    /// counted the file.
    pub fn cost_at(&self, snapshot: &Job, prices: &PriceTable, t: i64) -> JobCost {
        let mut c = cost::job_cost(snapshot, self.file.as_ref(), prices, t);
        if c.projected.is_none() && self.job.status.is_terminal() && self.cost.actual.is_some() {
            c.projected = self.cost.actual;
            c.unknown = None;
        }
        c
    }

    /// What stopping the job at training step `step` would have saved, of the `total` steps it
    /// trained: its actual cost times the share of those after `step` (where metrics are
    /// stored, steps tell better than time).
    pub fn saved_if_stopped_at_step(&self, step: i64, total: i64) -> Usd {
        let Some(cost) = self.cost.actual.filter(|c| c.0 > 0) else {
            return Usd(0);
        };
        if total <= 0 || step >= total {
            return Usd(0);
        }
        let left = i128::from(total) - i128::from(step.max(0));
        Usd(i64::try_from(i128::from(cost.0) * left / i128::from(total)).unwrap_or(cost.0))
    }

    /// What stopping the job at `at` would have saved: its actual cost times the share of its
    /// training after `at`, training taken as spread evenly from `training_start` to its end
    /// (now, while active). Stopped before training started, the whole cost; unknown cost, none.
    pub fn saved_if_stopped(&self, at: i64, now: i64) -> Usd {
        let Some(cost) = self.cost.actual.filter(|c| c.0 > 0) else {
            return Usd(0);
        };
        let end = self.end.unwrap_or(now);
        if at <= self.training_start {
            return cost;
        }
        if at >= end {
            return Usd(0);
        }
        let span = i128::from(end) - i128::from(self.training_start);
        let after = i128::from(end) - i128::from(at);
        Usd(i64::try_from(i128::from(cost.0) * after / span).unwrap_or(cost.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testkit::{NOW, job};

    const H: i64 = 3600;

    fn stored(job: Job, first: &str, changes: &[(i64, &str)]) -> Stored {
        Stored {
            account: "prod".into(),
            first_seen_at: job.created_at,
            job,
            gone_at: None,
            first_status: first.into(),
            changes: changes.iter().map(|(t, s)| (*t, (*s).to_owned())).collect(),
            file: None,
            metrics: Vec::new(),
        }
    }

    #[test]
    fn a_watched_life_has_its_phases_and_a_history_one_runs_from_creation() {
        let mut j = job("a", "succeeded", 10 * H);
        let c = j.created_at;
        j.finished_at = Some(c + 9 * H);
        j.trained_tokens = Some(1_000_000);
        let watched = Life::new(
            stored(
                j.clone(),
                "queued",
                &[(c + H, "running"), (c + 9 * H + 30, "succeeded")],
            ),
            &PriceTable::default(),
            NOW,
        );
        let statuses: Vec<(i64, &str)> = watched
            .phases
            .iter()
            .map(|p| (p.from - c, p.status.as_str()))
            .collect();
        assert_eq!(statuses, [(0, "queued"), (H, "running")]);
        assert_eq!(
            watched.end,
            Some(c + 9 * H),
            "finished_at, not when it was seen"
        );
        assert_eq!(watched.training_start, c + H);
        assert_eq!(watched.phase_at(c + 2 * H, NOW), Some(1));
        assert!(watched.phase_at(c + 9 * H, NOW).is_none(), "ended");
        assert!(watched.phase_at(c - 1, NOW).is_none(), "not yet created");
        // $3.00 trained (gpt-4o-mini); stopped 2 h into 8 h of training: 6/8 saved.
        assert_eq!(watched.saved_if_stopped(c + 3 * H, NOW), Usd(2_250_000));
        assert_eq!(watched.saved_if_stopped(c + H, NOW), Usd(3_000_000));
        assert_eq!(watched.saved_if_stopped(c + 9 * H, NOW), Usd(0));

        let history = Life::new(stored(j, "succeeded", &[]), &PriceTable::default(), NOW);
        assert_eq!(history.phases.len(), 1);
        assert_eq!(history.phases[0].status, JobStatus::Running);
        assert_eq!(history.training_start, c);
        assert_eq!(history.saved_if_stopped(c + 3 * H, NOW), Usd(2_000_000));
    }

    #[test]
    fn an_active_job_lives_until_now_and_hostile_times_stay_in_order() {
        let j = job("a", "running", 4 * H);
        let c = j.created_at;
        // A change observed before the creation time (clocks): clamped, never out of order.
        let life = Life::new(
            stored(j, "queued", &[(c - 100, "running")]),
            &PriceTable::default(),
            NOW,
        );
        assert_eq!(life.end, None);
        assert!(life.phases.windows(2).all(|w| w[0].from <= w[1].from));
        assert!(life.phase_at(NOW, NOW).is_some());
        assert!(life.phase_at(NOW + 1, NOW).is_none());
        assert_eq!(life.saved_if_stopped(c, NOW), Usd(0), "no cost known yet");
    }
}
