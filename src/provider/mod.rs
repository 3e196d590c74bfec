//! OpenAI-compatible fine-tuning API client, one per account: list (paged), retrieve, events,
//! files, cancel, pause. Timeouts and bounded retries live here; nothing else talks HTTP to
//! the provider.

pub mod api_clock;
mod body;
pub mod clip;
mod error;
pub mod path;
pub mod payload;
mod pool;
pub mod retry;

use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::Method;
use serde_json::Value;

pub use error::{ProviderError, TransportKind};
pub use payload::{Event, FileMeta, JobPage, PayloadError};
pub use pool::Pool;
use retry::RetryOn;

use crate::config::Account;
use crate::model::{AccountName, Job};

/// A client for one account: its headers, timeouts and retries over the connections and
/// request slots of a shared [`Pool`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Client {
    account: Account,
    http: reqwest::Client,
    pool: Pool,
    clock: api_clock::ClockOffset,
}

/// The list-events endpoint, as errors name it.
const EVENTS: &str = "GET /fine_tuning/jobs/{id}/events";

impl Client {
    /// A client with a pool of its own (a single account, a test).
    pub fn new(account: Account) -> Result<Self, ProviderError> {
        Self::with_pool(account, &Pool::default())
    }

    /// A client sharing `pool`'s connections and request slots with the other accounts'.
    pub fn with_pool(account: Account, pool: &Pool) -> Result<Self, ProviderError> {
        let http = pool
            .http(account.connect_timeout)
            .map_err(|e| ProviderError::Transport {
                account: account.name.to_string(),
                endpoint: "client setup".into(),
                kind: TransportKind::Other,
                detail: e.to_string(),
            })?;
        Ok(Self {
            account,
            http,
            pool: pool.clone(),
            clock: api_clock::ClockOffset::default(),
        })
    }

    pub fn account(&self) -> &AccountName {
        &self.account.name
    }

    /// The pool this client shares with the other accounts'.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// How far the API's clock is from this machine's, as its answers say.
    pub fn clock(&self) -> &api_clock::ClockOffset {
        &self.clock
    }

    /// How long one cancel or pause may take within a pass, every attempt and retry included:
    /// twice `request_timeout` (a full try and the retrieve that checks it). A 429 with
    /// `Retry-After` on every try took 16 minutes per job at the defaults without it.
    pub fn action_budget(&self) -> Duration {
        self.account.request_timeout.saturating_mul(2)
    }

    pub fn max_pages(&self) -> u32 {
        self.account.max_pages
    }

    /// The account's base URL with `segments` appended, each one segment (`path::segment`);
    /// its query string (some gateways need one) is kept. An id that cannot be one segment is
    /// refused, and the URL is checked to end in exactly these segments.
    fn url(&self, segments: &[&str]) -> Result<reqwest::Url, ProviderError> {
        let unusable = |id: &str, why: &str| ProviderError::UnusableId {
            account: self.account.name.to_string(),
            id: clip::clip(id, 200),
            why: why.to_owned(),
        };
        if let Some((s, why)) = segments
            .iter()
            .find_map(|s| path::unusable(s).map(|why| (s, why)))
        {
            return Err(unusable(s, why));
        }
        let mut url = self.account.base_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        let mut p = base.clone();
        for s in segments {
            p.push('/');
            p.push_str(&path::segment(s));
        }
        url.set_path(&p);
        // Belt and braces: the URL library normalises paths; what it made must still be the
        // base followed by exactly our segments.
        let want = base.split('/').filter(|s| !s.is_empty()).count() + segments.len();
        let got = url
            .path_segments()
            .map_or(0, |s| s.filter(|s| !s.is_empty()).count());
        if got != want || !url.path().starts_with(&base) {
            return Err(unusable(
                segments.last().copied().unwrap_or(""),
                "the URL library would send it to another path",
            ));
        }
        Ok(url)
    }

    /// Sends with retries; returns the successful response (2xx), with the pool's slot it holds
    /// until its body is read, or the last error. No slot is held while waiting to retry.
    async fn send(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, &str)],
        retry_on: RetryOn,
        timeout: Option<Duration>,
    ) -> Result<(reqwest::Response, Option<tokio::sync::OwnedSemaphorePermit>), ProviderError> {
        let endpoint = endpoint_name(&method, segments);
        let url = self.url(segments)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let slot = self.pool.slot().await;
            let req = self
                .http
                .request(method.clone(), url.clone())
                .headers(self.account.headers.clone())
                .timeout(timeout.unwrap_or(self.account.request_timeout))
                .query(query);
            let started = std::time::Instant::now();
            let sent = req.send().await;
            crate::telemetry::api_request(
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
                        elapsed_ms =
                            u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                        "api request"
                    );
                    return Ok((resp, slot));
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
                    let redirect = resp
                        .status()
                        .is_redirection()
                        .then(|| redirect_message(resp.headers().get(reqwest::header::LOCATION)));
                    let body = match redirect {
                        Some(m) => m,
                        None => body::error_text(resp).await,
                    };
                    tracing::debug!(endpoint, status, "api request failed");
                    let message = clip::clip(&payload::error_message(&body), clip::MAX_TEXT);
                    let hint = self.hint(status, &endpoint, &message);
                    (
                        ProviderError::Status {
                            account: self.account.name.to_string(),
                            endpoint: endpoint.clone(),
                            status,
                            message: message
                                + if by_gateway {
                                    " (said by the Portkey gateway, not the provider)"
                                } else {
                                    ""
                                }
                                + &hint,
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
            drop(slot);
            if !retryable || attempt >= self.account.max_attempts {
                return Err(err);
            }
            let delay = retry::backoff(attempt, retry_after, self.account.max_retry_after);
            tracing::warn!(account = %self.account.name, endpoint, attempt, delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX), error = %err, "retrying");
            tokio::time::sleep(delay).await;
        }
    }

    /// For 401 and 403: which credentials were sent (by reference), or that none were, so
    /// the operator knows what to check without reading the configuration. For a 404 from the
    /// job list, which always exists: the URL asked, so a wrong `base_url` is plain.
    fn hint(&self, status: u16, endpoint: &str, message: &str) -> String {
        if status == 404 && endpoint == "GET /fine_tuning/jobs" {
            let Ok(mut url) = self.url(&["fine_tuning", "jobs"]) else {
                return String::new();
            };
            // Never print credentials written into the URL (user info, or a key in the query).
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            return format!(
                " (no fine-tuning API at {url}: check base_url, which usually ends in /v1)"
            );
        }
        // Behind some gateways a bad or missing key is a 400 or 422 whose message says so.
        let credentials_refused = matches!(status, 401 | 403)
            || (matches!(status, 400 | 422) && about_credentials(message));
        if !credentials_refused {
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
            detail: clip::clip(&detail, clip::MAX_TEXT),
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
            serde_json::from_slice::<Value>(body).map_err(|e| PayloadError(e.to_string()))
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
        parse: impl Fn(&[u8]) -> Result<T, PayloadError>,
    ) -> Result<T, ProviderError> {
        let endpoint = endpoint_name(&method, segments);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (resp, slot) = self
                .send(method.clone(), segments, query, retry_on, None)
                .await?;
            let status = resp.status().as_u16();
            let result = match body::read_bounded(resp, self.account.max_response_bytes).await {
                Ok(body) => parse(&body).map_err(|e| ProviderError::Decode {
                    account: self.account.name.to_string(),
                    endpoint: endpoint.clone(),
                    status,
                    detail: format!(
                        "{} (body starts {:?})",
                        clip::clip(&e.0, clip::MAX_TEXT),
                        payload::error_message(&String::from_utf8_lossy(
                            &body[..body.len().min(120)]
                        ))
                    ),
                }),
                Err(body::ReadError::TooLarge { declared }) => {
                    // Not retried: the next answer would be as large.
                    return Err(ProviderError::TooLarge {
                        account: self.account.name.to_string(),
                        endpoint,
                        limit: self.account.max_response_bytes,
                        declared,
                    });
                }
                Err(body::ReadError::Transport(e)) => Err(self.transport_error(&endpoint, &e)),
            };
            // The body is read: the connection is free for another request.
            drop(slot);
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

    fn decode<T>(&self, endpoint: &str, r: Result<T, PayloadError>) -> Result<T, ProviderError> {
        r.map_err(|detail| ProviderError::Decode {
            account: self.account.name.to_string(),
            endpoint: endpoint.to_owned(),
            status: 200,
            detail: clip::clip(&detail.0, clip::MAX_TEXT),
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

    /// One job. An answer about another job is an error: it says nothing about this one.
    pub async fn retrieve(&self, id: &str) -> Result<Job, ProviderError> {
        let v = self
            .json(
                Method::GET,
                &["fine_tuning", "jobs", id],
                &[],
                RetryOn::Transient,
            )
            .await?;
        let endpoint = "GET /fine_tuning/jobs/{id}";
        let job = self.decode(endpoint, payload::parse_job(v))?;
        self.same_job(endpoint, id, job)
    }

    /// `job` when it is the job asked about (ids compared as the API may escape them).
    fn same_job(&self, endpoint: &str, asked: &str, job: Job) -> Result<Job, ProviderError> {
        if path::same_id(asked, job.id.as_str()) {
            Ok(job)
        } else {
            Err(ProviderError::OtherJob {
                account: self.account.name.to_string(),
                endpoint: endpoint.to_owned(),
                asked: clip::clip(asked, 200),
                answered: clip::clip(job.id.as_str(), 200),
            })
        }
    }

    /// The newest events of a job (newest first).
    pub async fn events(&self, id: &str, limit: u32) -> Result<Vec<Event>, ProviderError> {
        let v = self.events_json(id, None, limit).await?;
        self.decode(EVENTS, payload::parse_events(&v))
    }

    /// One page of a job's events, newest first: the newest `limit`, or those after (older
    /// than) the event `after`, with their metrics.
    pub async fn event_page(
        &self,
        id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<payload::EventPage, ProviderError> {
        let v = self.events_json(id, after, limit).await?;
        self.decode(EVENTS, payload::parse_event_page(&v))
    }

    /// The answer to one list-events request.
    async fn events_json(
        &self,
        id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Value, ProviderError> {
        let limit = limit.to_string();
        let mut query = vec![("limit", limit.as_str())];
        if let Some(a) = after {
            query.push(("after", a));
        }
        self.json(
            Method::GET,
            &["fine_tuning", "jobs", id, "events"],
            &query,
            RetryOn::Transient,
        )
        .await
    }

    /// Every checkpoint the API lists for a job now (a few: one per epoch), in at most
    /// `max_pages` pages. A checkpoint of another job is an error: it says nothing about this one.
    pub async fn checkpoints(
        &self,
        id: &str,
    ) -> Result<Vec<crate::model::metrics::Checkpoint>, ProviderError> {
        let endpoint = "GET /fine_tuning/jobs/{id}/checkpoints";
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        for _ in 0..self.account.max_pages.max(1) {
            let mut query = vec![("limit", "100")];
            if let Some(a) = &after {
                query.push(("after", a.as_str()));
            }
            let v = self
                .json(
                    Method::GET,
                    &["fine_tuning", "jobs", id, "checkpoints"],
                    &query,
                    RetryOn::Transient,
                )
                .await?;
            let (page, more) = self.decode(endpoint, payload::parse_checkpoint_page(&v))?;
            let last = page.last().map(|(_, c)| c.id.clone());
            for (job, c) in page {
                if let Some(other) = job.filter(|j| !path::same_id(id, j)) {
                    return Err(ProviderError::OtherJob {
                        account: self.account.name.to_string(),
                        endpoint: endpoint.to_owned(),
                        asked: clip::clip(id, 200),
                        answered: clip::clip(&other, 200),
                    });
                }
                out.push(c);
            }
            match (more, last) {
                (true, Some(l)) if after.as_deref() != Some(l.as_str()) => after = Some(l),
                _ => break,
            }
        }
        Ok(out)
    }

    /// File metadata.
    pub async fn file(&self, id: &str) -> Result<FileMeta, ProviderError> {
        let v = self
            .json(Method::GET, &["files", id], &[], RetryOn::Transient)
            .await?;
        self.decode(
            "GET /files/{id}",
            serde_json::from_value(v).map_err(|e| PayloadError(e.to_string())),
        )
    }

    /// File content as a stream of chunks; never buffered whole.
    pub async fn file_content(
        &self,
        id: &str,
    ) -> Result<impl Stream<Item = Result<Bytes, ProviderError>> + use<>, ProviderError> {
        let segments = ["files", id, "content"];
        // Large files take long: the per-request timeout would cut them off.
        let (resp, slot) = self
            .send(
                Method::GET,
                &segments,
                &[],
                RetryOn::Transient,
                Some(Duration::from_secs(3600)),
            )
            .await?;
        // A download that stalls (headers, a line, then nothing) ends after `request_timeout`
        // without a byte, not after the hour.
        let idle = self.account.request_timeout;
        let this = self.clone();
        let chunks = Box::pin(resp.bytes_stream());
        // The stream holds the request's slot until it ends.
        Ok(futures_util::stream::unfold(
            Some((chunks, this, slot)),
            move |state| async move {
                let (mut chunks, this, slot) = state?;
                let endpoint = "GET /files/{id}/content";
                match tokio::time::timeout(idle, chunks.next()).await {
                    Ok(Some(Ok(b))) => Some((Ok(b), Some((chunks, this, slot)))),
                    Ok(Some(Err(e))) => Some((Err(this.transport_error(endpoint, &e)), None)),
                    Ok(None) => None,
                    Err(_) => {
                        let e = ProviderError::Transport {
                            account: this.account.name.to_string(),
                            endpoint: endpoint.to_owned(),
                            kind: TransportKind::Timeout,
                            detail: format!(
                                "no data for {} (request_timeout): the download stalled",
                                humantime::format_duration(idle)
                            ),
                        };
                        Some((Err(e), None))
                    }
                }
            },
        ))
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
        let endpoint = format!("POST /fine_tuning/jobs/{{id}}/{verb}");
        let job = self.decode(&endpoint, payload::parse_job(v))?;
        self.same_job(&endpoint, id, job)
    }
}

/// Whether an error message speaks of credentials ("Invalid API key", "missing authorization
/// header", "x-portkey-api-key is required").
fn about_credentials(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "api key",
        "api-key",
        "apikey",
        "authoriz",
        "authentic",
        "credential",
        "token",
        "unauthor",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// The error text of a redirect: where it pointed (scheme, host and path; a query may hold a
/// token), and that it was not followed.
fn redirect_message(location: Option<&reqwest::header::HeaderValue>) -> String {
    let to = location
        .and_then(|l| l.to_str().ok())
        .map(|l| match reqwest::Url::parse(l) {
            Ok(mut u) => {
                let _ = u.set_username("");
                let _ = u.set_password(None);
                u.set_query(None);
                u.set_fragment(None);
                u.to_string()
            }
            Err(_) => l.split(['?', '#']).next().unwrap_or_default().to_owned(),
        })
        .unwrap_or_else(|| "nowhere (no Location header)".into());
    format!(
        "redirected to {to}; ftguard does not follow redirects (they would carry the account's keys): set base_url to the final address"
    )
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
