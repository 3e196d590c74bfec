//! Webhook notifications for grace warnings, cancels and failures: what a notice says and how
//! each webhook format shows it. Delivery (never blocking enforcement, kept until a webhook
//! takes it) is `outbox.rs`.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;

mod event;
mod outbox;

pub use event::Event;

/// How long one webhook request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The HTTP client for webhooks. A redirect is not followed and no `Referer` is sent: the
/// webhook's URL is itself a secret (Slack's carries its token), and a redirect would repeat the
/// notice to a host nobody configured. A 3xx is an error that says so.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .referer(false)
        .user_agent(concat!("ftguard/", env!("CARGO_PKG_VERSION")))
        .build()
        // Only a TLS backend that cannot start fails here, and then so would any client.
        .unwrap_or_default()
}

pub use outbox::{Deliveries, Outbox};

pub use crate::config::notifier::{Notifier, NotifierConfig, NotifyFormat};
use crate::policy::GroupNotice;

/// What happened, for people and for scripts. A notice is about a job (`account`, `job_id`),
/// an account alone (`sync_failing`, `sync_recovered`: `account`, no policy) or, for
/// `budget_threshold`, about a budget group (`group`, `period_start`, `percent`); fields that
/// do not apply are left out of the JSON.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Notice {
    pub event: Event,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub policy: String,
    pub reason: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period_start: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u32>,
    /// For `cancelled`/`paused`: the job's status and trained tokens in the API's answer
    /// (what was trained, hence billed, before it stopped).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trained_tokens: Option<i64>,
    /// For [`Event::MoreNotices`]: the event of the notices summed up, and how many.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub of_event: Option<Event>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// For an action of a training-quality policy: the checkpoint to use instead (null when
    /// the API listed none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub best_checkpoint: Option<Option<crate::model::metrics::BestCheckpoint>>,
}

impl Notice {
    /// An event and why, about nothing yet.
    fn new(event: Event, reason: &str) -> Self {
        Self {
            event,
            reason: reason.into(),
            ..Self::default()
        }
    }

    /// A notice about a job.
    pub fn job(event: Event, account: &str, job_id: &str, policy: &str, reason: &str) -> Self {
        Self {
            account: Some(account.into()),
            job_id: Some(job_id.into()),
            policy: policy.into(),
            ..Self::new(event, reason)
        }
    }

    /// A notice about an account as a whole (its syncs), from no policy.
    pub fn account(event: Event, account: &str, reason: &str) -> Self {
        Self {
            account: Some(account.into()),
            ..Self::new(event, reason)
        }
    }

    /// A budget group reaching a threshold.
    pub fn budget(n: &GroupNotice) -> Self {
        Self {
            policy: n.policy.clone(),
            group: Some(n.group.clone()),
            period_start: Some(n.period_start),
            percent: Some(n.percent),
            ..Self::new(Event::BudgetThreshold, &n.reason)
        }
    }

    /// The notice `config check --test-notifiers` sends: about nothing, from no policy.
    pub fn test(reason: &str) -> Self {
        Self::new(Event::Test, reason)
    }

    /// `count` more notices of `of_event` from `policy` in one pass, not sent one by one.
    pub fn more(of_event: Event, policy: &str, count: u32) -> Self {
        let outcome = of_event
            .outcome_filter()
            .map_or(String::new(), |o| format!(" --outcome {o}"));
        Self {
            policy: policy.into(),
            of_event: Some(of_event),
            count: Some(count),
            ..Self::new(
                Event::MoreNotices,
                &format!(
                    "{count} more {of_event} notices of this pass, not sent one by one: `ftguard actions --policy {policy}{outcome} --since 1h` lists them"
                ),
            )
        }
    }

    /// The answer to a cancel or pause: the job's status and trained tokens then.
    /// Names the checkpoint to use instead (for training-quality policies: their actions carry
    /// `best_checkpoint`, null when none was listed).
    pub fn with_best_checkpoint(
        mut self,
        best: Option<Option<&crate::model::metrics::BestCheckpoint>>,
    ) -> Self {
        self.best_checkpoint = best.map(|b| b.cloned());
        self
    }

    pub fn with_answer(mut self, status: Option<&str>, trained_tokens: Option<i64>) -> Self {
        self.status = status.map(str::to_owned);
        self.trained_tokens = trained_tokens;
        self
    }

    /// `(now cancelled, 2520100 tokens trained)` for chat, when the answer said.
    fn answer(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = &self.status {
            parts.push(format!("now {s}"));
        }
        if let Some(t) = self.trained_tokens {
            parts.push(format!("{t} tokens trained"));
        }
        match &self.best_checkpoint {
            Some(Some(b)) => parts.push(format!(
                "use checkpoint {} instead (step {}, {} {})",
                b.model,
                b.step,
                b.metric,
                crate::policy::format::loss(b.value)
            )),
            Some(None) => parts.push("no checkpoint listed".to_owned()),
            None => {}
        }
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// What it is about, for one line of chat.
    fn subject(&self) -> String {
        match (&self.group, &self.account, &self.job_id) {
            (Some(g), _, _) => format!("budget group {g}"),
            (None, Some(a), Some(j)) => format!("{a} job {j}"),
            (None, Some(a), None) => format!("account {a}"),
            _ => String::new(),
        }
    }
}

/// Why a webhook did not take a notice. Never the request's own error text, which may carry
/// the (secret) URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error(
        "refused: HTTP {0}, a redirect (not followed: it would carry the notice elsewhere; set the webhook's final URL)"
    )]
    Redirect(reqwest::StatusCode),
    #[error("refused: HTTP {0}")]
    Refused(reqwest::StatusCode),
    #[error("no answer within {}s", REQUEST_TIMEOUT.as_secs())]
    Timeout,
    #[error("could not connect")]
    Connect,
    #[error("the request failed (error not shown: it may contain the URL)")]
    Other,
}

impl Notifier {
    /// Sends one notice once, no retries (`config check --test-notifiers`).
    pub async fn try_once(
        &self,
        http: &reqwest::Client,
        notice: &Notice,
    ) -> Result<u16, DeliveryError> {
        self.post(http, &self.body(notice).to_string()).await
    }

    /// POSTs a JSON body once. The error says what happened without the error's own text,
    /// which may carry the (secret) URL.
    pub(crate) async fn post(
        &self,
        http: &reqwest::Client,
        body: &str,
    ) -> Result<u16, DeliveryError> {
        match http
            .post(self.url.expose())
            .timeout(REQUEST_TIMEOUT)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_owned())
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => Ok(r.status().as_u16()),
            Ok(r) if r.status().is_redirection() => Err(DeliveryError::Redirect(r.status())),
            Ok(r) => Err(DeliveryError::Refused(r.status())),
            Err(e) if e.is_timeout() => Err(DeliveryError::Timeout),
            Err(e) if e.is_connect() => Err(DeliveryError::Connect),
            Err(_) => Err(DeliveryError::Other),
        }
    }

    pub(crate) fn body(&self, n: &Notice) -> serde_json::Value {
        match self.format {
            NotifyFormat::Json => json!(n),
            NotifyFormat::Slack => {
                let policy = if n.policy.is_empty() {
                    String::new()
                } else {
                    format!(" (policy {})", n.policy)
                };
                json!({
                    "text": format!("ftguard: {}{policy}: {}{}", [n.event.as_str().to_owned(), n.subject()].join(" ").trim_end(), n.reason, n.answer())
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::SecretRef;

    fn notifier(format: NotifyFormat) -> Notifier {
        notifier_at("http://127.0.0.1:9/hook", format)
    }

    #[test]
    fn a_training_quality_notice_names_the_checkpoint_to_use_instead() {
        let best = crate::model::metrics::BestCheckpoint {
            model: "ft:gpt-4o-mini:org::abc:ckpt-step-300".into(),
            step: 300,
            metric: "valid_loss".into(),
            value: 0.57,
        };
        let n = Notice::job(Event::Cancelled, "prod", "ftjob-1", "early-stop", "plateau")
            .with_answer(Some("cancelled"), Some(1000))
            .with_best_checkpoint(Some(Some(&best)));
        let body = notifier(NotifyFormat::Json).body(&n);
        assert_eq!(
            body["best_checkpoint"],
            json!({"model": "ft:gpt-4o-mini:org::abc:ckpt-step-300", "step": 300, "metric": "valid_loss", "value": 0.57})
        );
        let text = notifier(NotifyFormat::Slack).body(&n)["text"].to_string();
        assert!(
            text.contains("use checkpoint ft:gpt-4o-mini:org::abc:ckpt-step-300 instead (step 300, valid_loss 0.57)"),
            "{text}"
        );
        // None listed: null, and said; other policies' notices carry no such field.
        let none = Notice::job(Event::Cancelled, "prod", "ftjob-1", "early-stop", "plateau")
            .with_best_checkpoint(Some(None));
        let body = notifier(NotifyFormat::Json).body(&none);
        assert!(body.as_object().unwrap().contains_key("best_checkpoint"));
        assert!(body["best_checkpoint"].is_null());
        let other = Notice::job(Event::Cancelled, "prod", "ftjob-1", "runtime", "ran 7h")
            .with_best_checkpoint(None);
        let body = notifier(NotifyFormat::Json).body(&other);
        assert!(!body.as_object().unwrap().contains_key("best_checkpoint"));
    }

    fn notifier_at(hook: &str, format: NotifyFormat) -> Notifier {
        let dir = tempfile::tempdir().unwrap();
        let url = dir.path().join("url");
        std::fs::write(&url, hook).unwrap();
        Notifier::build(&NotifierConfig {
            kind: "webhook".into(),
            url: SecretRef::File(url),
            format,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_flush_waits_for_deliveries_but_no_longer_than_its_limit() {
        use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
            .mount(&hook)
            .await;
        let outbox = Outbox::new(
            vec![notifier_at(&hook.uri(), NotifyFormat::Json)],
            Deliveries::default(),
            None,
        );
        outbox.send(Notice::account(Event::SyncFailing, "prod", "401"));
        let t = std::time::Instant::now();
        assert_eq!(
            outbox.deliveries().flush(Duration::from_millis(300)).await,
            1
        );
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());

        // Nothing in flight: returns at once with nothing left.
        let idle = Outbox::new(vec![], Deliveries::default(), None);
        idle.send(Notice::account(Event::SyncFailing, "prod", "401"));
        assert_eq!(idle.deliveries().flush(Duration::from_secs(30)).await, 0);
    }

    #[test]
    fn job_and_budget_notices_carry_their_own_fields() {
        let job = Notice::job(
            Event::Cancelled,
            "prod",
            "ftjob-1",
            "runtime",
            "ran 7h > 6h",
        );
        let budget = Notice::budget(&GroupNotice {
            policy: "monthly".into(),
            group: "team-a".into(),
            period_start: 1_793_491_200,
            percent: 80,
            reason: "group team-a reached 80%".into(),
        });
        let json = notifier(NotifyFormat::Json);
        let j = json.body(&job);
        assert_eq!(
            (j["account"].as_str(), j["job_id"].as_str()),
            (Some("prod"), Some("ftjob-1"))
        );
        assert!(
            j.get("group").is_none() && j.get("percent").is_none(),
            "{j}"
        );
        let b = json.body(&budget);
        assert_eq!(b["event"], "budget_threshold");
        assert_eq!(
            (b["group"].as_str(), b["percent"].as_u64()),
            (Some("team-a"), Some(80))
        );
        assert_eq!(b["period_start"], 1_793_491_200);
        assert!(
            b.get("account").is_none() && b.get("job_id").is_none(),
            "{b}"
        );

        let slack = notifier(NotifyFormat::Slack);
        assert_eq!(
            slack.body(&job)["text"],
            "ftguard: cancelled prod job ftjob-1 (policy runtime): ran 7h > 6h"
        );
        assert_eq!(
            slack.body(&budget)["text"],
            "ftguard: budget_threshold budget group team-a (policy monthly): group team-a reached 80%"
        );
        let sync = Notice::account(Event::SyncFailing, "prod", "every sync for 3m00s failed");
        let s = json.body(&sync);
        assert_eq!(s["account"], "prod");
        assert!(
            s.get("policy").is_none() && s.get("job_id").is_none() && s.get("group").is_none(),
            "{s}"
        );
        assert_eq!(
            slack.body(&sync)["text"],
            "ftguard: sync_failing account prod: every sync for 3m00s failed"
        );
    }
}
