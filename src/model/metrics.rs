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
