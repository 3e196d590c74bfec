//! Costs of stored jobs: prices and counted training files applied; the counting itself.

use std::collections::HashMap;

use super::*;

impl App {
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

    pub(super) fn cost_with(
        &self,
        files: &HashMap<FileKey, FileTokens>,
        j: &StoredJob,
        now: i64,
    ) -> JobCost {
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
