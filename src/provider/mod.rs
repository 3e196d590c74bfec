//! OpenAI-compatible fine-tuning API client, one per account: list (paged), retrieve, events,
//! files, cancel, pause. Timeouts and bounded retries live here; nothing else talks HTTP to
//! the provider.

pub mod clock;
mod error;
mod path;
pub mod payload;
pub mod retry;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use serde_json::Value;

pub use error::{ProviderError, TransportKind};
pub use payload::{Event, FileMeta, JobPage};
use retry::RetryOn;

use crate::config::Account;
use crate::model::{AccountName, Job};

/// A client for one account. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    account: Account,
    http: reqwest::Client,
    clock: clock::ClockOffset,
}

impl Client {
    /// Builds the HTTP client with the account's headers and timeouts.
    pub fn new(account: Account) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .default_headers(account.headers.clone())
            .connect_timeout(account.connect_timeout)
            .timeout(account.request_timeout)
            .user_agent(concat!("ftguard/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ProviderError::Transport {
                account: account.name.to_string(),
                endpoint: "client setup".into(),
                kind: TransportKind::Other,
                detail: e.to_string(),
            })?;
        Ok(Self {
            account,
            http,
            clock: clock::ClockOffset::default(),
        })
    }

    pub fn account(&self) -> &AccountName {
        &self.account.name
    }

    /// How far the API's clock is from this machine's, as its answers say.
    pub fn clock(&self) -> &clock::ClockOffset {
        &self.clock
    }

    pub fn max_pages(&self) -> u32 {
        self.account.max_pages
    }

    /// The account's base URL with `segments` appended, each one segment (`path::segment`).
    fn url(&self, segments: &[&str]) -> reqwest::Url {
        let mut url = self.account.base_url.clone();
        let mut p = url.path().trim_end_matches('/').to_owned();
        for s in segments {
            p.push('/');
            p.push_str(&path::segment(s));
        }
        url.set_path(&p);
        url
    }

    /// Sends with retries; returns the successful response (2xx) or the last error.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        retry_on: RetryOn,
        timeout: Option<Duration>,
    ) -> Result<reqwest::Response, ProviderError> {
        let endpoint = endpoint_name(&method, segments);
        let url = self.url(segments);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url.clone()).query(query);
            if let Some(t) = timeout {
                req = req.timeout(t);
            }
            let started = std::time::Instant::now();
            let sent = req.send().await;
            crate::metrics::api_request(
                self.account.name.as_str(),
                &endpoint,
                sent.as_ref().ok().map(|r| r.status().as_u16()),
            );
            let (err, retry_after) = match sent {
                Ok(resp) if resp.status().is_success() => {
                    self.clock.observe(
                        resp.headers().get(reqwest::header::DATE),
                        std::time::SystemTime::now(),
                    );
                    tracing::debug!(
                        endpoint,
                        status = resp.status().as_u16(),
                        elapsed_ms = started.elapsed().as_millis() as u64,
                        "api request"
                    );
                    return Ok(resp);
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after =
                        retry::parse_retry_after(resp.headers(), std::time::SystemTime::now());
                    // Portkey marks the errors it makes itself, as opposed to the provider's.
                    let by_gateway = resp
                        .headers()
                        .get("x-portkey-gateway-exception")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
                    let body = resp.text().await.unwrap_or_default();
                    tracing::debug!(endpoint, status, "api request failed");
                    (
                        ProviderError::Status {
                            account: self.account.name.to_string(),
                            endpoint: endpoint.clone(),
                            status,
                            message: payload::error_message(&body)
                                + if by_gateway {
                                    " (said by the Portkey gateway, not the provider)"
                                } else {
                                    ""
                                }
                                + &self.hint(status, &endpoint),
                            by_gateway,
                        },
                        retry_after,
                    )
                }
                Err(e) => (self.transport_error(&endpoint, &e), None),
            };
            let retryable = match retry_on {
                RetryOn::Transient => match &err {
                    ProviderError::Status { status, .. } => retry::retryable_status(*status),
                    _ => true,
                },
                RetryOn::NotApplied => err.surely_not_applied(),
                RetryOn::Never => false,
            };
            if !retryable || attempt >= self.account.max_attempts {
                return Err(err);
            }
            let delay = retry::backoff(attempt, retry_after, self.account.max_retry_after);
            tracing::warn!(account = %self.account.name, endpoint, attempt, delay_ms = delay.as_millis() as u64, error = %err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// For 401 and 403: which credentials were sent (by reference), or that none were, so
    /// the operator knows what to check without reading the configuration. For a 404 from the
    /// job list, which always exists: the URL asked, so a wrong `base_url` is plain.
    fn hint(&self, status: u16, endpoint: &str) -> String {
        if status == 404 && endpoint == "GET /fine_tuning/jobs" {
            let mut url = self.url(&["fine_tuning", "jobs"]);
            // Never print credentials written into the URL (user info, or a key in the query).
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            return format!(
                " (no fine-tuning API at {url}: check base_url, which usually ends in /v1)"
            );
        }
        if !matches!(status, 401 | 403) {
            return String::new();
        }
        if self.account.credentials.is_empty() {
            " (this account sends no credentials: set bearer_token, or portkey_api_key for Portkey)"
                .into()
        } else {
            format!(" (sent {})", self.account.credentials.join(", "))
        }
    }

    fn transport_error(&self, endpoint: &str, e: &reqwest::Error) -> ProviderError {
        let kind = if e.is_connect() {
            TransportKind::Connect
        } else if e.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Other
        };
        // Walk the source chain for the useful part ("connection refused"), without the URL.
        let mut detail = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            detail = s.to_string();
            src = s.source();
        }
        if detail.is_empty() {
            detail = e.to_string();
        }
        ProviderError::Transport {
            account: self.account.name.to_string(),
            endpoint: endpoint.to_owned(),
            kind,
            detail,
        }
    }

    async fn json(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        retry_on: RetryOn,
    ) -> Result<Value, ProviderError> {
        self.parsed(method, segments, query, retry_on, |body| {
            serde_json::from_slice::<Value>(body).map_err(|e| e.to_string())
        })
        .await
    }

    /// Sends, reads the body and parses it. A body cut off mid-way, not JSON or not of the
    /// expected shape is retried like a 5xx for reads: gateways produce all three.
    async fn parsed<T>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        retry_on: RetryOn,
        parse: impl Fn(&[u8]) -> Result<T, String>,
    ) -> Result<T, ProviderError> {
        let endpoint = endpoint_name(&method, segments);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let resp = self
                .send(method.clone(), segments, query, retry_on, None)
                .await?;
            let status = resp.status().as_u16();
            let result = match resp.bytes().await {
                Ok(body) => parse(&body).map_err(|e| ProviderError::Decode {
                    account: self.account.name.to_string(),
                    endpoint: endpoint.clone(),
                    status,
                    detail: format!(
                        "{e} (body starts {:?})",
                        payload::error_message(&String::from_utf8_lossy(
                            &body[..body.len().min(120)]
                        ))
                    ),
                }),
                Err(e) => Err(self.transport_error(&endpoint, &e)),
            };
            match result {
                Ok(v) => return Ok(v),
                Err(e) if retry_on == RetryOn::Transient && attempt < self.account.max_attempts => {
                    let delay = retry::backoff(attempt, None, self.account.max_retry_after);
                    tracing::warn!(account = %self.account.name, endpoint, attempt, error = %e, "retrying unreadable answer");
                    tokio::time::sleep(delay).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn decode<T>(&self, endpoint: &str, r: Result<T, String>) -> Result<T, ProviderError> {
        r.map_err(|detail| ProviderError::Decode {
            account: self.account.name.to_string(),
            endpoint: endpoint.to_owned(),
            status: 200,
            detail,
        })
    }

    /// One page of jobs, newest first (`limit=100`).
    pub async fn list_jobs_page(&self, after: Option<&str>) -> Result<JobPage, ProviderError> {
        let mut query = vec![("limit", "100")];
        if let Some(a) = after {
            query.push(("after", a));
        }
        self.parsed(
            Method::GET,
            &["fine_tuning", "jobs"],
            &query,
            RetryOn::Transient,
            payload::parse_job_page_bytes,
        )
        .await
    }

    /// The newest job alone (`limit=1`), once, without retries: whether the URL and the
    /// credentials work, for `config check --online`.
    pub async fn probe(&self) -> Result<JobPage, ProviderError> {
        self.parsed(
            Method::GET,
            &["fine_tuning", "jobs"],
            &[("limit", "1")],
            RetryOn::Never,
            payload::parse_job_page_bytes,
        )
        .await
    }

    /// One job.
    pub async fn retrieve(&self, id: &str) -> Result<Job, ProviderError> {
        let v = self
            .json(
                Method::GET,
                &["fine_tuning", "jobs", id],
                &[],
                RetryOn::Transient,
            )
            .await?;
        self.decode("GET /fine_tuning/jobs/{id}", payload::parse_job(v))
    }

    /// The newest events of a job (newest first).
    pub async fn events(&self, id: &str, limit: u32) -> Result<Vec<Event>, ProviderError> {
        let limit = limit.to_string();
        let v = self
            .json(
                Method::GET,
                &["fine_tuning", "jobs", id, "events"],
                &[("limit", &limit)],
                RetryOn::Transient,
            )
            .await?;
        self.decode(
            "GET /fine_tuning/jobs/{id}/events",
            payload::parse_events(&v),
        )
    }

    /// File metadata.
    pub async fn file(&self, id: &str) -> Result<FileMeta, ProviderError> {
        let v = self
            .json(Method::GET, &["files", id], &[], RetryOn::Transient)
            .await?;
        self.decode(
            "GET /files/{id}",
            serde_json::from_value(v).map_err(|e| e.to_string()),
        )
    }

    /// File content as a stream of chunks; never buffered whole.
    pub async fn file_content(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, ProviderError>> + use<>, ProviderError> {
        let segments = ["files", id, "content"];
        // Large files take long: the per-request timeout would cut them off.
        let resp = self
            .send(
                Method::GET,
                &segments,
                &[],
                RetryOn::Transient,
                Some(Duration::from_secs(3600)),
            )
            .await?;
        let this = self.clone();
        Ok(resp
            .bytes_stream()
            .map(move |r| r.map_err(|e| this.transport_error("GET /files/{id}/content", &e))))
    }

    /// Cancels a job; retried only when the request provably was not applied.
    pub async fn cancel(&self, id: &str) -> Result<Job, ProviderError> {
        self.job_action(id, "cancel").await
    }

    /// Pauses a job (keeps a checkpoint); same retry rule as cancel.
    pub async fn pause(&self, id: &str) -> Result<Job, ProviderError> {
        self.job_action(id, "pause").await
    }

    /// Resumes a paused job.
    pub async fn resume(&self, id: &str) -> Result<Job, ProviderError> {
        self.job_action(id, "resume").await
    }

    async fn job_action(&self, id: &str, verb: &str) -> Result<Job, ProviderError> {
        let v = self
            .json(
                Method::POST,
                &["fine_tuning", "jobs", id, verb],
                &[],
                RetryOn::NotApplied,
            )
            .await?;
        self.decode(
            &format!("POST /fine_tuning/jobs/{{id}}/{verb}"),
            payload::parse_job(v),
        )
    }
}

/// `GET /fine_tuning/jobs/{id}` style names: ids are replaced so errors and metrics group well.
fn endpoint_name(method: &Method, segments: &[&str]) -> String {
    let mut path = String::new();
    for (i, s) in segments.iter().enumerate() {
        path.push('/');
        let is_id = (segments.first() == Some(&"fine_tuning") && i == 2)
            || (segments.first() == Some(&"files") && i == 1);
        path.push_str(if is_id { "{id}" } else { s });
    }
    format!("{method} {path}")
}
