//! What every account's client shares: one HTTP client per connect timeout — one connection
//! pool, TLS set up once, connections to a host reused whichever account asks — and a bound
//! on the requests in flight across all accounts, so a thousand accounts never open a thousand
//! connections at once. Each request carries its account's headers and timeout.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Connections kept open per host between requests.
const IDLE_PER_HOST: usize = 2;

/// Shared by the clients of one configuration. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Pool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// One client per connect timeout (accounts nearly always share the default).
    clients: Mutex<Vec<(Duration, reqwest::Client)>>,
    slots: Arc<Semaphore>,
    max: usize,
}

impl Pool {
    /// A pool letting `max_concurrent_requests` requests (at least one) be in flight at once.
    pub fn new(max_concurrent_requests: usize) -> Self {
        let max = max_concurrent_requests.max(1);
        Pool {
            inner: Arc::new(Inner {
                clients: Mutex::new(Vec::new()),
                slots: Arc::new(Semaphore::new(max)),
                max,
            }),
        }
    }

    /// How many requests may be in flight at once.
    pub fn max_concurrent_requests(&self) -> usize {
        self.inner.max
    }

    /// The HTTP client for this connect timeout, built on first use.
    pub(super) fn http(
        &self,
        connect_timeout: Duration,
    ) -> Result<reqwest::Client, reqwest::Error> {
        let mut clients = self
            .inner
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = clients.iter().find(|(t, _)| *t == connect_timeout) {
            return Ok(c.clone());
        }
        let client = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .user_agent(concat!("ftguard/", env!("CARGO_PKG_VERSION")))
            // A redirect is never followed: reqwest strips only `Authorization` when one leads
            // to another host, so Portkey's keys, Azure's `api-key` and any header-referenced
            // secret would go with it, and a cancel would be re-POSTed to whoever answers
            // there. The error names where it pointed. No `Referer` either.
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            // Between syncs a few connections per host stay open for the next one; the rest of
            // a burst of `max_concurrent_requests` are closed, each holding read buffers sized
            // for a page of jobs.
            .pool_max_idle_per_host(IDLE_PER_HOST)
            .build()?;
        clients.push((connect_timeout, client.clone()));
        Ok(client)
    }

    /// Waits for a slot for one request; the slot is free again when the permit is dropped
    /// (after the answer's body is read, or its stream ends). The semaphore is never closed;
    /// were it closed, `None`: the request goes without a slot rather than not at all.
    pub(super) async fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.inner.slots.clone().acquire_owned().await.ok()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new(crate::config::DEFAULT_MAX_CONCURRENT_REQUESTS)
    }
}
