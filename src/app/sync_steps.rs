//! The sync step of a pass: every account's listing, then the events of the running jobs a
//! `stalled` policy would act on; events the API refuses are said once and asked for hourly.

use super::*;

/// How long after a failed fetch of a job's events they are asked for again.
/// Per account, the jobs whose events failed within the hour (see
/// [`App::events_failed_lately`]).
pub(super) type FailedLately = std::collections::HashMap<String, std::collections::HashSet<String>>;

pub(super) const EVENTS_RETRY: std::time::Duration = std::time::Duration::from_secs(3600);

impl App {
    /// Whether the job's events failed within the hour: a gateway that does not route
    /// `/events` for the provider would otherwise be asked, and warned about, at every sync.
    /// `seen` keeps each account's answer for the rest of the pass: one query per account.
    pub(super) async fn events_failed_lately(
        &self,
        seen: &mut FailedLately,
        account: &str,
        id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !seen.contains_key(account) {
            let since = now.saturating_sub(crate::model::secs(EVENTS_RETRY));
            let ids = self.store.events_failed_since(account, since).await?;
            seen.insert(account.to_owned(), ids);
        }
        Ok(seen.get(account).is_some_and(|ids| ids.contains(id)))
    }

    /// The account's sync summary and client, when its sync worked: the others' stored state
    /// is stale anyway, so their jobs' events are not read.
    pub(super) fn synced<'r>(
        &self,
        results: &'r mut [(String, Result<SyncSummary, SyncError>)],
        account: &str,
    ) -> Option<(&'r mut SyncSummary, &Client)> {
        let summary = results
            .iter_mut()
            .find(|(a, _)| a == account)
            .and_then(|(_, r)| r.as_mut().ok())?;
        Some((summary, self.client(account)?))
    }

    /// An events request that failed. Refused (404, 400, 405...), or an error the Portkey
    /// gateway made itself (a gateway that does not route `/events` for the provider: Portkey
    /// answers a Vertex AI or Bedrock job's with 404, or with its own 500 once credentials are
    /// set): said once, asked for again hourly, the job not judged by `judged` meanwhile.
    /// Transient (5xx, timeouts, 429 after the client's retries): a warning, asked again at the
    /// next sync.
    pub(super) async fn events_refused(
        &self,
        summary: &mut SyncSummary,
        account: &str,
        id: &str,
        e: &crate::provider::ProviderError,
        now: i64,
        judged: &str,
    ) -> Result<(), StoreError> {
        let refused =
            e.by_gateway() || (matches!(e.status(), Some(400..=499)) && e.status() != Some(429));
        if !refused {
            tracing::warn!(account = %account, job_id = %id, error = %e, "could not fetch the job's events; it is not judged on old evidence");
            summary.warnings.push(format!("events of {id}: {e}"));
            return Ok(());
        }
        let first = self
            .store
            .record_events_failure(account, id, &e.to_string(), now)
            .await?;
        if first {
            tracing::warn!(account = %account, job_id = %id, error = %e, "could not fetch the job's events; it is not judged {judged} on old evidence, and they are asked for again hourly");
            summary.warnings.push(format!(
                "events of {id}: {e} (asked again hourly; it is not judged {judged} meanwhile)"
            ));
        } else {
            tracing::debug!(account = %account, job_id = %id, error = %e, "the job's events still cannot be fetched");
        }
        Ok(())
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
        let started = std::time::Instant::now();
        let mut results = sync::sync_all(&self.clients, &self.store, opts).await;
        sync::log_pass(&results, started.elapsed());
        // The active jobs, read once for both event reads (stalled steps, training metrics).
        let policies = &self.config.policies;
        if policy::needs_events(policies) || policy::needs_metrics(policies) {
            match self.store.jobs(&JobFilter::active()).await {
                Ok(jobs) => {
                    if let Err(e) = self.refresh_steps(&mut results, &jobs).await {
                        tracing::warn!(error = %e, "could not fetch the events of suspected stalled jobs");
                    }
                    if let Err(e) = self.refresh_metrics(&mut results, &jobs).await {
                        tracing::warn!(error = %e, "could not read training metrics");
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not choose the jobs whose events to fetch")
                }
            }
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
        jobs: &[StoredJob],
    ) -> Result<(), StoreError> {
        if !policy::needs_events(&self.config.policies) {
            return Ok(());
        }
        let views: Vec<JobView> = jobs.iter().map(|j| view(j, &cost::NO_COST)).collect();
        let now = time::now();
        let wanted = policy::events_wanted(&views, now, &self.config.policies);
        let mut failed = FailedLately::new();
        for (account, id) in wanted {
            // Jobs whose events failed within the hour are not asked again yet.
            if self
                .events_failed_lately(&mut failed, &account, &id, now)
                .await?
            {
                continue;
            }
            let Some((summary, client)) = self.synced(results, &account) else {
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
                Err(SyncError::Provider(e)) => {
                    self.events_refused(summary, &account, &id, &e, now, "stalled")
                        .await?;
                }
            }
        }
        Ok(())
    }
}
