//! Tolerant parsing of API payloads into domain types: unknown fields ignored, unknown statuses
//! kept, nullable fields optional.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use crate::model::metrics::{Checkpoint, StepMetrics};
use crate::model::{Job, JobId, JobStatus, epochs_number};

/// An answer that is not what the API specifies: which part, and how.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PayloadError(pub String);

impl From<String> for PayloadError {
    fn from(detail: String) -> Self {
        Self(detail)
    }
}

impl From<&str> for PayloadError {
    fn from(detail: &str) -> Self {
        Self(detail.to_owned())
    }
}

#[derive(Deserialize)]
struct WireJob {
    id: String,
    #[serde(default)]
    model: Option<String>,
    status: Option<String>,
    created_at: Time,
    finished_at: Option<Time>,
    trained_tokens: Option<Count>,
    estimated_finish: Option<Time>,
    fine_tuned_model: Option<String>,
    training_file: Option<String>,
    validation_file: Option<String>,
    hyperparameters: Option<WireHyper>,
    method: Option<WireMethod>,
    user_provided_suffix: Option<String>,
    metadata: Option<BTreeMap<String, Value>>,
    error: Option<Value>,
}

#[derive(Deserialize)]
struct WireHyper {
    n_epochs: Option<Value>,
}

#[derive(Deserialize)]
struct WireMethod {
    #[serde(rename = "type")]
    kind: Option<String>,
    supervised: Option<WireMethodDetail>,
    dpo: Option<WireMethodDetail>,
    reinforcement: Option<WireMethodDetail>,
}

#[derive(Deserialize)]
struct WireMethodDetail {
    hyperparameters: Option<WireHyper>,
}

/// Where each unit of a unix time starts, by magnitude. The API sends seconds; Portkey's
/// mappings of Bedrock, Vertex AI and Fireworks fine-tunes send JavaScript's `Date.getTime()`,
/// in milliseconds; a gateway may send micro- or nanoseconds. Read in the wrong unit a job looks
/// created millennia from now and no time limit is ever reached. 10^11 seconds is the year 5138,
/// as milliseconds March 1973: each unit's range ends where the next one's 1973 begins.
const MILLIS_FROM: u64 = 100_000_000_000;
const MICROS_FROM: u64 = 100_000_000_000_000;
const NANOS_FROM: u64 = 100_000_000_000_000_000;

/// A timestamp from the API in unix seconds, whatever unit it came in (by its magnitude).
fn unix_seconds(t: i64) -> i64 {
    match t.unsigned_abs() {
        a if a < MILLIS_FROM => t,
        a if a < MICROS_FROM => t / 1_000,
        a if a < NANOS_FROM => t / 1_000_000,
        _ => t / 1_000_000_000,
    }
}

/// A time as the API or a gateway in front of another provider sends it, in unix seconds: an
/// integer in seconds (the spec), milli-, micro- or nanoseconds, the same as a float, or an RFC
/// 3339 date. A time that is still implausible (before 2015, after the job was first seen) is
/// kept as sent: the store judges the job by when ftguard first saw it instead.
/// Anything else is an error, and the job is rejected (logged with its id, not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Time(i64);

impl<'de> Deserialize<'de> for Time {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TimeVisitor).map(Time)
    }
}

struct TimeVisitor;

impl serde::de::Visitor<'_> for TimeVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a unix time (seconds, milli-, micro- or nanoseconds) or an RFC 3339 date")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(unix_seconds(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v)
            .map(unix_seconds)
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        // `as` saturates; the bound keeps a float past i64 from becoming i64::MAX silently.
        if v.is_finite() && v.abs() < 9.0e18 {
            Ok(unix_seconds(crate::model::round_i64(v.trunc())))
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse::<jiff::Timestamp>()
            .map(|t| t.as_second())
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}

/// A count (trained tokens) as an integer, a whole float (`1234.0`), or a string of digits:
/// Google's APIs write 64-bit integers as JSON strings, and Portkey passes Vertex AI's
/// `totalBillableTokenCount` on as it came. Anything else rejects the job, logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Count(i64);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor).map(Count)
    }
}

struct CountVisitor;

impl serde::de::Visitor<'_> for CountVisitor {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a whole number (or a string of digits)")
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<i64, E> {
        Ok(v)
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<i64, E> {
        i64::try_from(v).map_err(|_| E::invalid_value(serde::de::Unexpected::Unsigned(v), &self))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<i64, E> {
        if v.fract() == 0.0 && v.abs() < 9.0e18 {
            Ok(crate::model::round_i64(v))
        } else {
            Err(E::invalid_value(serde::de::Unexpected::Float(v), &self))
        }
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<i64, E> {
        v.trim()
            .parse()
            .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
    }
}

/// Parses one fine-tuning job object. The error says which field was wrong.
pub fn parse_job(value: Value) -> Result<Job, PayloadError> {
    parse_job_str(&value.to_string())
}

/// Parses one job object from its JSON text, which is kept verbatim as `raw`.
pub fn parse_job_str(text: &str) -> Result<Job, PayloadError> {
    let wire: WireJob = serde_json::from_str(text).map_err(|e| e.to_string())?;
    build_job(wire, text.to_owned())
}

fn build_job(wire: WireJob, raw: String) -> Result<Job, PayloadError> {
    let method_epochs = wire.method.as_ref().and_then(|m| {
        [&m.supervised, &m.dpo, &m.reinforcement]
            .into_iter()
            .flatten()
            .find_map(|d| d.hyperparameters.as_ref().and_then(|h| h.n_epochs.clone()))
    });
    let top_epochs = wire.hyperparameters.and_then(|h| h.n_epochs);
    // A resolved number wins over "auto", wherever the API put it.
    let n_epochs = match (top_epochs, method_epochs) {
        (Some(t), Some(m)) if epochs_number(&t).is_none() && epochs_number(&m).is_some() => Some(m),
        (Some(t), _) => Some(t),
        (None, m) => m,
    }
    .filter(|v| !v.is_null());
    let metadata = wire
        .metadata
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k, s),
            other => (k, other.to_string()),
        })
        .collect();
    Ok(Job {
        id: JobId::new(wire.id),
        model: wire.model.unwrap_or_default(),
        status: JobStatus::parse(wire.status.as_deref().unwrap_or("unknown")),
        created_at: wire.created_at.0,
        finished_at: wire.finished_at.map(|t| t.0),
        trained_tokens: wire.trained_tokens.map(|c| c.0),
        estimated_finish: wire.estimated_finish.map(|t| t.0),
        fine_tuned_model: wire.fine_tuned_model,
        training_file: wire.training_file,
        validation_file: wire.validation_file,
        n_epochs,
        method: wire.method.and_then(|m| m.kind),
        suffix: wire.user_provided_suffix,
        metadata,
        // An empty object or text is no error: Portkey's Bedrock mapping sends `error: {}` on
        // every job, failed or not.
        error: wire.error.filter(|e| match e {
            Value::Null => false,
            Value::Object(o) => !o.is_empty(),
            Value::String(t) => !t.is_empty(),
            _ => true,
        }),
        raw,
    })
}

/// One page of the job list.
pub struct JobPage {
    pub jobs: Vec<Job>,
    /// Items that could not be parsed, with the reason; kept out of the store, logged.
    pub rejected: Vec<String>,
    pub has_more: bool,
    /// The id of the last item as received (parsed or not): the next page's `after`.
    pub last_id: Option<String>,
}

#[derive(Deserialize)]
struct WirePage<'a> {
    #[serde(borrow)]
    data: Vec<&'a serde_json::value::RawValue>,
    #[serde(default)]
    has_more: Option<bool>,
}

/// The id of an item, however malformed the rest is.
#[derive(Deserialize)]
struct IdOnly {
    id: Option<Value>,
}

/// Parses a list-jobs answer. A malformed item is rejected alone; a malformed envelope is an
/// error. Items are parsed straight from the body's text and kept verbatim, with no
/// intermediate JSON tree.
pub fn parse_job_page_bytes(body: &[u8]) -> Result<JobPage, PayloadError> {
    let page: WirePage = serde_json::from_slice(body).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => format!("not a job list: {e}"),
        _ => e.to_string(),
    })?;
    let mut jobs = Vec::with_capacity(page.data.len());
    let mut rejected = Vec::new();
    let mut last_id = None;
    for item in &page.data {
        let text = item.get();
        match parse_job_str(text) {
            Ok(job) => {
                last_id = Some(job.id.as_str().to_owned());
                jobs.push(job);
            }
            Err(e) => {
                // Only a rejected item needs its id dug out on its own.
                let id = serde_json::from_str::<IdOnly>(text)
                    .ok()
                    .and_then(|i| i.id)
                    .and_then(|v| v.as_str().map(str::to_owned));
                rejected.push(format!("{}: {e}", id.as_deref().unwrap_or("<no id>")));
                last_id = id;
            }
        }
    }
    Ok(JobPage {
        jobs,
        rejected,
        has_more: page.has_more.unwrap_or(false),
        last_id,
    })
}

/// [`parse_job_page_bytes`] for a value already parsed.
pub fn parse_job_page(value: Value) -> Result<JobPage, PayloadError> {
    if !value.is_object() {
        return Err("expected a JSON object with `data`".into());
    }
    match value.get("data") {
        Some(Value::Array(_)) => {}
        Some(_) => return Err("`data` is not an array".into()),
        None => return Err("missing field `data`".into()),
    }
    parse_job_page_bytes(value.to_string().as_bytes())
}

/// A fine-tuning event; `step` is set on metrics events.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    pub created_at: i64,
    pub level: Option<String>,
    pub message: Option<String>,
    pub step: Option<i64>,
}

/// Parses a list-events answer; malformed items are skipped.
pub fn parse_events(value: &Value) -> Result<Vec<Event>, PayloadError> {
    let items = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or("missing array `data`")?;
    Ok(items
        .iter()
        .filter_map(|e| {
            Some(Event {
                id: e.get("id")?.as_str()?.to_owned(),
                created_at: Time::deserialize(e.get("created_at")?).ok()?.0,
                level: e.get("level").and_then(Value::as_str).map(str::to_owned),
                message: e.get("message").and_then(Value::as_str).map(str::to_owned),
                step: e
                    .get("data")
                    .and_then(|d| d.get("step"))
                    .and_then(Value::as_i64),
            })
        })
        .collect())
}

/// One event as the training-metrics read needs it: its id and time, and a metrics event's
/// values.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsEvent {
    pub id: String,
    pub created_at: i64,
    /// For `type: "metrics"` events with a `data.step`.
    pub metrics: Option<StepMetrics>,
}

/// One page of a job's events, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPage {
    pub events: Vec<MetricsEvent>,
    pub has_more: bool,
}

/// The values of a metrics event's `data` (or a checkpoint's `metrics`): numbers the spec
/// lists; anything else is none. `step` must be a whole number of at least 0.
fn step_metrics(d: &Value, step: Option<&Value>) -> Option<StepMetrics> {
    let num = |k: &str| d.get(k).and_then(Value::as_f64).filter(|v| v.is_finite());
    let step = step
        .or_else(|| d.get("step"))?
        .as_f64()
        .filter(|s| s.is_finite() && *s >= 0.0 && s.fract() == 0.0)?;
    Some(StepMetrics {
        step: crate::model::round_i64(step),
        total_steps: num("total_steps")
            .filter(|t| *t >= 0.0)
            .map(crate::model::round_i64),
        train_loss: num("train_loss"),
        train_mean_token_accuracy: num("train_mean_token_accuracy"),
        valid_loss: num("valid_loss"),
        valid_mean_token_accuracy: num("valid_mean_token_accuracy"),
        full_valid_loss: num("full_valid_loss"),
        full_valid_mean_token_accuracy: num("full_valid_mean_token_accuracy"),
    })
}

/// Parses a list-events answer with metrics; items without an id are skipped, an event that
/// is not a metrics one (or whose step is no count) has no metrics.
pub fn parse_event_page(value: &Value) -> Result<EventPage, PayloadError> {
    let items = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or("missing array `data`")?;
    let events = items
        .iter()
        .filter_map(|e| {
            let id = e.get("id")?.as_str()?.to_owned();
            let created_at = e
                .get("created_at")
                .and_then(|t| Time::deserialize(t).ok())
                .map_or(0, |t| t.0);
            let metrics = (e.get("type").and_then(Value::as_str) == Some("metrics"))
                .then(|| e.get("data").and_then(|d| step_metrics(d, None)))
                .flatten();
            Some(MetricsEvent {
                id,
                created_at,
                metrics,
            })
        })
        .collect();
    Ok(EventPage {
        events,
        has_more: value
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

/// A page of checkpoints, each with the job id it names (for the caller to check), and whether
/// more follow.
pub type CheckpointPage = (Vec<(Option<String>, Checkpoint)>, bool);

/// Parses a list-checkpoints answer. Items missing a model or a step are skipped.
pub fn parse_checkpoint_page(value: &Value) -> Result<CheckpointPage, PayloadError> {
    let items = value
        .get("data")
        .and_then(Value::as_array)
        .ok_or("missing array `data`")?;
    let checkpoints = items
        .iter()
        .filter_map(|c| {
            let metrics = c.get("metrics").cloned().unwrap_or(Value::Null);
            let metrics = step_metrics(&metrics, c.get("step_number"))?;
            Some((
                c.get("fine_tuning_job_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                Checkpoint {
                    id: c.get("id")?.as_str()?.to_owned(),
                    model: c.get("fine_tuned_model_checkpoint")?.as_str()?.to_owned(),
                    step: metrics.step,
                    created_at: c
                        .get("created_at")
                        .and_then(|t| Time::deserialize(t).ok())
                        .map_or(0, |t| t.0),
                    metrics,
                },
            ))
        })
        .collect();
    Ok((
        checkpoints,
        value
            .get("has_more")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    ))
}

/// File metadata from `GET /files/{id}`.
#[derive(Debug, Clone, Deserialize)]
pub struct FileMeta {
    pub id: String,
    #[serde(default)]
    pub bytes: Option<i64>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub purpose: Option<String>,
}

/// The message of an error body: OpenAI's `{"error":{"message"}}`, Portkey's `{"message"}`,
/// or the start of a plain-text/HTML body.
/// The visible text of a small web page, tags dropped and blanks collapsed, cut at 120 chars.
fn page_text(html: &str) -> String {
    let mut text = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => {
                in_tag = true;
                text.push(' ');
            }
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    squeeze(&text, 120)
}

/// Words of `text` joined by single blanks (line breaks and control characters are blanks),
/// cut at `max` characters.
fn squeeze(text: &str, max: usize) -> String {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
        .collect();
    words.join(" ").chars().take(max).collect()
}

pub fn error_message(body: &str) -> String {
    if let Ok(v) = serde_json::from_str::<Value>(body) {
        if let Some(m) = v.pointer("/error/message").and_then(Value::as_str) {
            return m.to_owned();
        }
        if let Some(m) = v.get("message").and_then(Value::as_str) {
            return m.to_owned();
        }
    }
    // A web page is not an API answer: its title says more than its first 200 characters.
    if body.trim_start().starts_with('<') {
        let title = body
            .find("<title>")
            .map(|i| &body[i + 7..])
            .and_then(|t| t.find("</title>").map(|j| t[..j].trim()))
            .filter(|t| !t.is_empty());
        return match title {
            Some(t) => format!("an HTML page titled {t:?}, not an API answer"),
            None => format!("an HTML page, not an API answer: {}", page_text(body)),
        };
    }
    // Line breaks become blanks, not glued words; runs of blanks become one.
    let text = squeeze(body, 200);
    if text.is_empty() {
        "(empty body)".into()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn keeps_unknown_status_and_ignores_unknown_fields() {
        let job = parse_job(json!({"id":"ftjob-1","model":"m","status":"paused","created_at":5,"new_field":{"x":1}})).unwrap();
        assert_eq!(job.status, JobStatus::Other("paused".into()));
        assert!(!job.status.is_terminal());
    }

    /// Portkey's mapping of a Bedrock job (`Date.getTime()`: milliseconds) beside an OpenAI
    /// one (seconds): both in seconds once parsed, the payload kept as it came.
    #[test]
    fn timestamps_in_milliseconds_are_read_as_such() {
        let text = r#"{"id":"arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Amodel-customization-job%2Fx","object":"finetune","status":"cancelled","created_at":1795869000123,"finished_at":1795872600999,"estimated_finish":1795876200000,"model":"amazon.titan-text-lite-v1"}"#;
        let job = parse_job_str(text).unwrap();
        assert_eq!(job.created_at, 1_795_869_000);
        assert_eq!(job.finished_at, Some(1_795_872_600));
        assert_eq!(job.estimated_finish, Some(1_795_876_200));
        assert_eq!(job.raw, text);
        let openai = parse_job(json!({"id":"ftjob-1","model":"m","status":"running",
            "created_at":1_795_869_000,"finished_at":null,"estimated_finish":99_999_999_999_i64}))
        .unwrap();
        assert_eq!(openai.created_at, 1_795_869_000);
        assert_eq!(openai.finished_at, None);
        // The last second read as seconds (year 5138), the first read as milliseconds.
        assert_eq!(openai.estimated_finish, Some(99_999_999_999));
        assert_eq!(
            unix_seconds(i64::try_from(MILLIS_FROM).unwrap()),
            100_000_000
        );
        // The same instant in every unit a gateway may send it in.
        for t in [
            1_795_869_000_i64,
            1_795_869_000_123,
            1_795_869_000_123_456,
            1_795_869_000_123_456_789,
        ] {
            let job =
                parse_job(json!({"id":"ftjob-u","model":"m","status":"running","created_at":t}))
                    .unwrap();
            assert_eq!(job.created_at, 1_795_869_000, "{t}");
        }
        // The extremes are read, never overflow; the store judges them implausible.
        assert_eq!(unix_seconds(i64::MIN), i64::MIN / 1_000_000_000);
        assert_eq!(unix_seconds(i64::MAX), i64::MAX / 1_000_000_000);
        assert_eq!(unix_seconds(-5), -5);
        let events = parse_events(&json!({"data":[
            {"id":"e1","created_at":1_795_869_000_500_i64,"level":"info","message":"Step 5/10","data":{"step":5}},
            {"id":"e2","created_at":1_795_869_000,"level":"info","message":"Step 4/10"}]}))
        .unwrap();
        assert_eq!(events[0].created_at, 1_795_869_000);
        assert_eq!(events[1].created_at, 1_795_869_000);
    }

    /// A job as Portkey maps Vertex AI's once it has trained: Google writes 64-bit integers as
    /// strings, so the token count and the epochs come as strings of digits.
    #[test]
    fn counts_and_epochs_as_strings_of_digits() {
        let job = parse_job(json!({"id":"6112","object":"finetune","status":"succeeded",
            "created_at":1_795_869_000_123_i64,"finished_at":1_795_872_600_000_i64,
            "model":"gemini-2.0-flash-001","trained_tokens":"123456",
            "hyperparameters":{"batch_size":"ADAPTER_SIZE_FOUR","learning_rate_multiplier":1.0,"n_epochs":"3"}}))
        .unwrap();
        assert_eq!(job.trained_tokens, Some(123_456));
        assert_eq!(job.resolved_epochs(), Some(3.0));
        let tokens = |v: Value| {
            parse_job(json!({"id":"a","model":"m","status":"succeeded","created_at":1,"trained_tokens":v}))
                .map(|j| j.trained_tokens)
        };
        assert_eq!(tokens(json!(1234.0)), Ok(Some(1234)));
        assert_eq!(tokens(json!(null)), Ok(None));
        for bad in [json!(12.5), json!("many"), json!(-1.5e300)] {
            assert!(
                tokens(bad.clone()).unwrap_err().0.contains("whole number"),
                "{bad}"
            );
        }
        // "auto" stays unresolved; a number under `method` wins over it, a string one too.
        let auto = parse_job(
            json!({"id":"a","model":"m","status":"running","created_at":1,
            "hyperparameters":{"n_epochs":"auto"},
            "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":"4"}}}}),
        )
        .unwrap();
        assert_eq!(auto.resolved_epochs(), Some(4.0));
    }

    /// Every form of a time a gateway may send, and what is still refused.
    #[test]
    fn times_in_every_form() {
        let at = |v: Value| {
            parse_job(json!({"id":"a","model":"m","status":"running","created_at":v}))
                .map(|j| j.created_at)
        };
        for (v, want) in [
            (json!(1_795_869_000), 1_795_869_000),
            (json!(1_795_869_000_999_i64), 1_795_869_000),
            (json!(1_795_869_000.75), 1_795_869_000),
            (json!(1_795_869_000_123.0), 1_795_869_000),
            (json!("2026-11-28T09:10:00Z"), 1_795_857_000),
            (json!("2026-11-28T10:10:00.5+01:00"), 1_795_857_000),
            (json!(0), 0),
        ] {
            assert_eq!(at(v.clone()), Ok(want), "{v}");
        }
        for bad in [
            json!("yesterday"),
            json!(null),
            json!(u64::MAX),
            json!(1e300),
            json!([1]),
        ] {
            let e = at(bad.clone()).unwrap_err();
            assert!(e.0.contains("unix time"), "{bad}: {e}");
        }
    }

    #[test]
    fn prefers_resolved_epochs_from_method() {
        let job = parse_job(
            json!({"id":"a","model":"m","status":"running","created_at":1,
            "hyperparameters":{"n_epochs":"auto"},
            "method":{"type":"supervised","supervised":{"hyperparameters":{"n_epochs":4}}}}),
        )
        .unwrap();
        assert_eq!(job.resolved_epochs(), Some(4.0));
        assert_eq!(job.method.as_deref(), Some("supervised"));
    }

    #[test]
    fn rejects_a_bad_item_but_keeps_the_page() {
        let page = parse_job_page(json!({"object":"list","has_more":true,"data":[
            {"id":"a","model":"m","status":"queued","created_at":1},
            {"id":"b","created_at":"yesterday"}]}))
        .unwrap();
        assert_eq!(page.jobs.len(), 1);
        assert_eq!(page.rejected.len(), 1);
        assert!(page.rejected[0].starts_with("b:"), "{:?}", page.rejected);
        assert_eq!(page.last_id.as_deref(), Some("b"));
        assert!(page.has_more);
    }

    #[test]
    fn error_message_shapes() {
        assert_eq!(
            error_message(r#"{"error":{"message":"Invalid API key"}}"#),
            "Invalid API key"
        );
        assert_eq!(
            error_message(r#"{"status":"failure","message":"Something went wrong"}"#),
            "Something went wrong"
        );
        // A web page (a proxy's error, a wrong base_url) by its title, else its text.
        assert_eq!(
            error_message("<html>Bad Gateway</html>"),
            "an HTML page, not an API answer: Bad Gateway"
        );
        assert_eq!(
            error_message(
                "<!DOCTYPE html>\n<html><head><title> 404 Not Found </title></head><body><h1>Not Found</h1></body></html>"
            ),
            "an HTML page titled \"404 Not Found\", not an API answer"
        );
        assert_eq!(
            error_message("upstream\nconnect error"),
            "upstream connect error"
        );
        assert_eq!(error_message(""), "(empty body)");
    }
}
