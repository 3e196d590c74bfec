//! Training metrics in a pass: reading them for the running jobs a training-quality policy
//! matches (a sync step), and loading the stored curves for evaluation.

use std::collections::HashMap;

use super::*;
use crate::model::metrics::Curves;

/// Curves by (account, job id).
pub type CurveMap = HashMap<(String, String), Curves>;

impl App {
    /// Reads the metrics of the running jobs a training-quality policy matches: one events
    /// request per job in steady state. Failures are the account's warnings; events the API
    /// refuses are said once and asked for again hourly, as for `stalled`.
    pub(super) async fn refresh_metrics(
        &self,
        results: &mut [(String, Result<SyncSummary, SyncError>)],
        jobs: &[StoredJob],
    ) -> Result<(), StoreError> {
        if !policy::needs_metrics(&self.config.policies) {
            return Ok(());
        }
        let views: Vec<JobView> = jobs.iter().map(|j| view(j, &cost::NO_COST)).collect();
        let now = time::now();
        let mut failed = super::sync_steps::FailedLately::new();
        for (account, id) in policy::metrics_wanted(&views, &self.config.policies) {
            if self
                .events_failed_lately(&mut failed, &account, &id, now)
                .await?
            {
                continue;
            }
            let Some((summary, client)) = self.synced(results, &account) else {
                continue;
            };
            let epochs = jobs
                .iter()
                .find(|j| j.account.as_str() == account && j.job.id.as_str() == id)
                .and_then(|j| j.job.resolved_epochs());
            match sync::metrics::read_metrics(client, &self.store, &id, epochs).await {
                Ok(read) => {
                    summary.metrics_read += 1;
                    if self.store.clear_events_failure(&account, &id).await? {
                        tracing::info!(account = %account, job_id = %id, "the job's events can be fetched again");
                    }
                    tracing::debug!(account = %account, job_id = %id, steps = read.steps, requests = read.requests, "metrics read");
                }
                Err(SyncError::Store(e)) => return Err(e),
                Err(SyncError::Provider(e)) => {
                    self.events_refused(summary, &account, &id, &e, now, "by its loss")
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The stored curves of the running jobs, when a policy judges them. Kept between passes
    /// and extended with the steps stored since (a job of 18,000 steps is read once, then a
    /// sync's worth at a time); jobs no longer running are dropped. Give the map back with
    /// [`App::keep_curves`] when done with it.
    pub async fn running_curves(&self, policies: &[Policy]) -> Result<CurveMap, StoreError> {
        if !policy::needs_metrics(policies) {
            return Ok(CurveMap::new());
        }
        let mut kept = self
            .curves
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default();
        let mut out = CurveMap::new();
        for (account, id) in self.store.running_with_metrics().await? {
            let mut curves = kept
                .remove(&(account.clone(), id.clone()))
                .unwrap_or_default();
            self.store.extend_curves(&account, &id, &mut curves).await?;
            if curves.last_step().is_some() {
                out.insert((account, id), curves);
            }
        }
        Ok(out)
    }

    /// Keeps the curves [`App::running_curves`] gave for the next pass.
    pub fn keep_curves(&self, curves: CurveMap) {
        if curves.is_empty() {
            return;
        }
        if let Ok(mut c) = self.curves.lock() {
            *c = curves;
        }
    }
}

/// Gives each view its job's curves, when loaded.
pub fn attach<'a>(views: &mut [JobView<'a>], curves: &'a CurveMap) {
    if curves.is_empty() {
        return;
    }
    for v in views {
        v.curves = curves.get(&(v.account.to_owned(), v.job.id.as_str().to_owned()));
    }
}
