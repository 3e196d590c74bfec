//! Webhook notices on their way: written before they are sent, deleted once delivered, sent
//! again later while a webhook refuses them (see `notify::Outbox`).

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};

/// A notice not delivered yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingNotice {
    pub id: i64,
    /// The webhook's URL reference (`env NAME`, ...), never the URL.
    pub notifier: String,
    pub event: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
}

impl Store {
    /// Records a notice about to be sent to `notifier`; it is due for a retry at `next_at`
    /// unless delivered before.
    pub async fn insert_notice(
        &self,
        notifier: &str,
        event: &str,
        body: &str,
        now: i64,
        next_at: i64,
    ) -> Result<i64, StoreError> {
        sqlx::query_scalar(
            "INSERT INTO outbox (notifier, event, body, created_at, next_at) VALUES (?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(notifier)
        .bind(event)
        .bind(body)
        .bind(now)
        .bind(next_at)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// A notice was delivered (or is given up): it leaves the outbox.
    pub async fn remove_notice(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM outbox WHERE id = ?")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A notice was refused again: how many tries it has had, when to try next, and why.
    pub async fn retry_notice_at(
        &self,
        id: i64,
        attempts: i64,
        next_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET attempts = ?, next_at = ?, last_error = ? WHERE id = ?")
            .bind(attempts)
            .bind(next_at)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Notices due for another try at `now`, oldest first, at most `limit`.
    pub async fn due_notices(
        &self,
        now: i64,
        limit: i64,
    ) -> Result<Vec<PendingNotice>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, notifier, event, body, created_at, attempts FROM outbox \
             WHERE next_at <= ? ORDER BY next_at, id LIMIT ?",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| PendingNotice {
                id: r.get(0),
                notifier: r.get(1),
                event: r.get(2),
                body: r.get(3),
                created_at: r.get(4),
                attempts: r.get(5),
            })
            .collect())
    }

    /// How many notices wait, and since when the oldest (`ftguard status`).
    pub async fn waiting_notices(&self) -> Result<(i64, Option<i64>), StoreError> {
        let row = sqlx::query("SELECT COUNT(*), MIN(created_at) FROM outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok((row.get(0), row.get(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[tokio::test]
    async fn a_notice_waits_until_due_and_leaves_once_removed() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("t.db")).await.unwrap();
        let a = store
            .insert_notice("env HOOK", "cancelled", "{}", 100, 160)
            .await
            .unwrap();
        let b = store
            .insert_notice("env HOOK", "held", "{}", 110, 170)
            .await
            .unwrap();
        assert!(store.due_notices(159, 10).await.unwrap().is_empty());
        let due: Vec<i64> = store
            .due_notices(170, 10)
            .await
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(due, [a, b]);
        store.retry_notice_at(a, 4, 400, "HTTP 503").await.unwrap();
        let due = store.due_notices(300, 10).await.unwrap();
        assert_eq!(due.iter().map(|n| n.id).collect::<Vec<_>>(), [b]);
        assert_eq!(store.waiting_notices().await.unwrap(), (2, Some(100)));
        store.remove_notice(b).await.unwrap();
        let left = store.due_notices(400, 10).await.unwrap();
        assert_eq!((left.len(), left[0].attempts), (1, 4));
        assert_eq!(store.waiting_notices().await.unwrap(), (1, Some(100)));
    }
}
