//! Where notices go: every notifier, in the background, without losing one a webhook refused.
//!
//! Sending returns at once and never blocks enforcement. Each (notice, notifier) is written to
//! the store's outbox first, tried three times within seconds, and deleted once a webhook takes
//! it. One still refused stays in the outbox: [`Outbox::retry_due`] (every daemon pass, and at
//! the start of `run`) tries it again with backoff for up to a day, also after a crash or a
//! restart. [`Deliveries::flush`] waits, within a bound, for what is in flight, so a process
//! about to exit (`run --once`, `cancel`, a daemon stopping) does not cut a delivery short.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{Notice, Notifier};
use crate::store::{PendingNotice, Store};

/// Where notices go; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    http: reqwest::Client,
    notifiers: Vec<Notifier>,
    /// Shared by the outboxes of one process (a reload builds a new outbox on the same).
    deliveries: Deliveries,
    /// Where notices wait until delivered; without one (tests) a refused notice is dropped.
    store: Option<Store>,
    /// While a pass runs: its job notices so far per (event, policy), to cap them.
    pass: Arc<Mutex<Option<PassCounts>>>,
}

/// Job notices of a pass so far, per (event, policy).
type PassCounts = HashMap<(super::Event, String), u32>;

/// Job notices of one event and policy sent one by one in a pass; the rest are summed up in
/// one [`super::MORE`] notice when the pass ends.
pub const NOTICES_PER_PASS: u32 = 10;

/// Caps the job notices of a pass while it lives; sends the summaries when dropped.
pub struct Pass<'a> {
    outbox: &'a Outbox,
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        let counts = self
            .outbox
            .pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
            .unwrap_or_default();
        let mut over: Vec<_> = counts
            .into_iter()
            .filter(|(_, n)| *n > NOTICES_PER_PASS)
            .collect();
        over.sort();
        for ((event, policy), n) in over {
            self.outbox
                .deliver(Notice::more(event, &policy, n - NOTICES_PER_PASS));
        }
    }
}

/// The deliveries in flight, and whether the process is closing (no more waiting to retry).
#[derive(Clone, Default)]
pub struct Deliveries {
    tracker: tokio_util::task::TaskTracker,
    closing: tokio_util::sync::CancellationToken,
    /// A retry sweep is running.
    sweeping: Arc<AtomicBool>,
}

/// Tries right after a notice is made, and the first pause between them (doubling).
const ATTEMPTS: u32 = 3;
const FIRST_PAUSE: Duration = Duration::from_secs(2);
/// A notice whose first tries failed is due again this long after it was made (longer than
/// those tries can take: three request timeouts and the pauses).
const FIRST_RETRY_SECS: i64 = 60;
/// Later retries back off, doubling from [`FIRST_RETRY_SECS`] up to this.
const MAX_RETRY_SECS: i64 = 3600;
/// Undelivered for this long, a notice is dropped (and logged, and counted as expired).
pub const KEEP_NOTICE_SECS: i64 = 86_400;
/// Retries per pass, oldest first: a long outage does not make one pass send thousands.
const RETRIES_PER_PASS: i64 = 100;

impl Outbox {
    pub fn new(notifiers: Vec<Notifier>, deliveries: Deliveries, store: Option<Store>) -> Self {
        Self {
            http: crate::notify::http_client(),
            notifiers,
            deliveries,
            store,
            pass: Arc::default(),
        }
    }

    /// Starts a pass: until the returned guard is dropped, job notices beyond
    /// `NOTICES_PER_PASS` (10) per event and policy are counted instead of sent, and then
    /// summed up in one notice each.
    pub fn pass(&self) -> Pass<'_> {
        *self
            .pass
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(HashMap::new());
        Pass { outbox: self }
    }

    /// The deliveries this outbox adds to (to hand on to the outbox of a reloaded configuration).
    pub fn deliveries(&self) -> &Deliveries {
        &self.deliveries
    }

    /// Sends a notice to every notifier in the background; returns at once. During a pass,
    /// a job notice past the pass's cap is only counted (see [`Outbox::pass`]).
    pub fn send(&self, notice: Notice) {
        if notice.job_id.is_some() {
            let mut pass = self
                .pass
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(counts) = pass.as_mut() {
                let n = counts
                    .entry((notice.event, notice.policy.clone()))
                    .or_insert(0);
                *n += 1;
                if *n > NOTICES_PER_PASS {
                    return;
                }
            }
        }
        self.deliver(notice);
    }

    /// Sends a notice to every notifier in the background, uncapped.
    fn deliver(&self, notice: Notice) {
        let now = crate::model::time::now();
        for n in &self.notifiers {
            self.deliveries.tracker.spawn(deliver_one(
                self.http.clone(),
                n.clone(),
                n.body(&notice).to_string(),
                notice.event.as_str().to_owned(),
                self.store.clone(),
                self.deliveries.closing.clone(),
                now,
            ));
        }
    }

    /// Sends again the notices whose time has come (one try each), drops those undelivered
    /// for `KEEP_NOTICE_SECS` (a day) or whose notifier is no longer configured. Returns how
    /// many were delivered.
    pub async fn retry_due(&self, now: i64) -> usize {
        let Some(store) = &self.store else {
            return 0;
        };
        let due = match store.due_notices(now, RETRIES_PER_PASS).await {
            Ok(due) => due,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the notices waiting for a retry");
                return 0;
            }
        };
        let mut delivered = 0;
        // A webhook that refuses one notice this sweep is not asked again until the next: its
        // other notices wait as long as the refused one (one timeout per webhook, not each).
        let mut down: HashMap<String, (i64, String)> = HashMap::new();
        for n in due {
            match self.retry_one(store, &n, now, &mut down).await {
                Ok(true) => delivered += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, id = n.id, "cannot update a waiting notice"),
            }
        }
        delivered
    }

    /// [`Outbox::retry_due`] in the background, one sweep at a time: a webhook that hangs
    /// never holds up a pass.
    pub fn retry_due_in_background(&self, now: i64) {
        if self.store.is_none() || self.deliveries.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let outbox = self.clone();
        self.deliveries.tracker.spawn(async move {
            outbox.retry_due(now).await;
            outbox.deliveries.sweeping.store(false, Ordering::Release);
        });
    }

    async fn retry_one(
        &self,
        store: &Store,
        n: &PendingNotice,
        now: i64,
        down: &mut HashMap<String, (i64, String)>,
    ) -> Result<bool, crate::store::StoreError> {
        if now - n.created_at >= KEEP_NOTICE_SECS {
            crate::telemetry::notification(&n.event, "expired");
            tracing::error!(event = %n.event, notifier = %n.notifier, attempts = n.attempts, "webhook notice undelivered for a day; dropped");
            store.remove_notice(n.id).await?;
            return Ok(false);
        }
        let Some(notifier) = self.notifiers.iter().find(|x| x.source() == n.notifier) else {
            tracing::warn!(event = %n.event, notifier = %n.notifier, "waiting notice dropped: its notifier is no longer configured");
            store.remove_notice(n.id).await?;
            return Ok(false);
        };
        if let Some((next_at, error)) = down.get(&n.notifier) {
            store
                .retry_notice_at(n.id, n.attempts, *next_at, error)
                .await?;
            return Ok(false);
        }
        match notifier.post(&self.http, &n.body).await {
            Ok(_) => {
                crate::telemetry::notification(&n.event, "delivered");
                tracing::info!(event = %n.event, notifier = %n.notifier, attempts = n.attempts + 1, "webhook notice delivered on a retry");
                store.remove_notice(n.id).await?;
                Ok(true)
            }
            Err(error) => {
                let error = error.to_string();
                let attempts = n.attempts + 1;
                let next_at = now + backoff(attempts);
                store
                    .retry_notice_at(n.id, attempts, next_at, &error)
                    .await?;
                down.insert(n.notifier.clone(), (next_at, error));
                Ok(false)
            }
        }
    }
}

/// One notice to one notifier: kept in the store, tried soon, removed once delivered or left
/// there for [`Outbox::retry_due`].
async fn deliver_one(
    http: reqwest::Client,
    notifier: Notifier,
    body: String,
    event: String,
    store: Option<Store>,
    closing: tokio_util::sync::CancellationToken,
    now: i64,
) {
    // Written before the first try: a crash from here on leaves it to a retry.
    let id = match &store {
        Some(s) => match s
            .insert_notice(
                notifier.source(),
                &event,
                &body,
                now,
                now + FIRST_RETRY_SECS,
            )
            .await
        {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(error = %e, event = %event, "cannot keep the notice for retries");
                None
            }
        },
        None => None,
    };
    let error = match try_soon(&http, &notifier, &body, &closing).await {
        Ok(()) => {
            crate::telemetry::notification(&event, "delivered");
            if let (Some(s), Some(id)) = (&store, id)
                && let Err(e) = s.remove_notice(id).await
            {
                tracing::warn!(error = %e, "delivered notice stays in the outbox; it may be sent twice");
            }
            return;
        }
        Err(e) => e.to_string(),
    };
    match (&store, id) {
        (Some(s), Some(id)) => {
            crate::telemetry::notification(&event, "retrying");
            tracing::warn!(event = %event, notifier = notifier.source(), error = %error, "webhook notice not delivered; kept, tried again in a minute");
            if let Err(e) = s
                .retry_notice_at(id, i64::from(ATTEMPTS), now + FIRST_RETRY_SECS, &error)
                .await
            {
                tracing::warn!(error = %e, "cannot record the failed try");
            }
        }
        _ => {
            crate::telemetry::notification(&event, "failed");
            tracing::error!(event = %event, notifier = notifier.source(), error = %error, "webhook notice not delivered; given up");
        }
    }
}

/// The pause before the next retry of a notice tried `attempts` times.
fn backoff(attempts: i64) -> i64 {
    let doublings = (attempts - i64::from(ATTEMPTS)).clamp(0, 20);
    (FIRST_RETRY_SECS << doublings).min(MAX_RETRY_SECS)
}

/// The first tries, seconds apart; a closing process makes one last try at once instead of
/// waiting. The error is the last one.
async fn try_soon(
    http: &reqwest::Client,
    notifier: &Notifier,
    body: &str,
    closing: &tokio_util::sync::CancellationToken,
) -> Result<(), super::DeliveryError> {
    let mut pause = FIRST_PAUSE;
    let mut attempt = 1;
    loop {
        let error = match notifier.post(http, body).await {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
        tracing::debug!(attempt, error = %error, "webhook notice try failed");
        if attempt >= ATTEMPTS {
            return Err(error);
        }
        let closed = tokio::select! {
            () = tokio::time::sleep(pause) => false,
            () = closing.cancelled() => true,
        };
        pause *= 2;
        attempt += 1;
        if closed {
            return notifier.post(http, body).await.map(|_| ());
        }
    }
}

impl Deliveries {
    /// Before exiting: stops waiting between tries (one last try each) and waits up to
    /// `limit` for the deliveries in flight. Returns how many were still unfinished.
    pub async fn flush(&self, limit: Duration) -> usize {
        self.closing.cancel();
        self.tracker.close();
        if tokio::time::timeout(limit, self.tracker.wait())
            .await
            .is_ok()
        {
            return 0;
        }
        let left = self.tracker.len();
        tracing::warn!(
            left,
            "exiting with webhook notices still in flight; kept for a retry at the next start"
        );
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::secret::SecretRef;
    use crate::notify::{NotifierConfig, NotifyFormat};
    use wiremock::{Mock, MockServer, ResponseTemplate, matchers::method};

    /// A JSON notifier whose URL comes from a file in `dir`.
    fn notifier(dir: &std::path::Path, name: &str, url: &str) -> Notifier {
        let file = dir.join(name);
        std::fs::write(&file, url).unwrap();
        Notifier::build(&NotifierConfig {
            kind: "webhook".into(),
            url: SecretRef::File(file),
            format: NotifyFormat::Json,
        })
        .unwrap()
    }

    #[tokio::test]
    async fn due_notices_are_sent_again_backed_off_or_dropped() {
        let hook = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .up_to_n_times(1)
            .mount(&hook)
            .await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&hook)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let live = notifier(dir.path(), "live", &hook.uri());
        let source = live.source().to_owned();
        let outbox = Outbox::new(vec![live], Deliveries::default(), Some(store.clone()));
        let now = 1_000_000;
        // Refused once, then taken; one from a notifier since removed; one a day old.
        let refused = store
            .insert_notice(&source, "cancelled", r#"{"n":1}"#, now - 100, now - 40)
            .await
            .unwrap();
        store
            .insert_notice("env GONE_HOOK", "held", "{}", now - 100, now - 40)
            .await
            .unwrap();
        store
            .insert_notice(&source, "held", "{}", now - KEEP_NOTICE_SECS, now - 40)
            .await
            .unwrap();
        // Not due yet: untouched.
        let later = store
            .insert_notice(&source, "paused", "{}", now, now + 3600)
            .await
            .unwrap();

        assert_eq!(outbox.retry_due(now).await, 0);
        let waiting = store.due_notices(i64::MAX, 10).await.unwrap();
        let ids: Vec<i64> = waiting.iter().map(|n| n.id).collect();
        assert_eq!(
            ids,
            [refused, later],
            "dropped: the orphan and the expired one"
        );
        let r = waiting.iter().find(|n| n.id == refused).unwrap();
        assert_eq!(r.attempts, 1);
        assert!(store.due_notices(now + 59, 10).await.unwrap().is_empty());
        // Due again after the backoff: delivered and gone.
        assert_eq!(outbox.retry_due(now + 60).await, 1);
        let reqs = hook.received_requests().await.unwrap();
        assert_eq!(
            reqs.len(),
            2,
            "the expired and the orphaned ones were not sent"
        );
        assert_eq!(reqs[1].body, br#"{"n":1}"#);
        let left: Vec<i64> = store
            .due_notices(i64::MAX, 10)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(left, [later]);
    }

    #[tokio::test]
    async fn a_webhook_that_refuses_is_asked_once_per_sweep() {
        let down = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(503))
            .mount(&down)
            .await;
        let up = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200))
            .mount(&up)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let (a, b) = (
            notifier(dir.path(), "down", &down.uri()),
            notifier(dir.path(), "up", &up.uri()),
        );
        let (src_a, src_b) = (a.source().to_owned(), b.source().to_owned());
        let outbox = Outbox::new(vec![a, b], Deliveries::default(), Some(store.clone()));
        let now = 1_000_000;
        for i in 0..3 {
            store
                .insert_notice(
                    &src_a,
                    "held",
                    &format!("{{\"i\":{i}}}"),
                    now - 90,
                    now - 30,
                )
                .await
                .unwrap();
        }
        store
            .insert_notice(&src_b, "held", "{}", now - 90, now - 30)
            .await
            .unwrap();
        assert_eq!(outbox.retry_due(now).await, 1, "the live webhook's notice");
        assert_eq!(down.received_requests().await.unwrap().len(), 1);
        // All three wait as long as the refused one; none counted as tried.
        let left = store.due_notices(i64::MAX, 10).await.unwrap();
        assert_eq!(left.len(), 3);
        assert!(store.due_notices(now + 59, 10).await.unwrap().is_empty());
        let attempts: Vec<i64> = left.iter().map(|n| n.attempts).collect();
        assert_eq!(attempts, [1, 0, 0]);
    }

    #[tokio::test]
    async fn one_background_sweep_at_a_time() {
        let slow = MockServer::start().await;
        Mock::given(method("POST"))
            .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(500)))
            .mount(&slow)
            .await;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let n = notifier(dir.path(), "slow", &slow.uri());
        let src = n.source().to_owned();
        let outbox = Outbox::new(vec![n], Deliveries::default(), Some(store.clone()));
        store.insert_notice(&src, "held", "{}", 0, 0).await.unwrap();
        let t = std::time::Instant::now();
        outbox.retry_due_in_background(10);
        outbox.retry_due_in_background(10);
        assert!(t.elapsed() < Duration::from_millis(400), "returns at once");
        assert_eq!(outbox.deliveries().flush(Duration::from_secs(5)).await, 0);
        assert_eq!(
            slow.received_requests().await.unwrap().len(),
            1,
            "sent once, not by two sweeps"
        );
        assert!(store.due_notices(i64::MAX, 10).await.unwrap().is_empty());
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        let pauses: Vec<i64> = (3..=10).map(backoff).collect();
        assert_eq!(pauses, [60, 120, 240, 480, 960, 1920, 3600, 3600]);
        assert_eq!(backoff(1_000), 3600);
    }
}
