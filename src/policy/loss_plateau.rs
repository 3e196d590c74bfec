//! `loss_plateau`: early stopping. The smoothed loss (see `loss.rs`) has not improved on its best
//! value by at least `min_delta` for `patience` steps, once the job is past `min_steps`.

use super::kinds::Kind;
use super::loss::{LossSpec, value};
use super::{EvalContext, JobView, PolicyError, Rule};

pub const KIND: Kind = Kind {
    name: "loss_plateau",
    keys: &["metric", "patience", "min_delta", "min_steps", "window"],
    build: |c| {
        let min_delta = c.min_delta.unwrap_or(0.0);
        if !(min_delta.is_finite() && (0.0..=1e6).contains(&min_delta)) {
            return Err(PolicyError(format!(
                "min_delta {min_delta} must be a non-negative loss difference, e.g. 0.01"
            )));
        }
        Ok(Box::new(LossPlateau {
            spec: LossSpec::parse(c)?,
            min_delta,
        }))
    },
};

#[derive(Debug, Clone)]
struct LossPlateau {
    spec: LossSpec,
    min_delta: f64,
}

/// Where a job's curve stands: its best smoothed value and step, its newest, and the steps
/// since the best last improved by `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plateau {
    pub best: f64,
    pub best_step: i64,
    pub current: f64,
    pub step: i64,
    pub since: i64,
}

/// Keras's rule on a smoothed curve: a value improves when it is below the best by more than
/// `min_delta`, and only then becomes the best. The state after each point, in order: the
/// state after the last is the curve's; the state after any point is what the curve up to it
/// gives (the smoothing is trailing, so a prefix smooths the same).
pub fn plateaus(smoothed: &[(i64, f64)], min_delta: f64) -> impl Iterator<Item = Plateau> + '_ {
    let mut best: Option<(f64, i64)> = None;
    smoothed.iter().map(move |&(step, v)| {
        let (b, b_step) = match best {
            Some((b, _)) if v < b - min_delta => (v, step),
            Some(kept) => kept,
            None => (v, step),
        };
        best = Some((b, b_step));
        Plateau {
            best: b,
            best_step: b_step,
            current: v,
            step,
            since: step.saturating_sub(b_step),
        }
    })
}

/// Where the whole curve stands.
pub fn plateau(smoothed: &[(i64, f64)], min_delta: f64) -> Option<Plateau> {
    plateaus(smoothed, min_delta).last()
}

impl LossPlateau {
    fn state(&self, v: &JobView) -> Option<(&'static str, Plateau)> {
        let (metric, smoothed) = self.spec.smoothed(v);
        plateau(&smoothed, self.min_delta).map(|p| (metric.as_str(), p))
    }
}

impl Rule for LossPlateau {
    fn evaluate(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (metric, p) = self.state(v)?;
        (p.step >= self.spec.min_steps && p.since >= patience).then(|| {
            format!(
                "{metric} has not improved by {} for {} steps (best {} at step {}, now {} at step {}; patience {})",
                value(self.min_delta),
                p.since,
                value(p.best),
                p.best_step,
                value(p.current),
                p.step,
                patience
            )
        })
    }
    fn progress(&self, v: &JobView, ctx: &EvalContext) -> Option<String> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (metric, p) = self.state(v)?;
        let left = self.spec.steps_left(patience, p.since, p.step);
        Some(format!(
            "best {metric} {} at step {}, now {} at step {}: {} steps without improvement, acts after {left} more if nothing improves",
            value(p.best),
            p.best_step,
            value(p.current),
            p.step,
            p.since
        ))
    }
    fn first_breach(&self, v: &JobView, ctx: &EvalContext, from_step: i64) -> Option<i64> {
        let patience = self.spec.patience_for(v, ctx, KIND.name);
        let (_, smoothed) = self.spec.smoothed(v);
        plateaus(&smoothed, self.min_delta)
            .find(|p| p.step >= from_step && p.step >= self.spec.min_steps && p.since >= patience)
            .map(|p| p.step)
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

    const P: &str = "name='early'\nkind='loss_plateau'\nmetric='train_loss'\npatience=200\nmin_delta=0.01\nmin_steps=100";

    #[test]
    fn a_flat_curve_is_stopped_after_patience_and_explained() {
        // Falls to 0.6 by step 300, then flat: 200 steps later it has not improved.
        let flat = |s: i64| 0.6 + 2.0 * (-(s as f64) / 40.0).exp();
        let reason = judge(P, &curve(flat, 520, 0.0, 1)).unwrap();
        assert!(
            reason.starts_with("train_loss has not improved by 0.01 for "),
            "{reason}"
        );
        assert!(reason.contains("patience 200"), "{reason}");
        assert_eq!(judge(P, &curve(flat, 350, 0.0, 1)), None, "not yet");
        let note = progress(P, &curve(flat, 350, 0.0, 1)).unwrap();
        assert!(note.contains("acts after"), "{note}");
    }

    #[test]
    fn job_metadata_may_shorten_the_patience_when_allowed() {
        // Flat from about step 300: at step 420, 120 steps without improvement.
        let flat = |s: i64| 0.6 + 2.0 * (-(s as f64) / 40.0).exp();
        let c = curve(flat, 420, 0.0, 1);
        let mut j = crate::policy::testkit::job("a", "running", 3600);
        j.metadata
            .insert("ftguard.loss_plateau".into(), "100".into());
        assert_eq!(judge_job(P, &c, &j), None, "not allowed: ignored");
        let allowed = format!("{P}\nallow_job_overrides=true");
        assert!(
            judge_job(&allowed, &c, &j)
                .unwrap()
                .contains("patience 100")
        );
        j.metadata
            .insert("ftguard.loss_plateau".into(), "5000".into());
        assert_eq!(judge_job(&allowed, &c, &j), None, "cannot lengthen");
    }

    #[test]
    fn nothing_is_judged_before_min_steps_or_without_metrics() {
        let p =
            "name='early'\nkind='loss_plateau'\nmetric='train_loss'\npatience=10\nmin_steps=500";
        assert_eq!(judge(p, &curve(|_| 1.0, 300, 0.0, 1)), None);
        assert!(judge(p, &curve(|_| 1.0, 600, 0.0, 1)).is_some());
        assert_eq!(judge(p, &crate::model::metrics::Curves::default()), None);
    }

    #[test]
    fn the_validation_loss_is_judged_and_train_loss_without_a_validation_file() {
        let p = "name='early'\nkind='loss_plateau'\npatience=100";
        // Training loss still falls; validation loss flat from the start.
        let mut c = curve(|s| 3.0 - s as f64 / 100.0, 250, 0.0, 1);
        c.valid_loss = (0..=250).step_by(10).map(|s| (s, 1.0)).collect();
        assert!(
            judge_with_validation(p, &c, true)
                .unwrap()
                .starts_with("valid_loss")
        );
        assert_eq!(
            judge_with_validation(p, &c, false),
            None,
            "train_loss improves"
        );
    }

    #[test]
    fn noisy_converging_curves_are_never_stopped() {
        never_judges_a_noisy_converging_curve(P, 100, 50);
    }

    #[test]
    fn noisy_plateaus_are_stopped_early() {
        let flat = |s: i64| 0.5 + 2.0 * (-(s as f64) / 60.0).exp();
        for seed in 0..100 {
            let c = curve(flat, 3000, 0.2, seed);
            let first = (100..=3000)
                .step_by(10)
                .find(|end| judge(P, &truncate(&c, *end)).is_some());
            assert!(
                first.is_some_and(|s| s < 1200),
                "seed {seed}: first stopped at {first:?} of 3000"
            );
        }
    }

    #[test]
    fn the_first_breach_in_one_pass_is_the_first_breaking_prefix() {
        first_breach_is_the_first_breaking_prefix(P);
    }
}
