//! Prometheus metrics. Counters and histograms are recorded where things happen; gauges that
//! describe stored state (jobs, actions, spend, last sync) are refreshed from the store at
//! scrape time, so they survive restarts and never drift from the database.

use std::sync::LazyLock;

use prometheus::{
    Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Every metric ftguard exposes.
pub struct Metrics {
    registry: Registry,
    api_requests: IntCounterVec,
    sync_duration: HistogramVec,
    reloads: IntCounterVec,
    notifications: IntCounterVec,
    jobs: IntGaugeVec,
    actions: IntGaugeVec,
    last_sync: IntGaugeVec,
    clock_offset: IntGaugeVec,
    budget_spend: GaugeVec,
    training_loss: GaugeVec,
    training_step: IntGaugeVec,
    budget_limit: GaugeVec,
}

impl Metrics {
    fn try_new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let api_requests = IntCounterVec::new(
            Opts::new(
                "ftguard_api_requests_total",
                "Requests to provider APIs by account, endpoint and HTTP status (\"error\" when no answer)",
            ),
            &["account", "endpoint", "status"],
        )?;
        let sync_duration = HistogramVec::new(
            HistogramOpts::new(
                "ftguard_sync_duration_seconds",
                "Duration of one account's sync",
            )
            .buckets(vec![
                0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
            ]),
            &["account", "result"],
        )?;
        let reloads = IntCounterVec::new(
            Opts::new(
                "ftguard_config_reloads_total",
                "Configuration reloads (SIGHUP) by result",
            ),
            &["result"],
        )?;
        let notifications = IntCounterVec::new(
            Opts::new(
                "ftguard_notifications_total",
                "Webhook notices by event and result: delivered; retrying (refused or unanswered three times, kept and tried again with backoff); expired (undelivered for a day, dropped); failed (given up without being kept). Alert on anything but delivered",
            ),
            &["event", "result"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "ftguard_build_info",
                "Always 1; the running ftguard's version",
            ),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let jobs = IntGaugeVec::new(
            Opts::new("ftguard_jobs", "Stored jobs by account and status"),
            &["account", "status"],
        )?;
        let actions = IntGaugeVec::new(
            Opts::new(
                "ftguard_actions",
                "Recorded actions by policy, action and outcome",
            ),
            &["policy", "action", "outcome"],
        )?;
        let last_sync = IntGaugeVec::new(
            Opts::new(
                "ftguard_last_successful_sync_timestamp_seconds",
                "Unix time of the last successful sync per account",
            ),
            &["account"],
        )?;
        let clock_offset = IntGaugeVec::new(
            Opts::new(
                "ftguard_clock_offset_seconds",
                "The API's clock minus this machine's per account, from the Date header of its answers at the last sync (whole seconds). Time limits are measured with this machine's clock: far from 0, jobs are acted on early (negative) or late",
            ),
            &["account"],
        )?;
        let budget_spend = GaugeVec::new(
            Opts::new(
                "ftguard_budget_spend_usd",
                "Spend (actual + projected) per budget policy and group in the current period",
            ),
            &["policy", "group"],
        )?;
        let budget_limit = GaugeVec::new(
            Opts::new(
                "ftguard_budget_limit_usd",
                "Budget limit per budget policy and group",
            ),
            &["policy", "group"],
        )?;
        let training_loss = GaugeVec::new(
            Opts::new(
                "ftguard_training_loss",
                "The newest loss a running job reported (train_loss, valid_loss, full_valid_loss), for jobs a training-quality policy watches",
            ),
            &["account", "job_id", "metric"],
        )?;
        let training_step = IntGaugeVec::new(
            Opts::new(
                "ftguard_training_step",
                "The newest training step a running job reported, for jobs a training-quality policy watches",
            ),
            &["account", "job_id"],
        )?;
        for c in [
            Box::new(api_requests.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(sync_duration.clone()),
            Box::new(reloads.clone()),
            Box::new(notifications.clone()),
            Box::new(build_info),
            Box::new(jobs.clone()),
            Box::new(actions.clone()),
            Box::new(last_sync.clone()),
            Box::new(clock_offset.clone()),
            Box::new(budget_spend.clone()),
            Box::new(budget_limit.clone()),
            Box::new(training_loss.clone()),
            Box::new(training_step.clone()),
        ] {
            registry.register(c)?;
        }
        Ok(Self {
            registry,
            api_requests,
            sync_duration,
            reloads,
            notifications,
            jobs,
            actions,
            last_sync,
            clock_offset,
            budget_spend,
            budget_limit,
            training_loss,
            training_step,
        })
    }
}

static METRICS: LazyLock<Option<Metrics>> = LazyLock::new(|| match Metrics::try_new() {
    Ok(m) => Some(m),
    Err(e) => {
        tracing::error!(error = %e, "metrics unavailable");
        None
    }
});

/// Counts one API request.
pub fn api_request(account: &str, endpoint: &str, status: Option<u16>) {
    if let Some(m) = METRICS.as_ref() {
        let status = status.map_or_else(|| "error".to_owned(), |s| s.to_string());
        m.api_requests
            .with_label_values(&[account, endpoint, &status])
            .inc();
    }
}

/// Records a sync's duration.
pub fn sync_finished(account: &str, ok: bool, seconds: f64) {
    if let Some(m) = METRICS.as_ref() {
        m.sync_duration
            .with_label_values(&[account, if ok { "ok" } else { "error" }])
            .observe(seconds);
    }
}

/// Records how far an account's API clock is from this machine's.
pub fn clock_offset(account: &str, seconds: i64) {
    if let Some(m) = METRICS.as_ref() {
        m.clock_offset.with_label_values(&[account]).set(seconds);
    }
}

/// Counts a configuration reload.
pub fn reload(ok: bool) {
    if let Some(m) = METRICS.as_ref() {
        m.reloads
            .with_label_values(&[if ok { "ok" } else { "error" }])
            .inc();
    }
}

/// Counts what became of one notice to one webhook: `delivered`; `retrying` (its first tries
/// failed: kept in the outbox); `expired` (undelivered for a day, dropped); `failed` (given
/// up without being kept).
pub fn notification(event: &str, result: &str) {
    if let Some(m) = METRICS.as_ref() {
        m.notifications.with_label_values(&[event, result]).inc();
    }
}

/// What the store holds, as the state gauges show it: read at scrape time by the layer that
/// owns the store (`App::metrics_snapshot`), so these counters know nothing above them.
#[derive(Debug, Default, Clone)]
pub struct StateSnapshot {
    /// (account, status, jobs).
    pub jobs: Vec<(String, String, i64)>,
    /// (policy, action, outcome, actions).
    pub actions: Vec<(String, String, String, i64)>,
    /// (account, unix time of its last successful sync).
    pub last_sync: Vec<(String, i64)>,
    /// (policy, group, spent and projected dollars, limit dollars).
    pub budgets: Vec<(String, String, f64, f64)>,
    /// (account, job id, metric, newest value) of running jobs with stored metrics.
    pub training_loss: Vec<(String, String, &'static str, f64)>,
    /// (account, job id, newest step) of the same.
    pub training_step: Vec<(String, String, i64)>,
}

/// Why the exposition could not be rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    #[error("metrics unavailable (the registry could not be built)")]
    Unavailable,
    #[error("cannot encode metrics: {0}")]
    Encode(String),
}

/// Sets the state gauges from `state` and renders the text exposition.
pub fn render(state: &StateSnapshot) -> Result<String, RenderError> {
    let Some(m) = METRICS.as_ref() else {
        return Err(RenderError::Unavailable);
    };
    m.jobs.reset();
    for (account, status, n) in &state.jobs {
        m.jobs.with_label_values(&[account, status]).set(*n);
    }
    m.actions.reset();
    for (policy, action, outcome, n) in &state.actions {
        m.actions
            .with_label_values(&[policy, action, outcome])
            .set(*n);
    }
    m.last_sync.reset();
    for (account, at) in &state.last_sync {
        m.last_sync.with_label_values(&[account]).set(*at);
    }
    m.budget_spend.reset();
    m.budget_limit.reset();
    for (policy, group, spend, limit) in &state.budgets {
        m.budget_spend
            .with_label_values(&[policy, group])
            .set(*spend);
        m.budget_limit
            .with_label_values(&[policy, group])
            .set(*limit);
    }
    m.training_loss.reset();
    for (account, job, metric, v) in &state.training_loss {
        m.training_loss
            .with_label_values(&[account.as_str(), job.as_str(), metric])
            .set(*v);
    }
    m.training_step.reset();
    for (account, job, step) in &state.training_step {
        m.training_step
            .with_label_values(&[account, job])
            .set(*step);
    }
    let mut buf = Vec::new();
    TextEncoder::new()
        .encode(&m.registry.gather(), &mut buf)
        .map_err(|e| RenderError::Encode(e.to_string()))?;
    String::from_utf8(buf).map_err(|e| RenderError::Encode(e.to_string()))
}
