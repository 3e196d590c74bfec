//! The application as the CLI and the daemon use it: configuration, store and clients built
//! once, and the three steps of a pass (sync, evaluate, enforce) as functions over them.

pub mod health;
mod metrics_snapshot;
mod pass;

pub use pass::{Counting, RunOnceError, run_once};

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::cost::tokens::Encoding;
use crate::cost::{self, FileTokens, JobCost};
use crate::enforce::{Enforcer, PassReport};
use crate::model::schedule::Schedule;
use crate::model::time;
use crate::policy::{self, BudgetTallies, Decision, Evaluation, GroupSpend, JobView, Policy};
use crate::provider::Client;
use crate::store::{FileKey, HistoryMark, JobFilter, Store, StoreError, StoredJob};
use crate::sync::{self, SyncError, SyncOptions, SyncSummary};

/// Everything a pass needs.
#[derive(Clone)]
pub struct App {
    config: Config,
    store: Store,
    clients: Vec<Client>,
    enforcer: Enforcer,
    /// Spend of finished jobs per set of budget policies (see [`App::active_and_finished`]).
    finished: Arc<Mutex<FinishedCache>>,
}

/// Per set of budget policies and their period starts: the store's history mark and number of
/// counted files it was computed at, and the spend of finished jobs per policy.
type FinishedCache = HashMap<Vec<(String, i64)>, (FinishedMark, HashMap<String, GroupSpend>)>;

/// What finished jobs' spend depends on besides the period: see [`App::active_and_finished`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FinishedMark {
    history: HistoryMark,
    files: usize,
}

/// At most this many jobs finishing between two passes are added to the kept spend; more are
/// counted again from scratch (reading them one by one would cost more than the period).
const FINISHED_DELTA_LIMIT: usize = 500;

/// How long after a failed fetch of a job's events they are asked for again.
const EVENTS_RETRY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Why the application could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] crate::provider::ProviderError),
}

impl App {
    /// Opens and migrates the store and builds a client per account.
    pub async fn build(config: Config) -> Result<Self, BuildError> {
        let store = Store::open(&config.database).await?;
        Self::with_store(config, store)
    }

    /// As [`App::build`], for commands that only read: the database must exist.
    pub async fn build_to_read(config: Config) -> Result<Self, BuildError> {
        let store = Store::open_existing(&config.database).await?;
        Self::with_store(config, store)
    }

    /// Builds around an open store (used on reload: same database, new configuration).
    pub fn with_store(config: Config, store: Store) -> Result<Self, BuildError> {
        let clients = config
            .accounts
            .iter()
            .cloned()
            .map(Client::new)
            .collect::<Result<Vec<_>, _>>()?;
        let enforcer = Enforcer {
            store: store.clone(),
            clients: clients
                .iter()
                .map(|c| (c.account().to_string(), c.clone()))
                .collect(),
            outbox: crate::notify::Outbox::new(
                config.notifiers.clone(),
                crate::notify::Deliveries::default(),
                Some(store.clone()),
            ),
            max_cancels_per_pass: config.max_cancels_per_pass,
            max_cancels_per_hour: config.max_cancels_per_hour,
        };
        Ok(Self {
            config,
            store,
            clients,
            enforcer,
            finished: Arc::default(),
        })
    }

    /// Hands the notices still being delivered by `from` (the configuration before a reload) to
    /// this one, so that one flush before exiting waits for them all.
    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The database.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// A client per configured account.
    pub fn clients(&self) -> &[Client] {
        &self.clients
    }

    /// A new App on this one's database with `config` (a reload), keeping the deliveries of
    /// notices in flight.
    pub fn reloaded(&self, config: Config) -> Result<App, BuildError> {
        let mut new = App::with_store(config, self.store.clone())?;
        new.keep_deliveries_of(self);
        Ok(new)
    }

    /// `ftguard cancel`: a manual cancel through the enforcement path, recorded as `manual`.
    pub async fn manual_cancel(
        &self,
        account: &str,
        job_id: &str,
        reason: &str,
    ) -> Result<crate::enforce::PassReport, StoreError> {
        self.enforcer.manual_cancel(account, job_id, reason).await
    }

    /// `ftguard resume`: see [`Enforcer::manual_resume`].
    pub async fn manual_resume(
        &self,
        account: &str,
        job_id: &str,
        reason: &str,
    ) -> Result<(Option<i64>, Option<crate::provider::ProviderError>), StoreError> {
        self.enforcer.manual_resume(account, job_id, reason).await
    }

    fn keep_deliveries_of(&mut self, from: &App) {
        self.enforcer.outbox = crate::notify::Outbox::new(
            self.config.notifiers.clone(),
            from.enforcer.outbox.deliveries().clone(),
            Some(self.store.clone()),
        );
    }

    /// Before a command exits: waits (up to `shutdown_timeout`) for its webhook notices still
    /// on their way.
    pub async fn flush_notices(&self) {
        self.enforcer
            .outbox
            .deliveries()
            .flush(self.config.shutdown_timeout)
            .await;
    }

    /// The client of a configured account.
    pub fn client(&self, account: &str) -> Option<&Client> {
        self.clients
            .iter()
            .find(|c| c.account().as_str() == account)
    }

    /// Syncs every account.
    pub async fn sync(&self) -> Vec<(String, Result<SyncSummary, SyncError>)> {
        self.sync_with(false).await
    }

    /// Syncs every account; `full` lists every job instead of paging to the boundary.
    pub async fn sync_with(&self, full: bool) -> Vec<(String, Result<SyncSummary, SyncError>)> {
        let opts = SyncOptions {
            full,
            full_every: self.config.full_sync_every,
        };
        let mut results = sync::sync_all(&self.clients, &self.store, opts).await;
        if let Err(e) = self.refresh_steps(&mut results).await {
            tracing::warn!(error = %e, "could not choose the jobs whose events to fetch");
        }
        if let Err(e) = self.store.prune_grace_marks().await {
            tracing::warn!(error = %e, "could not prune grace marks of ended jobs");
        }
        if let Err(e) = self.store.prune_events_failures().await {
            tracing::warn!(error = %e, "could not prune events failures of ended jobs");
        }
        results
    }

    /// Fetches the events of the running jobs a policy would act on from stored steps (and only
    /// those), so decisions rest on fresh evidence; failures become warnings of the account.
    async fn refresh_steps(
        &self,
        results: &mut [(String, Result<SyncSummary, SyncError>)],
    ) -> Result<(), StoreError> {
        if !policy::needs_events(&self.config.policies) {
            return Ok(());
        }
        let jobs = self.store.jobs(&JobFilter::active()).await?;
        let views: Vec<JobView> = jobs.iter().map(|j| view(j, &cost::NO_COST)).collect();
        let now = time::now();
        let wanted = policy::events_wanted(&views, now, &self.config.policies);
        // Jobs whose events failed within the hour are not asked again yet (a gateway that
        // does not route `/events` for the provider would be asked, and warned about, at every
        // sync); the first failure is said, later ones only logged at debug.
        let mut failed_lately: HashMap<String, HashSet<String>> = HashMap::new();
        for (account, _) in &wanted {
            if !failed_lately.contains_key(account) {
                let since = now.saturating_sub(crate::model::secs(EVENTS_RETRY));
                let ids = self.store.events_failed_since(account, since).await?;
                failed_lately.insert(account.clone(), ids);
            }
        }
        for (account, id) in wanted {
            if failed_lately
                .get(&account)
                .is_some_and(|ids| ids.contains(&id))
            {
                continue;
            }
            // Only accounts whose sync worked: the others' stored state is stale anyway.
            let Some(summary) = results
                .iter_mut()
                .find(|(a, _)| *a == account)
                .and_then(|(_, r)| r.as_mut().ok())
            else {
                continue;
            };
            let Some(client) = self.client(&account) else {
                continue;
            };
            match sync::refresh_steps(client, &self.store, &id).await {
                Ok(()) => {
                    summary.events_checked += 1;
                    if self.store.clear_events_failure(&account, &id).await? {
                        tracing::info!(account = %account, job_id = %id, "the job's events can be fetched again");
                    }
                }
                Err(SyncError::Store(e)) => return Err(e),
                // Refused (404, 400, 405...), or an error the Portkey gateway made itself: a
                // gateway that does not route `/events` for the provider (Portkey answers a
                // Vertex AI or Bedrock job's with 404, or with its own 500 once credentials
                // are set). Said once, asked for again hourly.
                Err(SyncError::Provider(e))
                    if e.by_gateway()
                        || (matches!(e.status(), Some(400..=499)) && e.status() != Some(429)) =>
                {
                    let first = self
                        .store
                        .record_events_failure(&account, &id, &e.to_string(), now)
                        .await?;
                    if first {
                        let w = format!(
                            "events of {id}: {e} (asked again hourly; it is not judged stalled meanwhile)"
                        );
                        tracing::warn!(account = %account, job_id = %id, error = %e, "could not fetch the job's events; it is not judged stalled on old evidence, and they are asked for again hourly");
                        summary.warnings.push(w);
                    } else {
                        tracing::debug!(account = %account, job_id = %id, error = %e, "the job's events still cannot be fetched");
                    }
                }
                // Transient (5xx, timeouts, 429 after the client's retries): asked again at the
                // next sync, where a stalled job may be caught.
                Err(e) => {
                    let w = format!("events of {id}: {e}");
                    tracing::warn!(account = %account, job_id = %id, error = %e, "could not fetch the job's events; it is not judged stalled on old evidence");
                    summary.warnings.push(w);
                }
            }
        }
        Ok(())
    }

    /// Counts training files not counted yet (for projected costs).
    /// Only when a cost policy needs it: downloads cost API calls and bandwidth.
    pub async fn estimate(&self) -> Result<u32, StoreError> {
        if !policy::needs_costs(&self.config.policies) {
            return Ok(0);
        }
        crate::sync::training_files::count_missing_files(&self.clients, &self.store).await
    }

    /// Stored jobs paired with their costs (prices and cached file counts applied).
    pub async fn with_costs(
        &self,
        jobs: Vec<StoredJob>,
        now: i64,
    ) -> Result<Vec<(StoredJob, JobCost)>, StoreError> {
        let files = self.store.file_tokens().await?;
        Ok(jobs
            .into_iter()
            .map(|j| {
                let cost = self.cost_with(&files, &j, now);
                (j, cost)
            })
            .collect())
    }

    /// Calls `each` with every job matching `filter` and its cost, newest first, one job in
    /// memory at a time (for listings of the whole history).
    pub async fn for_each_job_with_cost(
        &self,
        filter: &JobFilter,
        now: i64,
        mut each: impl FnMut(&StoredJob, &JobCost),
    ) -> Result<(), StoreError> {
        let files = self.store.file_tokens().await?;
        self.store
            .for_each_job(filter, |j| each(&j, &self.cost_with(&files, &j, now)))
            .await
    }

    fn cost_with(&self, files: &HashMap<FileKey, FileTokens>, j: &StoredJob, now: i64) -> JobCost {
        let file = j.job.training_file.as_ref().and_then(|f| {
            let enc = Encoding::for_model(&j.job.model).name().to_owned();
            files.get(&(j.account.to_string(), f.clone(), enc))
        });
        let mut cost = cost::job_cost(&j.job, file, &self.config.prices, now);
        if cost.unknown == Some(cost::CostUnknown::FileNotCounted)
            && !policy::needs_costs(&self.config.policies)
        {
            cost.unknown = Some(cost::CostUnknown::FilesNotCounted);
        }
        if cost.no_price {
            warn_unpriced_once(&j.job.model);
        }
        cost
    }

    /// Evaluates the given policies over the stored jobs they need. Pure apart from reading.
    pub async fn decide(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<Evaluation<'static>, StoreError> {
        let (jobs, finished) = self.active_and_finished(policies, now).await?;
        let marks = self.store.grace_marks().await?;
        let views = views(&jobs);
        let span =
            tracing::info_span!("policy_pass", policies = policies.len(), jobs = views.len());
        let _g = span.enter();
        Ok(policy::evaluate_with_spend(
            &views,
            &finished,
            now,
            policies,
            &marks,
            self.config.dry_run,
        )
        .into_owned())
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
        let mut jobs = Vec::new();
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
        let mut jobs = Vec::new();
        self.store
            .for_each_job(&JobFilter::active(), |j| {
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

    /// Upcoming crossings of time-based limits by active jobs, earliest first.
    pub async fn next_crossings(&self, now: i64) -> Result<Vec<(i64, String, String)>, StoreError> {
        let policies = self.after_sync_policies();
        let jobs = self.store.jobs(&JobFilter::active()).await?;
        let marks = self.store.grace_marks().await?;
        let views: Vec<JobView> = jobs.iter().map(|j| view(j, &cost::NO_COST)).collect();
        Ok(policy::next_crossings(&views, now, &policies, &marks))
    }

    /// A crossing came due: re-checks each job with one retrieve, then evaluates and enforces
    /// for those jobs only. Other violations wait for the next scheduled pass: jobs the circuit
    /// breaker held there are not cancelled by whichever job crosses a limit next.
    pub async fn on_deadline(&self, due: &[(String, String)]) -> Result<PassReport, StoreError> {
        for (account, id) in due {
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
        let due: std::collections::HashSet<(&str, &str)> =
            due.iter().map(|(a, i)| (a.as_str(), i.as_str())).collect();
        // Budget notices wait for the next pass: a crossing is about its job.
        let decisions: Vec<Decision> = evaluation
            .decisions
            .into_iter()
            .filter(|d| due.contains(&(d.account.as_ref(), d.job_id.as_ref())))
            .collect();
        self.enforcer.run(&decisions).await
    }

    /// Evaluates and enforces the given policies.
    pub async fn enforce(&self, policies: &[Policy]) -> Result<PassReport, StoreError> {
        self.enforce_at(policies, time::now()).await
    }

    /// [`Self::enforce`] as of a given time (tests drive grace periods with it).
    pub async fn enforce_at(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<PassReport, StoreError> {
        let evaluation = self.decide(policies, now).await?;
        let mut report = self.enforcer.notify_groups(&evaluation.notices).await?;
        report.absorb(self.enforcer.run(&evaluation.decisions).await?);
        Ok(report)
    }

    /// Policies evaluated after every sync (those without their own schedule).
    pub fn after_sync_policies(&self) -> Vec<Policy> {
        self.config
            .policies
            .iter()
            .filter(|p| p.schedule.is_none())
            .cloned()
            .collect()
    }

    /// Policies grouped by their own schedule.
    pub fn scheduled_policies(&self) -> HashMap<Schedule, Vec<Policy>> {
        let mut out: HashMap<Schedule, Vec<Policy>> = HashMap::new();
        for p in &self.config.policies {
            if let Some(s) = &p.schedule {
                out.entry(s.clone()).or_default().push(p.clone());
            }
        }
        out
    }
}

/// Policy views of stored jobs with their costs.
pub fn views(jobs: &[(StoredJob, JobCost)]) -> Vec<JobView<'_>> {
    jobs.iter().map(|(j, c)| view(j, c)).collect()
}

/// What policies see of a stored job.
pub fn view<'a>(j: &'a StoredJob, cost: &'a JobCost) -> JobView<'a> {
    JobView {
        account: j.account.as_str(),
        job: &j.job,
        last_step_at: j.last_step_at,
        steps_checked_at: j.steps_checked_at,
        cost,
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

/// Logs an unknown model's missing price once per process.
fn warn_unpriced_once(model: &str) {
    static SEEN: std::sync::OnceLock<std::sync::Mutex<std::collections::HashSet<String>>> =
        std::sync::OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Ok(mut s) = seen.lock()
        && s.insert(model.to_owned())
    {
        if model.is_empty() {
            // Portkey's mapping of Bedrock jobs reports none: no price can apply.
            tracing::warn!("the API reports no model for some jobs: their cost is unknown");
        } else {
            tracing::warn!(
                model,
                "no training price for this model: its cost is unknown (add it under [pricing])"
            );
        }
    }
}
