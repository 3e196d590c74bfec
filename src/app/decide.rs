//! The evaluate step of a pass: stored jobs with their costs into decisions, with the spend of
//! finished jobs kept between passes (a budget pass reads the active jobs, not the period), and
//! the next moment a time limit is crossed (the daemon's deadline timer).

use crate::model::{Crossing, JobRef};
use std::collections::HashMap;

use super::*;

/// Per set of budget policies and their period starts: the store's history mark and number of
/// counted files it was computed at, and the spend of finished jobs per policy.
pub(super) type FinishedCache =
    HashMap<Vec<(String, i64)>, (FinishedMark, HashMap<String, GroupSpend>)>;

/// What finished jobs' spend depends on besides the period: see [`App::active_and_finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct FinishedMark {
    history: HistoryMark,
    files: usize,
}

/// At most this many jobs finishing between two passes are added to the kept spend; more are
/// counted again from scratch (reading them one by one would cost more than the period).
const FINISHED_DELTA_LIMIT: usize = 500;

/// Active jobs evaluated at a time when every policy decides each job on its own.
const CHUNK: usize = 500;

impl App {
    /// Evaluates the given policies over the stored jobs they need. Pure apart from reading.
    pub async fn decide(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<Evaluation<'static>, StoreError> {
        if policies.iter().all(|p| p.rule.per_job()) {
            return self.decide_in_chunks(policies, now).await;
        }
        let (jobs, finished) = self.active_and_finished(policies, now).await?;
        let marks = self.store.grace_marks().await?;
        let curves = self.running_curves(policies).await?;
        let mut views = views(&jobs);
        training::attach(&mut views, &curves);
        let span =
            tracing::info_span!("policy_pass", policies = policies.len(), jobs = views.len());
        let _g = span.enter();
        let evaluation = policy::evaluate_with_spend(
            &views,
            &finished,
            now,
            policies,
            &marks,
            self.config.dry_run,
        )
        .into_owned();
        drop(views);
        self.keep_curves(curves);
        Ok(evaluation)
    }

    /// [`App::decide`] when every policy decides each job on its own: the active jobs are
    /// evaluated [`CHUNK`] at a time as they are read, so a pass over thousands of active jobs
    /// (hundreds of accounts) holds a chunk of them, not all. Each job's decisions stay together
    /// and in policy order, as in one evaluation; jobs come newest first.
    async fn decide_in_chunks(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<Evaluation<'static>, StoreError> {
        let files = self.store.file_tokens().await?;
        let marks = self.store.grace_marks().await?;
        let curves = self.running_curves(policies).await?;
        let no_spend = HashMap::new();
        let span = tracing::info_span!("policy_pass", policies = policies.len());
        let mut out = Evaluation {
            decisions: Vec::new(),
            notices: Vec::new(),
        };
        let mut chunk: Vec<(StoredJob, JobCost)> = Vec::with_capacity(CHUNK);
        let mut evaluate = |chunk: &mut Vec<(StoredJob, JobCost)>| {
            let _g = span.enter();
            let mut views = views(chunk);
            training::attach(&mut views, &curves);
            let e = policy::evaluate_with_spend(
                &views,
                &no_spend,
                now,
                policies,
                &marks,
                self.config.dry_run,
            )
            .into_owned();
            out.decisions.extend(e.decisions);
            out.notices.extend(e.notices);
            drop(views);
            chunk.clear();
        };
        self.store
            .for_each_job(&JobFilter::active(), |j| {
                let cost = self.cost_with(&files, &j, now);
                chunk.push((j, cost));
                if chunk.len() == CHUNK {
                    evaluate(&mut chunk);
                }
            })
            .await?;
        if !chunk.is_empty() {
            evaluate(&mut chunk);
        }
        self.keep_curves(curves);
        Ok(out)
    }

    /// Active jobs with their costs, and the spend of finished jobs of the budget periods per
    /// budget policy. Finished jobs are streamed into tallies, never held, and their spend is
    /// kept: while the store's history mark ([`Store::history_mark`]), the number of counted
    /// files and the periods stay the same, a pass or a scrape reads only the active jobs.
    /// When the mark moved only because some jobs finished (or were first stored finished),
    /// just those are read and added; anything else (a job leaving a finished status, a
    /// finished job rewritten, a file counted, many jobs at once) counts the period again.
    pub async fn active_and_finished(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<(Vec<(StoredJob, JobCost)>, HashMap<String, GroupSpend>), StoreError> {
        let files = self.store.file_tokens().await?;
        let periods = BudgetTallies::periods(policies, now);
        if periods.is_empty() {
            // No budget: nothing finished is needed, and nothing to keep.
            return Ok((self.active_with_costs(&files, now).await?, HashMap::new()));
        }
        let mark = FinishedMark {
            history: self.store.history_mark().await?,
            files: files.len(),
        };
        let kept = self
            .finished
            .lock()
            .ok()
            .and_then(|c| c.get(&periods).cloned());
        if let Some((at, mut spend)) = kept {
            let added = if at == mark {
                Some(Vec::new())
            } else if at.files == mark.files {
                self.store
                    .finished_between(at.history, mark.history, FINISHED_DELTA_LIMIT)
                    .await?
            } else {
                None
            };
            if let Some(finished) = added {
                if !finished.is_empty() {
                    let mut tallies = BudgetTallies::new(policies, now);
                    for j in &finished {
                        tallies.add(&view(j, &self.cost_with(&files, j, now)));
                    }
                    absorb(&mut spend, tallies.finish());
                    self.keep_finished(periods, mark, &spend);
                }
                return Ok((self.active_with_costs(&files, now).await?, spend));
            }
        }
        // From scratch: active jobs and every finished job of the longest period, in one read.
        let filter = JobFilter {
            active_only: true,
            created_since: policy::lookback(policies, now),
            ..Default::default()
        };
        let mut tallies = BudgetTallies::new(policies, now);
        let mut jobs = Vec::with_capacity(self.store.active_hint(&JobFilter::active()).await?);
        self.store
            .for_each_job(&filter, |j| {
                let cost = self.cost_with(&files, &j, now);
                if j.job.status.is_terminal() {
                    tallies.add(&view(&j, &cost));
                } else {
                    jobs.push((j, cost));
                }
            })
            .await?;
        let spend = tallies.finish();
        // Kept only if nothing was written while reading (the read is not one snapshot): a job
        // finishing meanwhile could otherwise be counted now and again as "added" next time.
        if self.store.history_mark().await? == mark.history {
            self.keep_finished(periods, mark, &spend);
        }
        Ok((jobs, spend))
    }

    async fn active_with_costs(
        &self,
        files: &HashMap<FileKey, FileTokens>,
        now: i64,
    ) -> Result<Vec<(StoredJob, JobCost)>, StoreError> {
        let filter = JobFilter::active();
        let mut jobs = Vec::with_capacity(self.store.active_hint(&filter).await?);
        self.store
            .for_each_job(&filter, |j| {
                let cost = self.cost_with(files, &j, now);
                jobs.push((j, cost));
            })
            .await?;
        Ok(jobs)
    }

    fn keep_finished(
        &self,
        periods: Vec<(String, i64)>,
        mark: FinishedMark,
        spend: &HashMap<String, GroupSpend>,
    ) {
        if let Ok(mut c) = self.finished.lock() {
            // A handful of policy sets at most; old periods are dropped wholesale.
            if c.len() >= 8 && !c.contains_key(&periods) {
                c.clear();
            }
            c.insert(periods, (mark, spend.clone()));
        }
    }

    /// Spend per budget policy and group in the current periods: finished jobs (see
    /// [`App::active_and_finished`]) plus active ones. For the `/metrics` budget gauges.
    pub async fn budget_spend(&self, now: i64) -> Result<HashMap<String, GroupSpend>, StoreError> {
        let policies = &self.config.policies;
        let (active, mut spend) = self.active_and_finished(policies, now).await?;
        let mut tallies = BudgetTallies::new(policies, now);
        for (j, cost) in &active {
            tallies.add(&view(j, cost));
        }
        absorb(&mut spend, tallies.finish());
        Ok(spend)
    }

    /// The earliest upcoming crossing of a time-based limit (or end of a grace period) by an
    /// active job: every job due at that moment, which is what the deadline timer arms for.
    pub async fn next_crossings(&self, now: i64) -> Result<Vec<Crossing>, StoreError> {
        let policies = self.after_sync_policies();
        let marks = self.store.grace_marks().await?;
        // Read a chunk at a time, keeping only the earliest moment's crossings: the timer arms
        // for that one, and holding every active job's crossing would cost what chunks save.
        let mut earliest: Vec<Crossing> = Vec::new();
        let mut chunk: Vec<StoredJob> = Vec::with_capacity(CHUNK);
        let mut take = |chunk: &mut Vec<StoredJob>| {
            let views: Vec<JobView> = chunk.iter().map(|j| view(j, &cost::NO_COST)).collect();
            let found = policy::next_crossings(&views, now, &policies, &marks);
            drop(views);
            chunk.clear();
            let Some(first) = found.first().map(|c| c.at) else {
                return;
            };
            match earliest.first().map(|c| c.at) {
                Some(at) if at < first => return,
                Some(at) if at > first => earliest.clear(),
                _ => {}
            }
            earliest.extend(found.into_iter().take_while(|c| c.at == first));
        };
        self.store
            .for_each_job(&JobFilter::active(), |j| {
                chunk.push(j);
                if chunk.len() == CHUNK {
                    take(&mut chunk);
                }
            })
            .await?;
        if !chunk.is_empty() {
            take(&mut chunk);
        }
        earliest.sort();
        earliest.dedup();
        Ok(earliest)
    }

    /// A crossing came due: re-checks each job with one retrieve, then evaluates and enforces
    /// for those jobs only. Other violations wait for the next scheduled pass: jobs the circuit
    /// breaker held there are not cancelled by whichever job crosses a limit next.
    pub async fn on_deadline(&self, due: &[JobRef]) -> Result<PassReport, StoreError> {
        for JobRef {
            account,
            job_id: id,
        } in due
        {
            let Some(client) = self.client(account) else {
                continue;
            };
            match client.retrieve(id).await {
                Ok(job) => {
                    self.store
                        .upsert_jobs(client.account(), std::slice::from_ref(&job), time::now())
                        .await?;
                }
                Err(e) => {
                    tracing::warn!(account = %account, job_id = %id, error = %e, "deadline: could not re-check the job; deciding on stored state")
                }
            }
        }
        let evaluation = self
            .decide(&self.after_sync_policies(), time::now())
            .await?;
        let due: std::collections::HashSet<(&str, &str)> = due
            .iter()
            .map(|d| (d.account.as_str(), d.job_id.as_str()))
            .collect();
        // Budget notices wait for the next pass: a crossing is about its job.
        let decisions: Vec<Decision> = evaluation
            .decisions
            .into_iter()
            .filter(|d| due.contains(&(d.account.as_ref(), d.job_id.as_ref())))
            .collect();
        self.enforcer.run(&decisions).await
    }
}

/// Adds spend per policy and group into `into`.
fn absorb(into: &mut HashMap<String, GroupSpend>, more: HashMap<String, GroupSpend>) {
    for (policy, groups) in more {
        let into = into.entry(policy).or_default();
        for (group, s) in groups {
            into.entry(group).or_default().absorb(&s);
        }
    }
}
