//! Training metrics as the API publishes them: one set of values per reported step (metrics
//! events), checkpoints at the end of each epoch, and a job's loss curves as policies read them.

use serde::{Deserialize, Serialize};

/// The values one metrics event reported at a training step; what the API left out is None.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct StepMetrics {
    pub step: i64,
    pub total_steps: Option<i64>,
    pub train_loss: Option<f64>,
    pub train_mean_token_accuracy: Option<f64>,
    pub valid_loss: Option<f64>,
    pub valid_mean_token_accuracy: Option<f64>,
    pub full_valid_loss: Option<f64>,
    pub full_valid_mean_token_accuracy: Option<f64>,
}

/// A checkpoint the API lists for a job: a usable model at a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub id: String,
    /// `fine_tuned_model_checkpoint`: `ft:...:ckpt-step-N`.
    pub model: String,
    pub step: i64,
    pub created_at: i64,
    pub metrics: StepMetrics,
}

/// A loss a training-quality policy judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossMetric {
    TrainLoss,
    ValidLoss,
    FullValidLoss,
}

impl LossMetric {
    pub const NAMES: [&'static str; 3] = ["train_loss", "valid_loss", "full_valid_loss"];

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "train_loss" => Some(Self::TrainLoss),
            "valid_loss" => Some(Self::ValidLoss),
            "full_valid_loss" => Some(Self::FullValidLoss),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::TrainLoss => "train_loss",
            Self::ValidLoss => "valid_loss",
            Self::FullValidLoss => "full_valid_loss",
        }
    }

    /// This loss in one step's values. A value that is not a finite number is none.
    pub fn of(self, m: &StepMetrics) -> Option<f64> {
        match self {
            Self::TrainLoss => m.train_loss,
            Self::ValidLoss => m.valid_loss,
            Self::FullValidLoss => m.full_valid_loss,
        }
        .filter(|v| v.is_finite())
    }

    /// Whether this is a loss on the validation file.
    pub fn is_validation(self) -> bool {
        !matches!(self, Self::TrainLoss)
    }
}

/// A job's loss curves as stored: (step, value) in step order, one per loss.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Curves {
    pub train_loss: Vec<(i64, f64)>,
    pub valid_loss: Vec<(i64, f64)>,
    pub full_valid_loss: Vec<(i64, f64)>,
    /// The job's total steps, as the newest metrics event said.
    pub total_steps: Option<i64>,
}

impl Curves {
    /// Adds one step's values (steps come in ascending order).
    pub fn push(&mut self, m: &StepMetrics) {
        for (metric, series) in [
            (LossMetric::TrainLoss, &mut self.train_loss),
            (LossMetric::ValidLoss, &mut self.valid_loss),
            (LossMetric::FullValidLoss, &mut self.full_valid_loss),
        ] {
            if let Some(v) = metric.of(m) {
                series.push((m.step, v));
            }
        }
        if m.total_steps.is_some() {
            self.total_steps = m.total_steps;
        }
    }

    pub fn series(&self, metric: LossMetric) -> &[(i64, f64)] {
        match metric {
            LossMetric::TrainLoss => &self.train_loss,
            LossMetric::ValidLoss => &self.valid_loss,
            LossMetric::FullValidLoss => &self.full_valid_loss,
        }
    }

    /// The newest step with any value.
    pub fn last_step(&self) -> Option<i64> {
        [&self.train_loss, &self.valid_loss, &self.full_valid_loss]
            .iter()
            .filter_map(|s| s.last().map(|p| p.0))
            .max()
    }
}

/// The checkpoint to use instead of a job a training-quality policy stopped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BestCheckpoint {
    pub model: String,
    pub step: i64,
    /// The loss it was chosen by: `full_valid_loss` or `valid_loss` for a validation loss
    /// (the full one where the checkpoint has it), else `train_loss`.
    pub metric: String,
    pub value: f64,
}

/// Among `checkpoints`, the one with the lowest value of the loss `judged` (see
/// [`BestCheckpoint::metric`]); the earlier on a tie. None when none has that value.
pub fn best_checkpoint(checkpoints: &[Checkpoint], judged: LossMetric) -> Option<BestCheckpoint> {
    checkpoints
        .iter()
        .filter_map(|c| {
            let (metric, value) = if judged.is_validation() {
                LossMetric::FullValidLoss
                    .of(&c.metrics)
                    .map(|v| (LossMetric::FullValidLoss, v))
                    .or_else(|| {
                        LossMetric::ValidLoss
                            .of(&c.metrics)
                            .map(|v| (LossMetric::ValidLoss, v))
                    })?
            } else {
                (LossMetric::TrainLoss, LossMetric::TrainLoss.of(&c.metrics)?)
            };
            Some((c, metric, value))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2).then(a.0.step.cmp(&b.0.step)))
        .map(|(c, metric, value)| BestCheckpoint {
            model: c.model.clone(),
            step: c.step,
            metric: metric.as_str().to_owned(),
            value,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ck(step: i64, train: f64, valid: Option<f64>, full: Option<f64>) -> Checkpoint {
        Checkpoint {
            id: format!("c{step}"),
            model: format!("ft:m:ckpt-step-{step}"),
            step,
            created_at: 0,
            metrics: StepMetrics {
                step,
                train_loss: Some(train),
                valid_loss: valid,
                full_valid_loss: full,
                ..StepMetrics::default()
            },
        }
    }

    #[test]
    fn the_best_checkpoint_is_chosen_by_the_judged_loss() {
        let cks = [
            ck(100, 0.9, Some(0.7), Some(0.72)),
            ck(200, 0.5, Some(0.6), None),
            ck(300, 0.3, Some(0.8), Some(0.81)),
        ];
        // Validation: the full loss where a checkpoint has one, else the sampled one.
        let best = best_checkpoint(&cks, LossMetric::ValidLoss).unwrap();
        assert_eq!(
            (best.step, best.metric.as_str(), best.value),
            (200, "valid_loss", 0.6)
        );
        let best = best_checkpoint(&cks, LossMetric::TrainLoss).unwrap();
        assert_eq!((best.step, best.metric.as_str()), (300, "train_loss"));
        assert_eq!(best.model, "ft:m:ckpt-step-300");
        assert_eq!(best_checkpoint(&[], LossMetric::TrainLoss), None);
        // A value that is no number is no value.
        let nan = [ck(100, f64::NAN, None, None)];
        assert_eq!(best_checkpoint(&nan, LossMetric::TrainLoss), None);
    }
}
