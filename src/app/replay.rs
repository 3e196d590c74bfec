//! `ftguard replay`'s reading: the stored jobs and their status changes into lives, replayed
//! by the pure [`crate::replay`]. Reads the store only; sends nothing, records nothing.

use super::*;
use crate::cost::pricing::PriceTable;
use crate::replay::{Life, Replay, Stored};

impl App {
    /// What `policies` (priced with `prices`) would have done to the jobs created since
    /// `since`, up to `now`. Budgets also read the jobs of their first period before `since`:
    /// those count towards the period's spend, as they did.
    pub async fn replay(
        &self,
        policies: &[Policy],
        prices: &PriceTable,
        since: i64,
        now: i64,
    ) -> Result<Replay, StoreError> {
        let from = policy::lookback(policies, since).map_or(since, |l| l.min(since));
        let files = self.store.file_tokens().await?;
        let mut changes = self.store.status_changes_since(from).await?;
        let mut lives = Vec::new();
        let filter = JobFilter {
            created_after: Some(from),
            ..JobFilter::default()
        };
        self.store
            .for_each_job(&filter, |j| {
                let ch = changes
                    .remove(&(j.account.to_string(), j.job.id.as_str().to_owned()))
                    .unwrap_or_default();
                let first_status = ch
                    .first()
                    .and_then(|t| t.from.clone())
                    .unwrap_or_else(|| j.job.status.as_str().to_owned());
                let file = j.job.training_file.as_ref().and_then(|f| {
                    let enc = Encoding::for_model(&j.job.model).name().to_owned();
                    files.get(&(j.account.to_string(), f.clone(), enc)).copied()
                });
                let stored = Stored {
                    account: j.account.to_string(),
                    first_seen_at: j.first_seen_at,
                    gone_at: j.gone_at,
                    first_status,
                    changes: ch.into_iter().map(|t| (t.observed_at, t.to)).collect(),
                    file,
                    metrics: Vec::new(),
                    job: j.job,
                };
                lives.push(Life::new(stored, prices, now));
            })
            .await?;
        // Oldest first: the order a history is told in.
        lives.reverse();
        // Jobs whose training metrics were read: judged by training-quality policies along them.
        if policy::needs_metrics(policies) {
            let with = self.store.jobs_with_metrics().await?;
            for l in &mut lives {
                if with.contains(&(l.account.clone(), l.job.id.as_str().to_owned())) {
                    l.metrics = self
                        .store
                        .metrics_reported(&l.account, l.job.id.as_str())
                        .await?;
                }
            }
        }
        let span = tracing::info_span!("replay", policies = policies.len(), jobs = lives.len());
        let _g = span.enter();
        Ok(crate::replay::replay(&lives, policies, prices, since, now))
    }
}
