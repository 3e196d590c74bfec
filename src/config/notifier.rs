//! `[[notifiers]]`: where notices go, as written and as resolved (the URL is a secret). Sending
//! is `notify`'s.

use serde::{Deserialize, Serialize};

use super::secret::{Secret, SecretRef};

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
    pub(crate) url: Secret,
    /// Where the URL comes from (`env SLACK_WEBHOOK_URL`), for messages.
    pub(crate) source: String,
    pub(crate) format: NotifyFormat,
}

/// Why a `[[notifiers]]` entry cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum NotifierError {
    #[error("unknown notifier kind {0:?} (known: webhook)")]
    UnknownKind(String),
    #[error("url: {0}")]
    Url(#[from] super::secret::SecretError),
    /// Names the reference, not the URL (a secret).
    #[error("url ({0}) is not a valid URL")]
    NotAUrl(String),
}

impl Notifier {
    pub fn build(c: &NotifierConfig) -> Result<Self, NotifierError> {
        if c.kind != "webhook" {
            return Err(NotifierError::UnknownKind(c.kind.clone()));
        }
        let url = c.url.resolve()?;
        reqwest::Url::parse(url.expose()).map_err(|_| NotifierError::NotAUrl(c.url.to_string()))?;
        Ok(Self {
            url,
            source: c.url.to_string(),
            format: c.format,
        })
    }

    /// The notifier for people: its format and where its URL comes from (never the URL).
    pub fn describe(&self) -> String {
        let format = match self.format {
            NotifyFormat::Json => "json",
            NotifyFormat::Slack => "slack",
        };
        format!("{format}, url from {}", self.source)
    }

    /// Where the URL comes from (`env SLACK_WEBHOOK_URL`): how the outbox names a notifier.
    pub fn source(&self) -> &str {
        &self.source
    }
}
