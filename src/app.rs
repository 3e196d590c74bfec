//! The application as the CLI and the daemon use it: configuration, store and clients built
//! once, and the three steps of a pass (sync, evaluate, enforce) as functions over them.

use std::collections::HashMap;

use crate::clock;
use crate::config::Config;
use crate::enforce::{Enforcer, PassReport};
use crate::policy::{self, Decision, JobView, Policy};
use crate::provider::Client;
use crate::store::{JobFilter, Store, StoreError};
use crate::sync::{self, SyncError, SyncOptions, SyncSummary};

/// Everything a pass needs.
#[derive(Clone)]
pub struct App {
    pub config: Config,
    pub store: Store,
    pub clients: Vec<Client>,
    pub enforcer: Enforcer,
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
            notifiers: config.notifiers.clone(),
            http: reqwest::Client::new(),
            max_cancels_per_pass: config.max_cancels_per_pass,
        };
        Ok(Self {
            config,
            store,
            clients,
            enforcer,
        })
    }

    /// Syncs every account.
    pub async fn sync(&self) -> Vec<(String, Result<SyncSummary, SyncError>)> {
        let opts = SyncOptions {
            fetch_events: policy::needs_events(&self.config.policies),
        };
        sync::sync_all(&self.clients, &self.store, opts).await
    }

    /// Evaluates the given policies over the stored active jobs. Pure apart from reading.
    pub async fn decide(&self, policies: &[Policy], now: i64) -> Result<Vec<Decision>, StoreError> {
        let jobs = self
            .store
            .jobs(&JobFilter {
                active_only: true,
                ..Default::default()
            })
            .await?;
        let marks = self.store.grace_marks().await?;
        let views: Vec<JobView> = jobs
            .iter()
            .map(|j| JobView {
                account: j.account.as_str(),
                job: &j.job,
                last_step_at: j.last_step_at,
            })
            .collect();
        let span =
            tracing::info_span!("policy_pass", policies = policies.len(), jobs = views.len());
        let _g = span.enter();
        Ok(policy::evaluate(
            &views,
            now,
            policies,
            &marks,
            self.config.dry_run,
        ))
    }

    /// Evaluates and enforces the given policies.
    pub async fn enforce(&self, policies: &[Policy]) -> Result<PassReport, StoreError> {
        self.enforce_at(policies, clock::now()).await
    }

    /// [`Self::enforce`] as of a given time (tests drive grace periods with it).
    pub async fn enforce_at(
        &self,
        policies: &[Policy],
        now: i64,
    ) -> Result<PassReport, StoreError> {
        let decisions = self.decide(policies, now).await?;
        self.enforcer.run(&decisions).await
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
    pub fn scheduled_policies(&self) -> HashMap<String, Vec<Policy>> {
        let mut out: HashMap<String, Vec<Policy>> = HashMap::new();
        for p in &self.config.policies {
            if let Some(s) = &p.schedule {
                out.entry(s.clone()).or_default().push(p.clone());
            }
        }
        out
    }
}

/// One line per account for people.
pub fn sync_line(account: &str, r: &Result<SyncSummary, SyncError>) -> String {
    match r {
        Ok(s) => {
            let mut line = format!(
                "{account}: {} jobs in {} page(s), {} new, {} changed, {} active",
                s.jobs_seen, s.pages, s.new, s.changed, s.active
            );
            if s.rejected > 0 {
                line.push_str(&format!(", {} unparseable item(s) skipped", s.rejected));
            }
            for w in &s.warnings {
                line.push_str(&format!("\n  warning: {w}"));
            }
            line
        }
        Err(e) => format!("{account}: FAILED: {e}"),
    }
}
