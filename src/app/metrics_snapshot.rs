//! The state `/metrics` shows, read from the store at scrape time: jobs, actions, last syncs
//! and budget spend, so the gauges survive restarts and never drift from the database.

use super::App;
use crate::model::time;
use crate::store::StoreError;
use crate::telemetry::StateSnapshot;

impl App {
    /// What the state gauges show now.
    pub async fn metrics_snapshot(&self) -> Result<StateSnapshot, StoreError> {
        let store = &self.store;
        let mut state = StateSnapshot {
            jobs: store.job_counts().await?,
            actions: store.action_counts().await?,
            last_sync: store.last_successful_syncs().await?,
            budgets: Vec::new(),
            training_loss: Vec::new(),
            training_step: Vec::new(),
        };
        let running = self.running_curves(&self.config.policies).await?;
        for ((account, job), curves) in &running {
            for metric in crate::model::metrics::LossMetric::NAMES {
                let series = crate::model::metrics::LossMetric::parse(metric)
                    .map_or(&[][..], |m| curves.series(m));
                if let Some(&(_, v)) = series.last() {
                    state
                        .training_loss
                        .push((account.clone(), job.clone(), metric, v));
                }
            }
            if let Some(step) = curves.last_step() {
                state
                    .training_step
                    .push((account.clone(), job.clone(), step));
            }
        }
        self.keep_curves(running);
        let budgets: Vec<_> = self
            .config
            .policies
            .iter()
            .filter_map(|p| p.rule.budget().map(|b| (p, b)))
            .collect();
        if !budgets.is_empty() {
            // Finished jobs' spend is kept between scrapes while nothing changed (see
            // `App::active_and_finished`): a scrape reads the active jobs, not the whole period.
            let spend = self.budget_spend(time::now()).await?;
            for (policy, b) in budgets {
                for (group, s) in spend.get(&policy.name).into_iter().flatten() {
                    state.budgets.push((
                        policy.name.clone(),
                        group.clone(),
                        s.total().as_dollars(),
                        b.limit.as_dollars(),
                    ));
                }
            }
        }
        Ok(state)
    }
}
