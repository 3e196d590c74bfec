//! What a job has cost and will cost. Pure: prices, token counts and `now` come in as data.

pub mod bpe;
pub mod tokens;

pub mod pricing;
use serde::Serialize;

use crate::cost::pricing::{Price, PriceTable, hour_cost, token_cost};
use crate::model::{Job, Usd};

/// A training file's billed tokens per epoch, as counted (and cached) once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileTokens {
    pub examples: u64,
    pub tokens: u64,
}

/// A job's money.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobCost {
    /// What it has cost, from trained tokens (or hours) the API reported.
    pub actual: Option<Usd>,
    /// What it will cost in all: training-file tokens x epochs x price, for unfinished jobs;
    /// the actual cost once finished.
    pub projected: Option<Usd>,
    /// Why a figure is missing, when one is.
    pub unknown: Option<CostUnknown>,
    /// The model has no price: its cost stays unknown (policies decide with `unknown_cost`).
    pub no_price: bool,
}

/// Why a job's cost (or its projection) is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CostUnknown {
    #[error("no training price for model {0}")]
    NoPrice(String),
    #[error("the API reported no trained_tokens")]
    NoTrainedTokens,
    #[error("the API reported trained_tokens {0}, which is no count")]
    NotACount(i64),
    /// An unfinished job priced per token has no projection yet.
    #[error("training file not counted yet")]
    FileNotCounted,
    /// The same, when nothing will count it: no policy needs costs.
    #[error("training files are counted only while a max_job_cost or budget policy is configured")]
    FilesNotCounted,
}

impl serde::Serialize for CostUnknown {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// For views that carry no cost (tests, policies that do not need one).
pub static NO_COST: JobCost = JobCost {
    actual: None,
    projected: None,
    unknown: None,
    no_price: false,
};

impl JobCost {
    /// The best figure for "how much is this job": projected, else actual.
    pub fn best(&self) -> Option<Usd> {
        self.projected.or(self.actual)
    }
}

/// Epochs the job bills for: its resolved `n_epochs`, else OpenAI's auto rule.
pub fn epochs(job: &Job, file: &FileTokens) -> u64 {
    match job.resolved_epochs() {
        Some(e) if e >= 1.0 => crate::model::floor_u64(e),
        _ => tokens::auto_epochs(file.examples),
    }
}

/// Computes a job's cost.
pub fn job_cost(job: &Job, file: Option<&FileTokens>, prices: &PriceTable, now: i64) -> JobCost {
    let Some(price) = prices.resolve(&job.model, job.method.as_deref()) else {
        return JobCost {
            unknown: Some(CostUnknown::NoPrice(job.model.clone())),
            no_price: true,
            ..Default::default()
        };
    };
    let terminal = job.status.is_terminal();
    match price {
        Price::PerMillionTokens(p) => {
            // A negative count is no count (said once by the sync): unknown, never a refund.
            let actual = job
                .trained_tokens
                .filter(|t| *t >= 0)
                .map(|t| token_cost(t, p));
            if terminal {
                return JobCost {
                    actual,
                    projected: actual,
                    unknown: actual.is_none().then_some(match job.trained_tokens {
                        Some(t) => CostUnknown::NotACount(t),
                        None => CostUnknown::NoTrainedTokens,
                    }),
                    no_price: false,
                };
            }
            match file {
                Some(f) => JobCost {
                    actual,
                    projected: Some(token_cost(
                        crate::model::count_i64(f.tokens.saturating_mul(epochs(job, f))),
                        p,
                    )),
                    unknown: None,
                    no_price: false,
                },
                None => JobCost {
                    actual,
                    projected: None,
                    unknown: Some(CostUnknown::FileNotCounted),
                    no_price: false,
                },
            }
        }
        Price::PerHour(p) => {
            // Billed for wall-clock training time; the API does not report it, so the job's
            // lifetime is used: an upper bound.
            let end = if terminal {
                job.finished_at.unwrap_or(now)
            } else {
                job.estimated_finish.unwrap_or(now).max(now)
            };
            let so_far = hour_cost(job.finished_at.unwrap_or(now) - job.created_at, p);
            JobCost {
                actual: Some(so_far),
                projected: Some(hour_cost(end - job.created_at, p)),
                unknown: None,
                no_price: false,
            }
        }
    }
}

/// What stopping a job at training step `step` of `total` does not spend, from the job's own
/// figures: the tokens it trained per step so far (`trained_tokens / step`) times the steps left,
/// at its price per token. None when a figure is missing or the model is priced by the hour.
pub fn saving_by_steps(
    job: &Job,
    trained_tokens: Option<i64>,
    step: i64,
    total: i64,
    prices: &PriceTable,
) -> Option<Usd> {
    let Price::PerMillionTokens(price) = prices.resolve(&job.model, job.method.as_deref())? else {
        return None;
    };
    let trained = trained_tokens.filter(|t| *t > 0)?;
    if step <= 0 || total <= step {
        return (step > 0).then_some(Usd(0));
    }
    let left = i128::from(total) - i128::from(step);
    let tokens = i128::from(trained) * left / i128::from(step);
    Some(token_cost(i64::try_from(tokens).unwrap_or(i64::MAX), price))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::testkit::{NOW, job};

    #[test]
    fn costs() {
        let prices = PriceTable::default();
        let file = FileTokens {
            examples: 1000,
            tokens: 2_000_000,
        };
        // Queued gpt-4o-mini, auto epochs (3 for 1000 examples): 6M tokens x $3 = $18.
        let q = job("a", "queued", 60);
        let c = job_cost(&q, Some(&file), &prices, NOW);
        assert_eq!(
            c.projected.map(|u| u.to_string()).as_deref(),
            Some("$18.00")
        );
        assert_eq!(c.actual, None);
        // Resolved epochs win.
        let mut e = q.clone();
        e.n_epochs = Some(serde_json::json!(1));
        assert_eq!(
            job_cost(&e, Some(&file), &prices, NOW).projected,
            Some(Usd::from_dollars(6.0))
        );
        // Finished: actual from trained tokens.
        let mut done = job("b", "cancelled", 60);
        done.trained_tokens = Some(1_000_000);
        let c = job_cost(&done, Some(&file), &prices, NOW);
        assert_eq!(
            (c.actual, c.projected),
            (Some(Usd::from_dollars(3.0)), Some(Usd::from_dollars(3.0)))
        );
        // Hostile counts: negative is unknown (no refund); i64::MAX and 1e18 epochs saturate
        // at the largest amount instead of wrapping negative.
        done.trained_tokens = Some(-1000);
        let c = job_cost(&done, Some(&file), &prices, NOW);
        assert_eq!((c.actual, c.projected), (None, None));
        assert_eq!(c.unknown, Some(CostUnknown::NotACount(-1000)));
        done.trained_tokens = Some(i64::MAX);
        let c = job_cost(&done, Some(&file), &prices, NOW);
        assert!(
            c.actual.unwrap() > Usd::from_dollars(1e12),
            "{:?}",
            c.actual
        );
        let mut huge = q.clone();
        huge.n_epochs = Some(serde_json::json!(1e18));
        let c = job_cost(&huge, Some(&file), &prices, NOW);
        assert!(
            c.projected.unwrap() > Usd::from_dollars(1e12),
            "{:?}",
            c.projected
        );
        assert_eq!(
            Usd(i64::MAX).saturating_add(Usd(5)),
            Usd(i64::MAX),
            "sums saturate"
        );
        assert_eq!(
            format!("{}", Usd(i64::MAX)),
            "$9223372036854.77",
            "display never overflows"
        );
        // Not counted yet, unknown model.
        assert!(job_cost(&q, None, &prices, NOW).unknown.is_some());
        let mut odd = q.clone();
        odd.model = "llama-3".into();
        assert_eq!(
            job_cost(&odd, Some(&file), &prices, NOW).unknown,
            Some(CostUnknown::NoPrice("llama-3".into()))
        );
        // Stopped at step 300 of 1,000 having trained 600,000 tokens: 2,000 a step, 1.4M not
        // trained, $4.20 at $3 per million; by the hour or without a count: none.
        let running = job("s", "running", 600);
        assert_eq!(
            saving_by_steps(&running, Some(600_000), 300, 1000, &prices),
            Some(Usd::from_dollars(4.2))
        );
        assert_eq!(saving_by_steps(&running, None, 300, 1000, &prices), None);
        assert_eq!(
            saving_by_steps(&running, Some(600_000), 1000, 1000, &prices),
            Some(Usd(0))
        );
        assert_eq!(
            saving_by_steps(&running, Some(i64::MAX), 1, i64::MAX, &prices).map(|u| u > Usd(0)),
            Some(true),
            "saturates, never wraps"
        );
        // Reinforcement: by the hour.
        let mut rft = job("r", "running", 1800);
        rft.model = "o4-mini-2025-04-16".into();
        rft.method = Some("reinforcement".into());
        rft.estimated_finish = Some(NOW + 1800);
        let c = job_cost(&rft, None, &prices, NOW);
        assert_eq!(
            (c.actual, c.projected),
            (
                Some(Usd::from_dollars(50.0)),
                Some(Usd::from_dollars(100.0))
            )
        );
    }
}
