//! A simulated job: a timeline of phases, and what cancel/pause did to it.

use std::collections::BTreeMap;

use serde_json::{Value, json};

/// A job on the simulator's clock.
#[derive(Debug, Clone)]
pub struct SimJob {
    pub id: String,
    pub model: String,
    pub created_at: i64,
    /// Seconds spent validating, queued and running.
    pub validating: i64,
    pub queued: i64,
    pub running: i64,
    /// How the job ends if left alone: succeeded or failed.
    pub outcome: String,
    pub tokens_per_sec: i64,
    pub training_file: String,
    pub n_epochs: Value,
    pub method: String,
    pub suffix: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// No training step is reported after this many seconds of running.
    pub stall_after: Option<i64>,
    pub cancelled_at: Option<i64>,
    pub paused_at: Option<i64>,
    /// Overrides the timeline with a status the spec does not list.
    pub odd_status: Option<String>,
    /// Training metrics: a loss curve published as metrics events, a step at a time, with
    /// checkpoints at the end of each epoch. None: a step a minute, no checkpoints.
    pub curve: Option<LossCurve>,
    pub validation_file: Option<String>,
}

/// The shape of a simulated loss curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CurveShape {
    /// Still improving at the end: `0.5 + 2 e^(-step / (total / 2))`.
    Converging,
    /// Flat after the first tenth: `0.6 + 2 e^(-step / (total / 30))`; its validation loss
    /// rises again after a quarter of the steps (it overfits).
    Plateau,
    /// Like a plateau until step `at`, then three times its loss.
    Diverging { at: i64 },
}

/// A job's training metrics: `steps_per_sec` steps a second up to `total_steps`, the loss
/// following `shape` with `noise` (relative, Gaussian, drawn from the step and `seed`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LossCurve {
    pub shape: CurveShape,
    pub total_steps: i64,
    pub steps_per_sec: i64,
    pub noise: f64,
    pub seed: u64,
}

impl LossCurve {
    fn base(&self, step: i64) -> f64 {
        let s = step as f64;
        let total = self.total_steps.max(1) as f64;
        match self.shape {
            CurveShape::Converging => 0.5 + 2.0 * (-s / (total / 2.0)).exp(),
            CurveShape::Plateau => 0.6 + 2.0 * (-s / (total / 30.0)).exp(),
            CurveShape::Diverging { at } => {
                let plateau = 0.6 + 2.0 * (-s / (total / 30.0)).exp();
                if step < at { plateau } else { 3.0 * plateau }
            }
        }
    }

    /// A deterministic standard normal draw for (seed, step, which).
    fn gauss(&self, step: i64, which: u64) -> f64 {
        let mut x = self
            .seed
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .wrapping_add(step.cast_unsigned().wrapping_mul(0xBF58_476D_1CE4_E5B9))
            .wrapping_add(which);
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        };
        let (u1, u2) = (next().max(1e-12), next());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// The training loss reported at `step`.
    pub fn train_loss(&self, step: i64) -> f64 {
        self.base(step) * (1.0 + self.noise * self.gauss(step, 1)).max(0.05)
    }

    /// The validation loss at `step` (without noise on the full one).
    pub fn valid_loss(&self, step: i64, full: bool) -> f64 {
        let overfit = match self.shape {
            CurveShape::Plateau => 1.0 + 0.0005 * (step - self.total_steps / 4).max(0) as f64,
            _ => 1.0,
        };
        let v = 1.05 * self.base(step) * overfit;
        if full {
            v
        } else {
            v * (1.0 + self.noise / 3.0 * self.gauss(step, 2)).max(0.05)
        }
    }
}

const FOREVER: i64 = 10 * 365 * 86_400;

/// The `n`th id of a generated history, shaped like the API's ("ftjob-" and 24 letters and
/// digits that look random): ids in no particular order, as a real account's are, so that
/// syncs and benchmarks meet the same key order as in production.
pub fn history_id(n: u64) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    // splitmix64: a bijection, so distinct n give distinct ids.
    let mut x = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^= x >> 31;
    let mut id = String::with_capacity(30);
    id.push_str("ftjob-");
    let mut v = u128::from(x) << 64 | u128::from(n);
    for _ in 0..24 {
        id.push(char::from(ALPHABET[(v % 62) as usize]));
        v /= 62;
    }
    id
}

impl SimJob {
    /// A job created `age` seconds before `now` that is in `status` for the foreseeable future
    /// (`succeeded`, `failed` and `cancelled` ended just now).
    pub fn in_status(id: &str, status: &str, age: i64, now: i64) -> Self {
        let mut j = Self {
            id: id.into(),
            model: "gpt-4o-mini-2024-07-18".into(),
            created_at: now - age,
            validating: 0,
            queued: 0,
            running: 0,
            outcome: "succeeded".into(),
            tokens_per_sec: 100,
            training_file: format!("file-{id}"),
            n_epochs: json!("auto"),
            method: "supervised".into(),
            suffix: None,
            metadata: BTreeMap::new(),
            stall_after: None,
            cancelled_at: None,
            paused_at: None,
            odd_status: None,
            curve: None,
            validation_file: None,
        };
        match status {
            "validating_files" => j.validating = FOREVER,
            "queued" => j.queued = FOREVER,
            "running" => j.running = FOREVER,
            "succeeded" | "failed" => {
                j.running = age.max(1);
                j.outcome = status.into();
            }
            "cancelled" => {
                j.running = FOREVER;
                j.cancelled_at = Some(now);
            }
            other => {
                j.running = FOREVER;
                j.odd_status = Some(other.into());
            }
        }
        j
    }

    /// A job with an explicit timeline, created `age` seconds before `now`.
    pub fn timeline(
        id: &str,
        age: i64,
        now: i64,
        validating: i64,
        queued: i64,
        running: i64,
    ) -> Self {
        let mut j = Self::in_status(id, "running", age, now);
        (j.validating, j.queued, j.running) = (validating, queued, running);
        j
    }

    /// Puts the job in `status` from `now` on, keeping everything else.
    pub fn set_status(&mut self, status: &str, now: i64) {
        let fresh = Self::in_status(&self.id, status, now - self.created_at, now);
        (self.validating, self.queued, self.running, self.outcome) =
            (fresh.validating, fresh.queued, fresh.running, fresh.outcome);
        (self.cancelled_at, self.paused_at, self.odd_status) =
            (fresh.cancelled_at, None, fresh.odd_status);
    }

    /// Publishes a loss curve: training runs `total_steps / steps_per_sec` seconds from when
    /// the job starts running, with a validation file and 3 epochs.
    pub fn with_curve(mut self, shape: CurveShape, total_steps: i64, steps_per_sec: i64) -> Self {
        let rate = steps_per_sec.max(1);
        self.curve = Some(LossCurve {
            shape,
            total_steps,
            steps_per_sec: rate,
            noise: 0.1,
            seed: self
                .id
                .bytes()
                .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b))),
        });
        self.running = total_steps / rate;
        self.n_epochs = json!(3);
        self.validation_file = Some(format!("file-valid-{}", self.id));
        self
    }

    /// Steps of a curve trained by `now`.
    pub fn steps_done(&self, now: i64) -> i64 {
        self.curve.map_or(0, |c| {
            (self.trained_secs(now).saturating_mul(c.steps_per_sec)).min(c.total_steps)
        })
    }

    /// The metrics event of `step`.
    pub fn metrics_event(&self, step: i64) -> Option<Value> {
        let c = self.curve?;
        let per_epoch = (c.total_steps / 3).max(1);
        let mut data = json!({
            "step": step, "total_steps": c.total_steps,
            "train_loss": c.train_loss(step), "train_mean_token_accuracy": 0.8,
        });
        if step % 10 == 0 {
            data["valid_loss"] = json!(c.valid_loss(step, false));
            data["valid_mean_token_accuracy"] = json!(0.78);
        }
        if step % per_epoch == 0 {
            data["full_valid_loss"] = json!(c.valid_loss(step, true));
            data["full_valid_mean_token_accuracy"] = json!(0.79);
        }
        let at = self.running_from() + step / c.steps_per_sec.max(1);
        Some(json!({
            "object": "fine_tuning.job.event", "id": format!("ftevent-{}-{step}", self.id),
            "created_at": at, "level": "info", "message": format!("Step {step}/{}: training loss={:.4}", c.total_steps, c.train_loss(step)),
            "type": "metrics", "data": data,
        }))
    }

    /// Checkpoints at the end of each epoch trained by `now`, newest first.
    pub fn checkpoints(&self, now: i64) -> Vec<Value> {
        let Some(c) = self.curve else {
            return Vec::new();
        };
        let per_epoch = (c.total_steps / 3).max(1);
        let done = self.steps_done(now);
        (1..=3)
            .map(|k| k * per_epoch)
            .filter(|s| *s <= done)
            .rev()
            .map(|step| {
                json!({
                    "object": "fine_tuning.job.checkpoint", "id": format!("ftckpt-{}-{step}", self.id),
                    "created_at": self.running_from() + step / c.steps_per_sec.max(1),
                    "fine_tuned_model_checkpoint": format!("ft:{}:sim::{}:ckpt-step-{step}", self.model, self.id),
                    "fine_tuning_job_id": self.id, "step_number": step,
                    "metrics": {"step": step, "train_loss": c.train_loss(step), "valid_loss": c.valid_loss(step, false),
                                "full_valid_loss": c.valid_loss(step, true), "train_mean_token_accuracy": 0.8},
                })
            })
            .collect()
    }

    pub fn with_metadata(mut self, k: &str, v: &str) -> Self {
        self.metadata.insert(k.into(), v.into());
        self
    }

    pub fn with_model(mut self, m: &str) -> Self {
        self.model = m.into();
        self
    }

    fn running_from(&self) -> i64 {
        self.created_at + self.validating + self.queued
    }

    fn end(&self) -> i64 {
        self.running_from() + self.running
    }

    pub fn status(&self, now: i64) -> String {
        if self.cancelled_at.is_some_and(|c| c <= now) {
            return "cancelled".into();
        }
        if self.paused_at.is_some() {
            return "paused".into();
        }
        if let Some(s) = &self.odd_status {
            return s.clone();
        }
        if now < self.created_at + self.validating {
            "validating_files".into()
        } else if now < self.running_from() {
            "queued".into()
        } else if now < self.end() {
            "running".into()
        } else {
            self.outcome.clone()
        }
    }

    pub fn is_terminal(&self, now: i64) -> bool {
        matches!(
            self.status(now).as_str(),
            "succeeded" | "failed" | "cancelled"
        )
    }

    /// Seconds of training done by `at`.
    fn trained_secs(&self, at: i64) -> i64 {
        let stop = [
            Some(at),
            self.cancelled_at,
            self.paused_at,
            Some(self.end()),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(at);
        (stop - self.running_from()).max(0)
    }

    /// Unix times of training steps reported by `now` (one a minute while running).
    pub fn step_times(&self, now: i64) -> Vec<i64> {
        let mut trained = self.trained_secs(now);
        if let Some(s) = self.stall_after {
            trained = trained.min(s);
        }
        (1..=trained / 60)
            .map(|k| self.running_from() + k * 60)
            .collect()
    }

    /// The job object as the API returns it.
    pub fn to_json(&self, now: i64) -> Value {
        let status = self.status(now);
        let terminal = matches!(status.as_str(), "succeeded" | "failed" | "cancelled");
        let finished_at = terminal.then(|| self.cancelled_at.unwrap_or(self.end()).min(now));
        let trained = terminal.then(|| self.trained_secs(now) * self.tokens_per_sec);
        // A job set to run forever has no estimate (the API sends null when it has none),
        // rather than one ten years out.
        let estimated_finish = (status == "running" && self.running < FOREVER).then(|| self.end());
        json!({
            "object": "fine_tuning.job",
            "id": self.id,
            "model": self.model,
            "created_at": self.created_at,
            "finished_at": finished_at,
            "fine_tuned_model": (status == "succeeded").then(|| format!("ft:{}:sim::{}", self.model, self.id)),
            "organization_id": "org-sim",
            "result_files": [],
            "status": status,
            "validation_file": self.validation_file,
            "training_file": self.training_file,
            "hyperparameters": {"n_epochs": self.n_epochs, "batch_size": "auto", "learning_rate_multiplier": "auto"},
            "trained_tokens": trained,
            "error": if status == "failed" { json!({"code": "sim_failure", "message": "simulated failure", "param": null}) } else { Value::Null },
            "seed": 42,
            "estimated_finish": estimated_finish,
            "integrations": [],
            "user_provided_suffix": self.suffix,
            "metadata": if self.metadata.is_empty() { Value::Null } else { json!(self.metadata) },
            "method": {"type": self.method, self.method.clone(): {"hyperparameters": {"n_epochs": self.n_epochs}}},
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{SimJob, history_id};

    #[test]
    fn only_jobs_that_will_finish_have_an_estimate() {
        let now = 1_800_000_000;
        let forever = SimJob::in_status("ftjob-a", "running", 3600, now).to_json(now);
        assert!(forever["estimated_finish"].is_null(), "{forever}");
        let ending = SimJob::timeline("ftjob-b", 3600, now, 0, 0, 7200).to_json(now);
        assert_eq!(ending["estimated_finish"], now + 3600);
    }

    #[test]
    fn history_ids_are_distinct_api_shaped_and_unordered() {
        let ids: Vec<String> = (0..10_000).map(history_id).collect();
        let distinct: std::collections::HashSet<&String> = ids.iter().collect();
        assert_eq!(distinct.len(), ids.len());
        assert!(ids.iter().all(|id| id.len() == 30
            && id.starts_with("ftjob-")
            && id[6..].bytes().all(|b| b.is_ascii_alphanumeric())));
        // Not sorted either way: key order is as scattered as a real account's.
        let ascending = ids.windows(2).filter(|w| w[0] < w[1]).count();
        assert!((3_000..7_000).contains(&ascending), "{ascending}");
    }
}
