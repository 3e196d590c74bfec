//! The application as the CLI and the daemon use it: configuration, store and clients built
//! once, and the three steps of a pass (sync, evaluate, enforce) as functions over them.

mod costs;
mod decide;
pub mod health;
mod metrics_snapshot;
mod pass;
mod replay;
mod sync_steps;
mod training;

pub use pass::{Counting, RunOnceError, run_once};
pub use training::{CurveMap, attach};

use std::collections::HashMap;
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
    finished: Arc<Mutex<decide::FinishedCache>>,
    /// Loss curves of running jobs, extended with new steps as they are stored (see
    /// [`App::running_curves`]).
    curves: Arc<Mutex<training::CurveMap>>,
}

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
        // One pool for all accounts: connections to a host shared, requests in flight bounded.
        let pool = crate::provider::Pool::new(config.max_concurrent_requests);
        let clients = config
            .accounts
            .iter()
            .map(|a| Client::with_pool(a.clone(), &pool))
            .collect::<Result<Vec<_>, _>>()?;
        let enforcer = Enforcer::new(
            store.clone(),
            &clients,
            crate::notify::Outbox::new(
                config.notifiers.clone(),
                crate::notify::Deliveries::default(),
                Some(store.clone()),
            ),
            config.max_cancels_per_pass,
            config.max_cancels_per_hour,
        )
        .with_prices(config.prices.clone());
        Ok(Self {
            config,
            store,
            clients,
            enforcer,
            finished: Arc::default(),
            curves: Arc::default(),
        })
    }

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

    /// Hands the notices still being delivered by `from` (the configuration before a reload) to
    /// this one, so that one flush before exiting waits for them all.
    fn keep_deliveries_of(&mut self, from: &App) {
        self.enforcer.set_outbox(crate::notify::Outbox::new(
            self.config.notifiers.clone(),
            from.enforcer.outbox().deliveries().clone(),
            Some(self.store.clone()),
        ));
    }

    /// Before a command exits: waits (up to `shutdown_timeout`) for its webhook notices still
    /// on their way.
    pub async fn flush_notices(&self) {
        self.enforcer
            .outbox()
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
        curves: None,
        cost,
    }
}
