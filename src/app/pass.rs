//! One pass of the application — sync, evaluate and enforce, count training files — and
//! `run --once`, which is one pass with everything around it (the database lock, settling
//! actions a crash left pending, delivering the pass's notices before exiting). The daemon
//! runs the same pass on its schedules.

use tracing::Instrument;

use super::{App, BuildError};
use crate::config::Config;
use crate::enforce::PassReport;
use crate::store::{DatabaseLock, LockError, StoreError};
use crate::sync::outage_watch::{self, SyncWatch};

/// Why `run --once` could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunOnceError {
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `run --once`: settles actions left pending, syncs, evaluates every policy (scheduled ones
/// included), enforces, counts training files and enforces the cost policies on them, and
/// waits for the notices on their way. One report for all of it.
pub async fn run_once(config: Config, say: &dyn Fn(String)) -> Result<PassReport, RunOnceError> {
    let _lock = DatabaseLock::acquire(&config.database)?;
    let app = App::build(config).await?;
    if app.config.accounts.is_empty() {
        tracing::warn!("no [[accounts]] configured: nothing to watch");
    }
    // What settling pending actions did is part of this run: its failures make the exit
    // status 2 and its lines are in `--json`, like the pass's own.
    let mut report = app.reconcile_pending().await?;
    for l in &report.lines {
        say(l.clone());
    }
    let mut watch = app.sync_watch().await;
    let policies = app.config.policies.clone();
    let pass = app
        .full_pass(say, &policies, &mut watch, &mut Counting::Inline)
        .await;
    // Notices of this pass may still be on their way to a slow webhook.
    app.flush_notices().await;
    report.absorb(pass?);
    Ok(report)
}

impl App {
    /// The outage watch, picked up from the store: since when each account fails and whether
    /// that was said (so neither a restart nor `run --once` from a timer says one twice).
    pub async fn sync_watch(&self) -> SyncWatch {
        let mut watch = SyncWatch::default();
        match self.store.failing_since().await {
            Ok(failing) => watch.resume(&failing),
            Err(e) => tracing::warn!(error = %e, "cannot read which accounts were failing"),
        }
        watch
    }

    /// Settles actions a crash left pending, before anything else is decided.
    pub async fn reconcile_pending(&self) -> Result<PassReport, StoreError> {
        self.enforcer.reconcile_pending().await
    }
}

/// Where training files are counted for projected costs. Never before enforcing: a download
/// that stalls or takes an hour must not hold up time and runtime limits.
pub enum Counting {
    /// After enforcing, then the cost policies again with what was counted (`run --once`).
    Inline,
    /// In a task of its own (one at a time); the next pass uses what it counted (the daemon).
    Background(Option<tokio::task::JoinHandle<()>>),
}

impl Counting {
    /// Counts training files not counted yet, as this mode does; returns a report of the
    /// cost policies enforced again (inline only).
    async fn count(
        &mut self,
        app: &App,
        policies: &[crate::policy::Policy],
    ) -> Result<PassReport, StoreError> {
        match self {
            Self::Inline => {
                if app.estimate().await? == 0 {
                    return Ok(PassReport::default());
                }
                let cost: Vec<_> = policies
                    .iter()
                    .filter(|p| crate::policy::needs_costs(std::slice::from_ref(*p)))
                    .cloned()
                    .collect();
                Ok(app.enforce(&cost).await?)
            }
            Self::Background(task) => {
                if task.as_ref().is_some_and(|t| !t.is_finished()) {
                    tracing::debug!("training files are still being counted");
                    return Ok(PassReport::default());
                }
                let app = app.clone();
                *task = Some(tokio::spawn(async move {
                    if let Err(e) = app.estimate().await {
                        tracing::warn!(error = %e, "cannot record training file counts");
                    }
                }));
                Ok(PassReport::default())
            }
        }
    }
}

impl App {
    /// One pass: sync every account (an account failing for as long as `/healthz` tolerates
    /// is notified, once, and its recovery), then evaluate and enforce `policies`, then count
    /// training files as `counting` says. `say` gets a line per account and per action.
    pub async fn full_pass(
        &self,
        say: &dyn Fn(String),
        policies: &[crate::policy::Policy],
        watch: &mut SyncWatch,
        counting: &mut Counting,
    ) -> Result<PassReport, StoreError> {
        full_pass(self, say, policies, watch, counting).await
    }
}

async fn full_pass(
    app: &App,
    say: &dyn Fn(String),
    policies: &[crate::policy::Policy],
    watch: &mut SyncWatch,
    counting: &mut Counting,
) -> Result<PassReport, StoreError> {
    let results = app.sync().await;
    // An account failing for as long as /healthz tolerates is notified, once, and its recovery.
    let now = crate::model::time::now();
    let window = 3 * app.config.sync_schedule.interval_or_minute(now);
    for (account, r) in &results {
        say(crate::sync::sync_line(account, r));
        let error = r.as_ref().err().map(ToString::to_string);
        let outcome = error.as_deref().map_or(Ok(()), Err);
        if let Some(notice) = watch.observe(account, outcome, now, window) {
            let span = tracing::info_span!("sync_health", account = %account);
            if notice.event == outage_watch::FAILING {
                span.in_scope(|| tracing::error!(reason = %notice.reason, "account not synced"));
                let recorded = app.store.record_failing_notified(account, now);
                if let Err(e) = recorded.instrument(span).await {
                    tracing::warn!(account = %account, error = %e, "cannot record that the outage was notified");
                }
            } else {
                span.in_scope(|| tracing::info!(reason = %notice.reason, "account synced again"));
            }
            say(format!(
                "notified: {} {account}: {}",
                notice.event, notice.reason
            ));
            app.enforcer.outbox().send(notice);
        }
    }
    let mut report = app.enforce(policies).await?;
    report.absorb(counting.count(app, policies).await?);
    // Notices a webhook refused earlier (or a crash interrupted), whose retry is due; in the
    // background, so a hanging webhook never holds up a pass.
    app.enforcer.outbox().retry_due_in_background(now);
    for l in &report.lines {
        say(l.clone());
    }
    report.syncs = results
        .iter()
        .map(|(account, r)| crate::sync::sync_json(account, r))
        .collect();
    Ok(report)
}
