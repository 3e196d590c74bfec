//! What training-quality kinds share: their keys, the loss a job is judged on, and the smoothed
//! curve. Training loss is noisy step to step, so no raw value is compared: the smoothed value
//! at a step is the median of the loss at the last `window` reported steps (50 for
//! `train_loss`, 5 for the validation losses, which are reported less often and are less
//! noisy), from the step where the window is first full. A median ignores single spikes and
//! follows a real change within half a window.

use super::{EvalContext, JobView, PolicyConfig, PolicyError};
use crate::model::metrics::LossMetric;

/// The keys both kinds read, checked.
#[derive(Debug, Clone, Copy)]
pub struct LossSpec {
    /// The loss configured; a job without a validation file is judged on `train_loss`.
    pub metric: LossMetric,
    pub patience: i64,
    pub min_steps: i64,
    /// Points in the trailing median; None: the metric's default.
    pub window: Option<usize>,
}

/// The largest `patience`, `min_steps` or `window` accepted: more than any job trains.
const MAX_STEPS: i64 = 100_000_000;

impl LossSpec {
    pub fn parse(c: &PolicyConfig) -> Result<Self, PolicyError> {
        let metric = match c.metric.as_deref() {
            None => LossMetric::ValidLoss,
            Some(m) => LossMetric::parse(m).ok_or_else(|| {
                PolicyError(format!(
                    "metric {m:?} is not a loss ftguard reads: one of {}",
                    LossMetric::NAMES.join(", ")
                ))
            })?,
        };
        let patience = match c.patience {
            None => return Err(format!("kind {:?} needs `patience` (steps)", c.kind).into()),
            Some(p) if !(1..=MAX_STEPS).contains(&p) => {
                return Err(format!(
                    "patience {p} is out of range: a number of steps from 1 to {MAX_STEPS}"
                )
                .into());
            }
            Some(p) => p,
        };
        let min_steps = match c.min_steps.unwrap_or(0) {
            m if (0..=MAX_STEPS).contains(&m) => m,
            m => {
                return Err(format!("min_steps {m} is out of range: from 0 to {MAX_STEPS}").into());
            }
        };
        let window = match c.window {
            None => None,
            Some(w) if (1..=1000).contains(&w) => usize::try_from(w).ok(),
            Some(w) => {
                return Err(format!("window {w} is out of range: from 1 to 1000 values").into());
            }
        };
        Ok(Self {
            metric,
            patience,
            min_steps,
            window,
        })
    }

    /// The patience for this job: with `allow_job_overrides`, its metadata
    /// `ftguard.<kind>` = steps may shorten it (never lengthen it), as for other kinds.
    pub fn patience_for(&self, v: &JobView, ctx: &EvalContext, kind: &str) -> i64 {
        let p = ctx.number_limit(v.job, kind, self.patience as f64);
        crate::model::round_i64(p.floor()).clamp(1, self.patience)
    }

    /// Steps until the policy acts if nothing changes: what is left of `patience` after `run`
    /// steps in the condition, and of `min_steps` at `step`.
    pub fn steps_left(&self, patience: i64, run: i64, step: i64) -> i64 {
        patience
            .saturating_sub(run)
            .max(self.min_steps.saturating_sub(step))
            .max(0)
    }

    /// The loss this job is judged on: the configured one, or `train_loss` for a job trained
    /// without a validation file.
    pub fn metric_for(&self, v: &JobView) -> LossMetric {
        if self.metric.is_validation() && v.job.validation_file.is_none() {
            LossMetric::TrainLoss
        } else {
            self.metric
        }
    }

    /// The smoothed curve of the loss the job is judged on: each reported step from the one
    /// that fills the window, with its trailing median. Empty when nothing is stored.
    pub fn smoothed(&self, v: &JobView) -> (LossMetric, Vec<(i64, f64)>) {
        let metric = self.metric_for(v);
        let Some(curves) = v.curves else {
            return (metric, Vec::new());
        };
        let window = self.window.unwrap_or(match metric {
            LossMetric::TrainLoss => 50,
            _ => 5,
        });
        let series = curves.series(metric);
        // A median of fewer values is as noisy as they are: judged from a full window on.
        let full = window.min(series.len());
        let mut smoothed = trailing_median(series, window);
        smoothed.drain(..full.saturating_sub(1));
        (metric, smoothed)
    }
}

/// Each point's value replaced by the median of the last `window` values up to it (fewer at
/// the start). One pass, a sorted window kept alongside.
pub fn trailing_median(series: &[(i64, f64)], window: usize) -> Vec<(i64, f64)> {
    let window = window.max(1);
    let mut sorted: Vec<f64> = Vec::with_capacity(window);
    let mut out = Vec::with_capacity(series.len());
    for (i, &(step, value)) in series.iter().enumerate() {
        if i >= window
            && let Some(&(_, old)) = series.get(i - window)
        {
            let pos = sorted.partition_point(|x| x.total_cmp(&old).is_lt());
            if sorted.get(pos).is_some_and(|x| x.total_cmp(&old).is_eq()) {
                sorted.remove(pos);
            }
        }
        let at = sorted.partition_point(|x| x.total_cmp(&value).is_lt());
        sorted.insert(at, value);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        out.push((step, median));
    }
    out
}

pub use super::format::loss as value;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trailing_median_ignores_a_spike_and_follows_a_step() {
        let series: Vec<(i64, f64)> = [1.0, 1.0, 9.0, 1.0, 1.0, 2.0, 2.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, v)| (i64::try_from(i).unwrap(), *v))
            .collect();
        let m: Vec<f64> = trailing_median(&series, 3).iter().map(|p| p.1).collect();
        assert_eq!(m, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 2.0]);
        assert_eq!(value(0.57), "0.57");
        assert_eq!(value(1.0), "1");
        assert_eq!(value(0.123456), "0.1235");
    }
}

/// Curves and verdicts for the kinds' tests.
#[cfg(test)]
pub(crate) mod testkit {
    use crate::model::metrics::Curves;
    use crate::policy::testkit::{NOW, job, policy};
    use crate::policy::{EvalContext, JobView};

    /// `f(step)` at every step from 1 to `steps` as `train_loss`, times 1 + Gaussian noise of
    /// standard deviation `noise` drawn from `seed` (a loss is noisy in proportion, and never
    /// negative).
    pub fn curve(f: impl Fn(i64) -> f64, steps: i64, noise: f64, seed: u64) -> Curves {
        let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
        let mut uniform = move || {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let mut c = Curves {
            total_steps: Some(steps),
            ..Curves::default()
        };
        for s in 1..=steps {
            let (u1, u2) = (uniform().max(1e-12), uniform());
            let gauss = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            c.train_loss
                .push((s, f(s) * (1.0 + noise * gauss).max(0.01)));
        }
        c
    }

    /// Property of both kinds: across 300 seeds, a curve still improving to the end
    /// (`0.5 + 2 e^(-step/1000)` over 1,200 steps: by far more than any `min_delta` per
    /// patience) under 20 % noise per step is never judged at any step from `from` on.
    pub fn never_judges_a_noisy_converging_curve(toml: &str, from: i64, every: usize) {
        let converging = |s: i64| 0.5 + 2.0 * (-(s as f64) / 1000.0).exp();
        for seed in 0..300 {
            let c = curve(converging, 1200, 0.2, seed);
            for end in (from..=1200).step_by(every) {
                assert_eq!(
                    judge(toml, &truncate(&c, end)),
                    None,
                    "seed {seed}, step {end}"
                );
            }
        }
    }

    /// Property of both kinds: the first breach the rule finds in one pass over the whole
    /// curve is the first step at which evaluating the curve as it stood then breaks — over
    /// noisy curves that fall, then jump up and stay (both kinds break), and a steadily falling
    /// one (neither does).
    pub fn first_breach_is_the_first_breaking_prefix(toml: &str) {
        let jump = |s: i64| {
            if s < 400 {
                0.5 + 2.0 * (-(s as f64) / 60.0).exp()
            } else {
                2.0
            }
        };
        let mut cases: Vec<Curves> = (0..5).map(|seed| curve(jump, 700, 0.2, seed)).collect();
        cases.push(curve(|s| 3.0 - s as f64 / 1000.0, 300, 0.0, 1));
        let j = job("a", "running", 3600);
        let p = policy(toml);
        let ctx = EvalContext {
            now: NOW,
            allow_overrides: false,
        };
        for c in &cases {
            let v = JobView {
                curves: Some(c),
                ..crate::policy::testkit::view(&j, &crate::cost::NO_COST)
            };
            let found = p.rule.first_breach(&v, &ctx, i64::MIN);
            let by_prefix = c
                .train_loss
                .iter()
                .map(|(s, _)| *s)
                .find(|s| judge_job(toml, &truncate(c, *s), &j).is_some());
            assert_eq!(found, by_prefix);
            if let Some(b) = found
                && let Some(next) = p.rule.first_breach(&v, &ctx, b + 1)
            {
                assert!(next > b, "a later breach is later: {next} after {b}");
            }
        }
    }

    /// The curves as they stood at step `end`.
    pub fn truncate(c: &Curves, end: i64) -> Curves {
        let upto = |s: &[(i64, f64)]| s.iter().copied().filter(|p| p.0 <= end).collect();
        Curves {
            train_loss: upto(&c.train_loss),
            valid_loss: upto(&c.valid_loss),
            full_valid_loss: upto(&c.full_valid_loss),
            total_steps: c.total_steps,
        }
    }

    pub fn judge_with_validation(toml: &str, c: &Curves, validation: bool) -> Option<String> {
        let mut j = job("a", "running", 3600);
        if validation {
            j.validation_file = Some("file-v".into());
        }
        judge_job(toml, c, &j)
    }

    /// The verdict on `j` with curves `c`.
    pub fn judge_job(toml: &str, c: &Curves, j: &crate::model::Job) -> Option<String> {
        let p = policy(toml);
        let v = JobView {
            curves: Some(c),
            ..crate::policy::testkit::view(j, &crate::cost::NO_COST)
        };
        p.rule.evaluate(
            &v,
            &EvalContext {
                now: NOW,
                allow_overrides: p.allow_job_overrides,
            },
        )
    }

    pub fn judge(toml: &str, c: &Curves) -> Option<String> {
        judge_with_validation(toml, c, false)
    }

    pub fn progress(toml: &str, c: &Curves) -> Option<String> {
        let j = job("a", "running", 3600);
        let p = policy(toml);
        let v = JobView {
            curves: Some(c),
            ..crate::policy::testkit::view(&j, &crate::cost::NO_COST)
        };
        p.rule.progress(
            &v,
            &EvalContext {
                now: NOW,
                allow_overrides: false,
            },
        )
    }
}
