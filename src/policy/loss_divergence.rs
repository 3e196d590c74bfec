//! `loss_divergence`: the smoothed loss (see `loss.rs`) stays above `factor` times its best value
//! so far for `patience` steps, once the job is past `min_steps`.

use super::kinds::Kind;
use super::loss::{LossSpec, value};
use super::{EvalContext, JobView, PolicyError, Rule};

pub const KIND: Kind = Kind {
    name: "loss_divergence",
    keys: &["metric", "patience", "factor", "min_steps", "window"],
    build: |c| {
        let factor = c.factor.unwrap_or(2.0);
        if !(factor.is_finite() && factor > 1.0 && factor <= 1e6) {
            return Err(PolicyError(format!(
                "factor {factor} must be more than 1 (how many times its best value the loss may rise to), e.g. 2.0"
            )));
        }
        let mut spec = LossSpec::parse(c)?;
        if c.metric.is_none() {
            spec.metric = crate::model::metrics::LossMetric::TrainLoss;
        }
        Ok(Box::new(LossDivergence { spec, factor }))
    },
};

#[derive(Debug, Clone)]
struct LossDivergence {
    spec: LossSpec,
    factor: f64,
}

/// Where a job's curve stands: its best smoothed value so far and step, its newest, and since
/// which step it has stayed above `factor` x the best (None: it is not above now).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Divergence {
    pub best: f64,
    pub best_step: i64,
    pub current: f64,
    pub step: i64,
    pub above_since: Option<i64>,
}

/// The state after each point of a smoothed curve, in order (see `loss_plateau::plateaus`).
pub fn divergences(smoothed: &[(i64, f64)], factor: f64) -> impl Iterator<Item = Divergence> + '_ {
    let mut best: Option<(f64, i64)> = None;
    let mut above_since: Option<i64> = None;
    smoothed.iter().map(move |&(step, v)| {
        let (b, b_step) = match best {
            Some((b, _)) if v < b => (v, step),
            Some(kept) => kept,
            None => (v, step),
        };
        best = Some((b, b_step));
        if v > b * factor {
            above_since.get_or_insert(step);
        } else {
            above_since = None;
        }
        Divergence {
            best: b,
            best_step: b_step,
            current: v,
            step,
            above_since,
        }
    })
}

/// Where the whole curve stands.
pub fn divergence(smoothed: &[(i64, f64)], factor: f64) -> Option<Divergence> {
    divergences(smoothed, factor).last()
}

impl LossDivergence {
    fn state(&self, v: &JobView) -> Option<(&'static str, Divergence)> {
        let (metric, smoothed) = self.spec.smoothed(v);
        divergence(&smoothed, self.factor).map(|d| (metric.as_str(), d))
    }
}

impl Rule for LossDivergence {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (metric, d) = self.state(v)?;
        let above = d.step.saturating_sub(d.above_since?);
        (d.step >= self.spec.min_steps && above >= patience).then(|| {
            format!(
                "{metric} above {}x its best for {above} steps (best {} at step {}, now {} at step {}; patience {})",
                value(self.factor),
                value(d.best),
                d.best_step,
                value(d.current),
                d.step,
                patience
            )
        })
    }
    fn progress(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (metric, d) = self.state(v)?;
        Some(match d.above_since {
            Some(since) => {
                let above = d.step.saturating_sub(since);
                let left = self.spec.steps_left(patience, above, d.step);
                format!(
                    "{metric} {} at step {} is above {}x its best {} (step {}) for {above} steps: acts after {left} more if it stays there",
                    value(d.current),
                    d.step,
                    value(self.factor),
                    value(d.best),
                    d.best_step
                )
            }
            None => format!(
                "{metric} {} at step {}, best {} at step {}: within {}x its best",
                value(d.current),
                d.step,
                value(d.best),
                d.best_step,
                value(self.factor)
            ),
        })
    }
    fn first_breach(&self, v: &JobView, ctx: &EvalContext, from_step: i64) -> Option<i64> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (_, smoothed) = self.spec.smoothed(v);
        divergences(&smoothed, self.factor)
            .find(|d| {
                d.step >= from_step
                    && d.step >= self.spec.min_steps
                    && d.above_since
                        .is_some_and(|since| d.step.saturating_sub(since) >= patience)
            })
            .map(|d| d.step)
    }
    fn needs_metrics(&self) -> Option<super::LossMetric> {
        Some(self.spec.metric)
    }
    fn judged_loss(&self, v: &JobView) -> Option<super::LossMetric> {
        Some(self.spec.metric_for(v))
    }
}

#[cfg(test)]
mod tests {
    use super::super::loss::testkit::*;

    const P: &str = "name='div'\nkind='loss_divergence'\nmetric='train_loss'\nfactor=2.0\npatience=30\nmin_steps=50";

    #[test]
    fn a_blown_up_loss_is_stopped_once_it_stays_up() {
        // Falls to ~0.5 by step 200, then blows up to 3.0 from step 300.
        let blow = |s: i64| {
            if s < 300 {
                0.5 + 2.0 * (-(s as f64) / 40.0).exp()
            } else {
                3.0
            }
        };
        // The median of 50 follows the jump 25 steps later: above from step 325.
        assert_eq!(
            judge(P, &curve(blow, 340, 0.0, 1)),
            None,
            "not for 30 steps yet"
        );
        let reason = judge(P, &curve(blow, 360, 0.0, 1)).unwrap();
        assert!(
            reason.starts_with("train_loss above 2x its best for "),
            "{reason}"
        );
        assert!(reason.contains("now 3 at step 360"), "{reason}");
        let note = progress(P, &curve(blow, 340, 0.0, 1)).unwrap();
        assert!(note.contains("acts after"), "{note}");
    }

    #[test]
    fn a_spike_that_comes_back_is_left_alone() {
        // Twenty steps at ten times the loss: shorter than the patience, even smoothed.
        let spike = |s: i64| if (300..320).contains(&s) { 5.0 } else { 0.5 };
        for end in (100..=600).step_by(10) {
            assert_eq!(
                judge(P, &truncate(&curve(spike, 600, 0.0, 1), end)),
                None,
                "{end}"
            );
        }
    }

    #[test]
    fn noisy_converging_curves_are_never_stopped() {
        never_judges_a_noisy_converging_curve(P, 50, 25);
    }

    #[test]
    fn keys_are_checked() {
        for (extra, says) in [
            ("factor=1.0", "factor 1 must be more than 1"),
            ("factor=0.5", "must be more than 1"),
            ("patience=0", "patience 0 is out of range"),
            ("metric='accuracy'", "metric \"accuracy\" is not a loss"),
        ] {
            let toml = format!("name='d'\nkind='loss_divergence'\npatience=30\n{extra}");
            let toml = toml.replacen("patience=30\npatience=0", "patience=0", 1);
            let c: crate::policy::PolicyConfig = toml::from_str(&toml).unwrap();
            let e = crate::policy::compile(&c).unwrap_err().0;
            assert!(e.contains(says), "{extra}: {e}");
        }
        let c: crate::policy::PolicyConfig =
            toml::from_str("name='d'\nkind='loss_divergence'").unwrap();
        assert!(
            crate::policy::compile(&c)
                .unwrap_err()
                .0
                .contains("needs `patience`")
        );
    }

    #[test]
    fn the_first_breach_in_one_pass_is_the_first_breaking_prefix() {
        first_breach_is_the_first_breaking_prefix(P);
    }
}
