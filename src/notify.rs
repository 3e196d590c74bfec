//! Webhook notifications for grace warnings, cancels and failures. Delivery failures are
//! logged and retried a few times, never allowed to block enforcement.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::secret::{Secret, SecretRef};

/// `[[notifiers]]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    #[serde(default = "default_kind")]
    pub kind: String,
    pub url: SecretRef,
    #[serde(default)]
    pub format: NotifyFormat,
}

fn default_kind() -> String {
    "webhook".into()
}

/// Body shape of a webhook.
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    #[default]
    Json,
    Slack,
}

/// A ready webhook: the URL is a secret (Slack URLs carry their token).
#[derive(Debug, Clone)]
pub struct Notifier {
    url: Secret,
    format: NotifyFormat,
}

/// What happened, for people and for scripts.
#[derive(Debug, Clone, Serialize)]
pub struct Notice {
    /// `grace_warning`, `cancelled`, `paused`, `cancel_failed`, `held`, `cleared`, `notify`.
    pub event: String,
    pub account: String,
    pub job_id: String,
    pub policy: String,
    pub reason: String,
}

impl Notifier {
    pub fn build(c: &NotifierConfig) -> Result<Self, String> {
        if c.kind != "webhook" {
            return Err(format!(
                "unknown notifier kind {:?} (known: webhook)",
                c.kind
            ));
        }
        let url = c.url.resolve().map_err(|e| format!("url: {e}"))?;
        reqwest::Url::parse(url.expose())
            .map_err(|_| format!("url ({}) is not a valid URL", c.url))?;
        Ok(Self {
            url,
            format: c.format,
        })
    }

    fn body(&self, n: &Notice) -> serde_json::Value {
        match self.format {
            NotifyFormat::Json => json!(n),
            NotifyFormat::Slack => json!({
                "text": format!("ftguard: {} {} job {} (policy {}): {}", n.event, n.account, n.job_id, n.policy, n.reason)
            }),
        }
    }
}

/// Sends a notice to every notifier in the background; returns at once.
pub fn send_all(http: &reqwest::Client, notifiers: &[Notifier], notice: Notice) {
    for n in notifiers {
        let http = http.clone();
        let body = n.body(&notice);
        let url = n.url.clone();
        tokio::spawn(async move {
            for attempt in 1..=3u32 {
                match http
                    .post(url.expose())
                    .timeout(Duration::from_secs(10))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status().is_success() => return,
                    Ok(r) => tracing::warn!(
                        status = r.status().as_u16(),
                        attempt,
                        "webhook notification refused"
                    ),
                    // Not the error itself: its text may carry the URL, which is secret.
                    Err(_) => {
                        tracing::warn!(attempt, "webhook notification could not be delivered")
                    }
                }
                tokio::time::sleep(Duration::from_secs(2u64.pow(attempt))).await;
            }
        });
    }
}
