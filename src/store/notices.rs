//! Budget thresholds reached: each (policy, group, period, percent) is recorded, and so
//! notified, once.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::model::GroupNotice;

/// A recorded budget threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NoticeRecord {
    pub policy: String,
    pub group: String,
    pub period_start: i64,
    pub percent: u32,
    pub reason: String,
    pub reached_at: i64,
}

impl Store {
    /// Records a threshold; `false` when it was recorded before (nothing to notify).
    pub async fn record_budget_notice(
        &self,
        n: &GroupNotice,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT OR IGNORE INTO budget_notices (policy, grp, period_start, percent, reason, reached_at) \
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&n.policy)
        .bind(&n.group)
        .bind(n.period_start)
        .bind(n.percent)
        .bind(&n.reason)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Whether a threshold was already recorded (for `plan`, which only says what it would do).
    pub async fn has_budget_notice(&self, n: &GroupNotice) -> Result<bool, StoreError> {
        sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM budget_notices \
             WHERE policy = ? AND grp = ? AND period_start = ? AND percent = ?)",
        )
        .bind(&n.policy)
        .bind(&n.group)
        .bind(n.period_start)
        .bind(n.percent)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Thresholds reached in periods starting at or after `since`, oldest first.
    pub async fn budget_notices(&self, since: i64) -> Result<Vec<NoticeRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT policy, grp, period_start, percent, reason, reached_at FROM budget_notices \
             WHERE period_start >= ? ORDER BY reached_at, policy, grp, percent",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| NoticeRecord {
                policy: r.get(0),
                group: r.get(1),
                period_start: r.get(2),
                percent: r.get(3),
                reason: r.get(4),
                reached_at: r.get(5),
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::super::jobs::fixtures;
    use super::*;

    fn notice(group: &str, percent: u32) -> GroupNotice {
        GroupNotice {
            policy: "monthly".into(),
            group: group.into(),
            period_start: 1_000,
            percent,
            reason: format!("group {group} reached {percent}%"),
        }
    }

    #[tokio::test]
    async fn a_threshold_is_recorded_once_per_group_period_and_percent() {
        let (_dir, store) = fixtures::store().await;
        let n = notice("team-a@example.com", 80);
        assert!(!store.has_budget_notice(&n).await.unwrap());
        assert!(store.record_budget_notice(&n, 2_000).await.unwrap());
        assert!(
            !store.record_budget_notice(&n, 3_000).await.unwrap(),
            "second time"
        );
        assert!(store.has_budget_notice(&n).await.unwrap());
        assert!(
            store
                .record_budget_notice(&notice("team-a@example.com", 50), 2_000)
                .await
                .unwrap()
        );
        let next_period = GroupNotice {
            period_start: 5_000,
            ..n.clone()
        };
        assert!(
            store
                .record_budget_notice(&next_period, 6_000)
                .await
                .unwrap()
        );

        let all = store.budget_notices(0).await.unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].reached_at, 2_000, "the first record stays: {all:?}");
        assert_eq!(store.budget_notices(5_000).await.unwrap().len(), 1);
    }
}
