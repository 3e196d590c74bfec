//! A loopback simulator of the fine-tuning API, for `ftguard demo` and the tests.
//!
//! Jobs move through validating_files -> queued -> running -> succeeded on the simulator's
//! clock (real time plus an offset tests can advance). It serves list (paged, newest first),
//! retrieve, events, files, cancel, pause and resume the way the spec says, records every
//! request, and can inject faults per endpoint.

mod job;
mod routes;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

pub use job::{SimJob, history_id};

/// A fault to inject on the next request to an endpoint.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answer with this status and an OpenAI-shaped error body; nothing applied.
    Status(u16),
    /// 429 with `Retry-After: secs`.
    RateLimited(u64),
    /// Apply the request (e.g. the cancel), then answer with this status.
    ApplyThen(u16),
    /// Wait this long before answering normally.
    Delay(Duration),
    /// 200 with a body cut off mid-way.
    Truncated,
    /// An HTML error page from a gateway.
    Html(u16),
    /// The connection breaks after the status line: no usable body.
    Reset,
    /// Apply the request, then stall this long before answering (the answer may be lost).
    ApplyThenDelay(Duration),
}

/// Endpoints faults can be attached to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    List,
    Retrieve,
    Events,
    File,
    FileContent,
    Cancel,
    Pause,
}

/// A request the simulator received.
#[derive(Debug, Clone)]
pub struct Request {
    /// When it arrived, unix milliseconds.
    pub at_ms: i64,
    pub method: String,
    pub path: String,
    pub query: String,
    pub headers: Vec<(String, String)>,
}

#[derive(Default)]
pub(crate) struct State {
    pub jobs: Vec<SimJob>,
    pub files: HashMap<String, Arc<Vec<u8>>>,
    pub faults: HashMap<Endpoint, VecDeque<Fault>>,
    pub requests: Vec<Request>,
    pub clock_offset: i64,
    /// When set, every request must carry this header with this value, else 401.
    pub required_header: Option<(String, String)>,
    /// A list cursor that never advances (the API's bug, for tests).
    pub stuck_cursor: bool,
    /// Added before every answer, like a remote API's round trip.
    pub latency: std::time::Duration,
    /// `jobs` is in list order (newest first).
    pub sorted: bool,
}

impl State {
    pub fn now(&self) -> i64 {
        crate::clock::now() + self.clock_offset
    }
}

/// A running simulator. Dropping it stops the server.
pub struct Sim {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Sim {
    /// Starts on 127.0.0.1 on a free port.
    pub async fn start(jobs: Vec<SimJob>) -> std::io::Result<Self> {
        Self::start_on("127.0.0.1:0".parse().map_err(std::io::Error::other)?, jobs).await
    }

    pub async fn start_on(addr: SocketAddr, jobs: Vec<SimJob>) -> std::io::Result<Self> {
        let state = Arc::new(Mutex::new(State {
            jobs,
            ..Default::default()
        }));
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = routes::router(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(Self {
            addr,
            state,
            _stop: tx,
        })
    }

    /// Base URL including `/v1`, as an account's `base_url`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a fault for the next request to `endpoint`.
    pub fn fault(&self, endpoint: Endpoint, fault: Fault) {
        self.lock()
            .faults
            .entry(endpoint)
            .or_default()
            .push_back(fault);
    }

    /// Adds a file (for `/files/{id}` and its content).
    pub fn add_file(&self, id: &str, content: Vec<u8>) {
        self.lock().files.insert(id.to_owned(), Arc::new(content));
    }

    pub fn add_job(&self, job: SimJob) {
        let mut s = self.lock();
        s.jobs.push(job);
        s.sorted = false;
    }

    /// Forgets a job: listings leave it out and its endpoints answer 404, as for a job deleted
    /// by the provider or one in another project than the key's.
    pub fn remove_job(&self, id: &str) {
        let mut s = self.lock();
        s.jobs.retain(|j| j.id != id);
        s.sorted = false;
    }

    /// Puts a job in `status` from now on (e.g. it finishes between a sync and a cancel).
    pub fn set_status(&self, id: &str, status: &str) {
        let mut s = self.lock();
        let now = s.now();
        if let Some(j) = s.jobs.iter_mut().find(|j| j.id == id) {
            j.set_status(status, now);
        }
    }

    /// Moves the simulator's clock forward.
    pub fn advance(&self, secs: i64) {
        self.lock().clock_offset += secs;
    }

    pub fn require_header(&self, name: &str, value: &str) {
        self.lock().required_header = Some((name.to_ascii_lowercase(), value.to_owned()));
    }

    /// Makes every answer take at least this long, like a remote API.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    pub fn set_stuck_cursor(&self, stuck: bool) {
        self.lock().stuck_cursor = stuck;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.lock().requests.clone()
    }

    /// How many cancel requests reached a job.
    pub fn cancel_requests(&self, id: &str) -> usize {
        let suffix = format!("/fine_tuning/jobs/{id}/cancel");
        self.lock()
            .requests
            .iter()
            .filter(|r| r.method == "POST" && r.path.ends_with(&suffix))
            .count()
    }

    /// The job object now, as the API would answer (without meeting any fault).
    pub fn job_json(&self, id: &str) -> Option<serde_json::Value> {
        let s = self.lock();
        let now = s.now();
        s.jobs.iter().find(|j| j.id == id).map(|j| j.to_json(now))
    }

    /// The job's status now, as the API would answer.
    pub fn status(&self, id: &str) -> Option<String> {
        let s = self.lock();
        let now = s.now();
        s.jobs.iter().find(|j| j.id == id).map(|j| j.status(now))
    }
}
