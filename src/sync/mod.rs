//! Sync: provider -> store. Pages the job list into SQLite one transaction per page, then
//! retrieves known active jobs the listing did not include.

pub mod metrics;
pub mod outage_watch;
mod report;
pub mod training_files;

pub use report::{sync_json, sync_line};

use std::collections::HashSet;

use serde::Serialize;
use tracing::Instrument;

use crate::model::count_u32;
use crate::model::time;
use crate::provider::{Client, ProviderError};
use crate::store::{Store, StoreError, SyncRun};

/// Why an account's sync failed.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one account's sync saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SyncSummary {
    pub account: String,
    pub pages: u32,
    pub jobs_seen: u32,
    pub new: u32,
    /// Jobs whose status changed.
    pub changed: u32,
    /// Jobs already known whose payload changed but not their status; listed jobs that are
    /// neither new, changed nor updated were not written.
    pub updated: u32,
    pub active: u32,
    pub retrieved: u32,
    /// Running jobs whose events were fetched (those a `stalled` policy suspected).
    pub events_checked: u32,
    /// Running jobs whose training metrics were read (those a training-quality policy matches).
    pub metrics_read: u32,
    /// Known active jobs the API answered 404 for: marked gone.
    pub gone: u32,
    /// Items the API sent that could not be parsed.
    pub rejected: u32,
    /// Whether every job was listed (`false`: incremental, up to the boundary).
    pub full: bool,
    /// Status changes seen: (job id, from, to).
    pub changes: Vec<(String, String, String)>,
    pub warnings: Vec<String>,
    /// The API's clock minus this machine's, in seconds, from the `Date` header of its
    /// answers (`None`: no answer had one). Far from 0 it is also a warning.
    pub clock_offset_secs: Option<i64>,
}

/// Options for one sync.
#[derive(Debug, Clone, Copy, Default)]
pub struct SyncOptions {
    /// List every job, not only those since the last sync's boundary.
    pub full: bool,
    /// A full listing is forced when the last one is older than this.
    pub full_every: std::time::Duration,
}

/// Syncs one account; records the run (successful or not) in `sync_runs`.
pub async fn sync_account(
    client: &Client,
    store: &Store,
    opts: SyncOptions,
) -> Result<SyncSummary, SyncError> {
    let span = tracing::info_span!("sync", account = %client.account());
    async {
        let started = time::now();
        let timer = std::time::Instant::now();
        let mut result = sync_inner(client, store, opts).await;
        check_clock(client, result.as_mut().ok());
        crate::telemetry::sync_finished(
            client.account().as_str(),
            result.is_ok(),
            timer.elapsed().as_secs_f64(),
        );
        let run = SyncRun {
            account: client.account().to_string(),
            started_at: started,
            finished_at: Some(time::now()),
            pages: result.as_ref().map_or(0, |s| s.pages.into()),
            jobs_seen: result.as_ref().map_or(0, |s| s.jobs_seen.into()),
            error: result.as_ref().err().map(|e| e.to_string()),
        };
        if let Err(e) = store.record_sync_run(&run).await {
            tracing::warn!(error = %e, "could not record the sync run");
        }
        // Per account at debug: the pass says one line for all accounts (`log_pass`); a
        // failure is said here too, with its account.
        match &result {
            Ok(s) => tracing::debug!(
                pages = s.pages,
                jobs = s.jobs_seen,
                new = s.new,
                changed = s.changed,
                updated = s.updated,
                "sync done"
            ),
            Err(e) => tracing::error!(error = %e, "sync failed"),
        }
        result
    }
    .instrument(span)
    .await
}

async fn sync_inner(
    client: &Client,
    store: &Store,
    opts: SyncOptions,
) -> Result<SyncSummary, SyncError> {
    let account = client.account().clone();
    let mut summary = SyncSummary {
        account: account.to_string(),
        ..Default::default()
    };
    // Jobs known to be active before this sync; whatever the listing does not show is
    // retrieved afterwards. Only these ids are held, not every id listed.
    let mut unseen_active: HashSet<String> =
        store.active_job_ids(&account).await?.into_iter().collect();
    // Incremental: the list is newest first, so once a page reaches past the boundary every
    // job that could have changed has been seen; known active jobs not seen are retrieved below.
    let started = time::now();
    let boundary = match store.sync_state(account.as_str()).await? {
        Some((Some(b), Some(last_full)))
            if !opts.full
                && started.saturating_sub(last_full) < crate::model::secs(opts.full_every) =>
        {
            Some(b)
        }
        _ => None,
    };
    summary.full = boundary.is_none();
    // A first listing of a large account takes minutes against a real API: say how far it got.
    let mut progress_at = std::time::Instant::now() + PROGRESS_EVERY;
    // What the pages' writes did is asked once after the listing (new jobs, status changes):
    // a page costs one round trip to SQLite's thread, its upsert.
    let mark = store.write_mark().await?;
    let mut written = 0;
    // Pages are streamed: a lister task fetches and parses pages up to PAGES_AHEAD ahead of
    // the writing, so neither the fetching nor SQLite's thread waits on the other's pace page
    // by page; against an API with any round trip a first sync costs about the fetching alone
    // (BENCHMARKS.md). Dropping the receiver (an error while writing) stops the lister.
    let (tx, mut pages) = tokio::sync::mpsc::channel(PAGES_AHEAD);
    // Aborted if this sync returns early (an error while writing, or the daemon dropping the
    // sync), instead of finishing a page fetch nobody will read.
    let mut lister = tokio_util::task::AbortOnDropHandle::new(tokio::spawn(
        list_pages(client.clone(), boundary, tx).instrument(tracing::Span::current()),
    ));
    while let Some(page) = pages.recv().await {
        let page = page?;
        summary.pages += 1;
        for r in &page.rejected {
            tracing::warn!(item = %r, "skipping a job the API sent that cannot be parsed");
        }
        summary.rejected = summary
            .rejected
            .saturating_add(count_u32(page.rejected.len()));
        written += store.write_jobs(&account, &page.jobs, time::now()).await?;
        summary.jobs_seen = summary.jobs_seen.saturating_add(count_u32(page.jobs.len()));
        if std::time::Instant::now() >= progress_at && page.has_more {
            tracing::info!(
                pages = summary.pages,
                jobs = summary.jobs_seen,
                "still listing jobs"
            );
            progress_at = std::time::Instant::now() + PROGRESS_EVERY;
        }
        let now = time::now();
        for j in &page.jobs {
            unseen_active.remove(j.id.as_str());
            for (what, detail) in doubts(j, now) {
                if store
                    .say_once(account.as_str(), j.id.as_str(), what, &detail, now)
                    .await?
                {
                    let id = crate::provider::clip::clip(j.id.as_str(), 200);
                    tracing::warn!(job_id = %id, what, "{detail}");
                    summary.warnings.push(format!("job {id}: {detail}"));
                }
            }
        }
    }
    let end = (&mut lister).await.map_err(|e| lost_task(client, &e))?;
    let complete = end.complete;
    summary.warnings.extend(end.warnings);

    let stats = store.written_since(&account, mark, written).await?;
    // A stored job listed under another created_at was stored anew: merged back into one.
    let moved = store.merge_moved_jobs(&account, mark, stats.new).await?;
    for m in &moved {
        let w = format!(
            "the API lists job {} with created_at {} where it said {} before; its two rows were merged into one",
            m.id, m.created_at, m.was_created_at
        );
        tracing::warn!(job_id = %m.id, "{w}");
        summary.warnings.push(w);
    }
    summary.new = summary
        .new
        .saturating_add(stats.new.saturating_sub(count_u32(moved.len())));
    summary.changed += stats.changed;
    summary.updated += stats.updated;
    summary.changes.extend(stats.changes);

    // Known active jobs the listing did not include: retrieve them one by one (not those whose
    // id cannot be sent, said once when listed).
    for id in unseen_active {
        if crate::provider::path::unusable(&id).is_some() {
            continue;
        }
        match client.retrieve(&id).await {
            Ok(job) => {
                let stats = store
                    .upsert_jobs(&account, std::slice::from_ref(&job), time::now())
                    .await?;
                summary.changed += stats.changed;
                summary.updated += stats.updated;
                summary.changes.extend(stats.changes);
                summary.retrieved += 1;
            }
            // The API does not know it any more (deleted, or the key now points elsewhere):
            // said once, then no longer asked about, decided on or counted.
            Err(e) if e.status() == Some(404) => {
                store.mark_gone(&account, &id, time::now()).await?;
                let w = format!(
                    "active job {id} is unknown to the API (404): marked gone, no longer watched"
                );
                tracing::warn!(job_id = %id, "{w}");
                summary.warnings.push(w);
                summary.gone += 1;
            }
            Err(e) => {
                let w = format!("could not retrieve active job {id}: {e}");
                tracing::warn!("{w}");
                summary.warnings.push(w);
            }
        }
    }

    store
        .save_sync_state(
            account.as_str(),
            (summary.full && complete).then_some(started),
        )
        .await?;

    summary.active = count_u32(store.active_job_ids(&account).await?.len());
    Ok(summary)
}

/// What a listed job says that ftguard cannot trust, as (kind, sentence): each is said once
/// per job (`said_once`), never at every sync.
fn doubts(job: &crate::model::Job, now: i64) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(why) = crate::provider::path::unusable(job.id.as_str()) {
        out.push((
            "unusable_id",
            format!("its id cannot be sent to the API ({why}): stored and shown, never acted on"),
        ));
    }
    if let Some(t) = job.trained_tokens.filter(|t| *t < 0) {
        out.push((
            "negative_count",
            format!("the API reports trained_tokens {t}, which is no count: its cost is unknown"),
        ));
    }
    if !crate::model::plausible_created_at(job.created_at, now) {
        out.push((
            "implausible_time",
            format!(
                "the API reports created_at {} ({}), before 2015 or in the future: time limits count from when ftguard first saw the job",
                job.created_at,
                time::human(job.created_at)
            ),
        ));
    }
    out
}

/// Fetches one job's newest events and records its newest training step and that it was
/// checked. Only jobs a `stalled` policy suspects get here ([`crate::policy::events_wanted`]).
pub async fn refresh_steps(client: &Client, store: &Store, id: &str) -> Result<(), SyncError> {
    let span = tracing::info_span!("events", account = %client.account(), job_id = %id);
    async {
        let checked_at = time::now();
        let events = client.events(id, 50).await?;
        let last = events
            .iter()
            .filter(|e| e.step.is_some())
            .map(|e| e.created_at)
            .max();
        store
            .record_steps(client.account(), id, last, checked_at)
            .await?;
        tracing::debug!(last_step_at = last, "events checked");
        Ok(())
    }
    .instrument(span)
    .await
}

/// Reports how far the API's clock is from this machine's: in the summary (a warning when
/// far), as a metric, and in the log when it drifts past the tolerance or comes back.
fn check_clock(client: &Client, summary: Option<&mut SyncSummary>) {
    use crate::provider::api_clock;
    let Some(offset) = client.clock().get() else {
        return;
    };
    crate::telemetry::clock_offset(client.account().as_str(), offset);
    match client.clock().change() {
        Some(api_clock::SkewChange::Became(_)) => {
            tracing::warn!(offset_secs = offset, "{}", api_clock::describe(offset))
        }
        Some(api_clock::SkewChange::Recovered(_)) => tracing::info!(
            offset_secs = offset,
            "this machine's clock agrees with the API's again"
        ),
        None => {}
    }
    if let Some(s) = summary {
        s.clock_offset_secs = Some(offset);
        if api_clock::is_skewed(offset) {
            s.warnings.push(api_clock::describe(offset));
        }
    }
}

/// How often a long listing logs its progress.
const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// How many parsed pages the lister may hold ahead of the writing (each ~100 jobs).
const PAGES_AHEAD: usize = 4;

/// How a listing ended.
struct ListEnd {
    /// The API said there were no more jobs, or refused to list further (not a stop at the
    /// boundary or `max_pages`).
    complete: bool,
    warnings: Vec<String>,
}

/// Whether a page lists its jobs oldest first (its first job older than its last).
fn oldest_first(jobs: &[crate::model::Job]) -> bool {
    match (jobs.first(), jobs.last()) {
        (Some(first), Some(last)) => first.created_at < last.created_at,
        _ => false,
    }
}

/// Fetches pages newest first into `tx` until the API has no more, the incremental boundary is
/// passed, `max_pages` is reached or the cursor stops advancing. A fetch error is sent as the
/// last item; a closed channel (the writer failed) ends the listing.
async fn list_pages(
    client: Client,
    boundary: Option<i64>,
    tx: tokio::sync::mpsc::Sender<Result<crate::provider::JobPage, ProviderError>>,
) -> ListEnd {
    let mut end = ListEnd {
        complete: false,
        warnings: Vec::new(),
    };
    // A page came oldest first: the boundary is not trusted for the rest of the listing.
    let mut unordered = false;
    let mut cursors: HashSet<String> = HashSet::new();
    let mut after: Option<String> = None;
    let mut fetched = 0u32;
    loop {
        let page = match client.list_jobs_page(after.as_deref()).await {
            Ok(p) => p,
            // A later page refused as a bad request: the server does not take the cursor it
            // was given (the list's last id, as the API specifies). Portkey hands it to Vertex
            // AI as its page token, for one. What was listed is kept and the sync goes on;
            // failing it would fail the account at every sync, for good. The listing counts
            // as complete (it is as far as this API lists): the next syncs are incremental,
            // one request each, instead of a full listing and this warning every minute; the
            // daily full sync asks again.
            Err(e) if after.is_some() && matches!(e.status(), Some(400 | 404 | 422)) => {
                let w = format!(
                    "the API refused page {} of the job list ({e}): it does not take the \
                     cursor `after`, so older jobs were not listed (asked again at the next \
                     full sync)",
                    fetched + 1
                );
                tracing::warn!("{w}");
                end.warnings.push(w);
                end.complete = true;
                return end;
            }
            Err(e) => {
                let _ = tx.send(Err(e)).await;
                return end;
            }
        };
        fetched += 1;
        // Stopping at the boundary needs the list newest first, as the API sends it. A server
        // listing oldest first would put every new job past the pages an incremental sync
        // reads, unseen until the daily full sync: such a listing is read to its end.
        if boundary.is_some() && !unordered && oldest_first(&page.jobs) {
            unordered = true;
            let w = "the API lists jobs oldest first, not newest first as OpenAI's does: \
                     every sync of this account reads every page"
                .to_owned();
            tracing::warn!("{w}");
            end.warnings.push(w);
        }
        // Decide from this page alone whether there is a next one.
        let mut next = None;
        if !page.has_more {
            end.complete = true;
        } else if !unordered && boundary.is_some_and(|b| page.jobs.iter().any(|j| j.created_at < b))
        {
            // Incremental: everything that could have changed has been seen.
        } else if fetched >= client.max_pages() {
            let w = format!(
                "stopped after max_pages = {} pages; older jobs were not listed",
                client.max_pages()
            );
            tracing::warn!("{w}");
            end.warnings.push(w);
        } else {
            match &page.last_id {
                Some(cursor) if cursors.insert(cursor.clone()) => next = Some(cursor.clone()),
                _ => {
                    let w =
                        "the API says has_more but the cursor did not advance; stopping pagination"
                            .to_owned();
                    tracing::warn!("{w}");
                    end.warnings.push(w);
                }
            }
        }
        if tx.send(Ok(page)).await.is_err() {
            return end;
        }
        match next {
            Some(cursor) => after = Some(cursor),
            None => return end,
        }
    }
}

fn lost_task(client: &Client, e: &tokio::task::JoinError) -> ProviderError {
    ProviderError::Transport {
        account: client.account().to_string(),
        endpoint: "GET /fine_tuning/jobs".into(),
        kind: crate::provider::TransportKind::Other,
        detail: format!("page fetch did not complete: {e}"),
    }
}

/// One account's sync: its name and what came of it.
pub type AccountSync = (String, Result<SyncSummary, SyncError>);

/// One line at info for a pass over every account: how many synced, what they found, and
/// which failed (the first ten by name), however many accounts there are.
pub fn log_pass(results: &[(String, Result<SyncSummary, SyncError>)], took: std::time::Duration) {
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, r)| r.is_err())
        .map(|(a, _)| a.as_str())
        .collect();
    let ok = results.iter().filter_map(|(_, r)| r.as_ref().ok());
    let (mut jobs, mut new, mut changed) = (0u64, 0u64, 0u64);
    for s in ok {
        jobs = jobs.saturating_add(u64::from(s.jobs_seen));
        new = new.saturating_add(u64::from(s.new));
        changed = changed.saturating_add(u64::from(s.changed));
    }
    let mut names = failed
        .iter()
        .take(10)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if failed.len() > 10 {
        names.push_str(&format!(" and {} more", failed.len() - 10));
    }
    let took_ms = u64::try_from(took.as_millis()).unwrap_or(u64::MAX);
    let synced = results.len() - failed.len();
    if failed.is_empty() {
        tracing::info!(
            accounts = results.len(),
            synced,
            jobs,
            new,
            changed,
            took_ms,
            "sync pass done"
        );
    } else {
        tracing::warn!(accounts = results.len(), synced, failed = failed.len(), jobs, new, changed, took_ms, failing = %names, "sync pass done, some accounts failed");
    }
}

/// Syncs every account, as many at once as their pool lets requests be in flight (each sync
/// holds pages fetched ahead: a thousand at once would hold a thousand accounts' pages); one
/// failing account does not stop the others. Results in the accounts' order.
pub async fn sync_all(
    clients: &[Client],
    store: &Store,
    opts: SyncOptions,
) -> Vec<(String, Result<SyncSummary, SyncError>)> {
    use futures_util::StreamExt;
    let at_once = clients
        .first()
        .map_or(1, |c| c.pool().max_concurrent_requests());
    // The futures are made first: a stream mapping a closure over borrowed clients would not
    // be `Send` (a closure's lifetimes are not general enough), and callers spawn passes.
    let syncs: Vec<_> = clients
        .iter()
        .enumerate()
        .map(|(i, c)| async move {
            (
                i,
                (c.account().to_string(), sync_account(c, store, opts).await),
            )
        })
        .collect();
    let mut done: Vec<(usize, AccountSync)> = futures_util::stream::iter(syncs)
        .buffer_unordered(at_once)
        .collect()
        .await;
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
