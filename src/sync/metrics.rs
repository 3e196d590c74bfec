//! Reading a running job's training metrics incrementally: its events from the newest down to
//! the newest one stored, a page at a time into the store (a job of 100,000 steps is read in
//! pages and never held), and its checkpoints once an epoch may have ended.

use tracing::Instrument;

use super::SyncError;
use crate::model::time;
use crate::provider::Client;
use crate::store::Store;

/// Events per page: the most the API gives.
const PAGE: u32 = 100;

/// Pages read at most per job and sync: 200,000 events. A longer history is read on.
const MAX_PAGES: u32 = 2_000;

/// What one read did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetricsRead {
    /// Requests made (event pages, checkpoint pages).
    pub requests: u32,
    /// Metrics events stored.
    pub steps: u32,
    /// Whether the checkpoints were read.
    pub checkpoints: bool,
}

/// Reads the job's metrics events newer than those stored, then its checkpoints when the newest
/// step passed the end of an epoch (`epochs`: the job's resolved `n_epochs`) since they were
/// last read. The cursor moves only once the read reached the newest event stored before (or
/// the step after the newest step stored, or the first event): a read cut short is read again
/// from the top, never leaving a gap.
pub async fn read_metrics(
    client: &Client,
    store: &Store,
    id: &str,
    epochs: Option<f64>,
) -> Result<MetricsRead, SyncError> {
    let account = client.account().as_str().to_owned();
    let span = tracing::info_span!("metrics", account = %account, job_id = %id);
    async {
        let known = store.metrics_cursor(&account, id).await?;
        // With a cursor, the newest step stored: once a page reaches the step after it, every
        // new step is in (message events in between carry no metrics), without a page more
        // for the cursor's own event.
        let stored_step = match &known {
            Some(_) => store
                .newest_metrics(&account, id)
                .await?
                .map(|(step, _)| step),
            None => None,
        };
        let mut read = MetricsRead::default();
        let mut newest: Option<String> = None;
        let mut after: Option<String> = None;
        let mut complete = false;
        for _ in 0..MAX_PAGES {
            let page = client.event_page(id, after.as_deref(), PAGE).await?;
            read.requests += 1;
            if newest.is_none() {
                newest = page.events.first().map(|e| e.id.clone());
            }
            let mut batch = Vec::new();
            let mut reached = false;
            for e in &page.events {
                if known.as_deref() == Some(e.id.as_str()) {
                    reached = true;
                    break;
                }
                if let Some(m) = e.metrics {
                    batch.push((m, e.created_at));
                }
            }
            store.put_metrics(&account, id, &batch).await?;
            read.steps += u32::try_from(batch.len()).unwrap_or(u32::MAX);
            let contiguous = stored_step.is_some_and(|known_step| {
                page.events
                    .iter()
                    .filter_map(|e| e.metrics.map(|m| m.step))
                    .min()
                    .is_some_and(|oldest| oldest <= known_step.saturating_add(1))
            });
            let last = page.events.last().map(|e| e.id.clone());
            if reached || contiguous || !page.has_more || last.is_none() || last == after {
                complete = true;
                break;
            }
            after = last;
        }
        if complete && let Some(n) = &newest {
            store
                .set_metrics_cursor(&account, id, n, time::now())
                .await?;
        }
        read_checkpoints_if_due(client, store, id, epochs, &mut read).await?;
        tracing::debug!(requests = read.requests, steps = read.steps, "metrics read");
        Ok(read)
    }
    .instrument(span)
    .await
}

/// Reads the checkpoints when an epoch ended between the step they were last read at and the
/// newest step stored.
async fn read_checkpoints_if_due(
    client: &Client,
    store: &Store,
    id: &str,
    epochs: Option<f64>,
    read: &mut MetricsRead,
) -> Result<(), SyncError> {
    let account = client.account().as_str();
    let Some(epochs) = epochs.filter(|e| *e >= 1.0) else {
        return Ok(());
    };
    let Some((newest, Some(total))) = store.newest_metrics(account, id).await? else {
        return Ok(());
    };
    let per_epoch = (total as f64 / epochs).floor();
    if per_epoch < 1.0 {
        return Ok(());
    }
    let epoch_of = |step: i64| (step as f64 / per_epoch).floor();
    let last_read = store.checkpoints_step(account, id).await?;
    if last_read.is_some_and(|s| epoch_of(s) >= epoch_of(newest)) || epoch_of(newest) < 1.0 {
        return Ok(());
    }
    let checkpoints = client.checkpoints(id).await?;
    read.requests += 1;
    read.checkpoints = true;
    store.put_checkpoints(account, id, &checkpoints).await?;
    store.set_checkpoints_step(account, id, newest).await?;
    Ok(())
}
