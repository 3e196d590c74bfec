//! Training metrics and checkpoints of jobs (migration 0017): stored as read, page by page, and
//! read back as curves for the training-quality policies and `show`.

use sqlx::Row;

use super::{Store, StoreError};
use crate::model::metrics::{Checkpoint, Curves, StepMetrics};

/// Rows of a curve read at a time.
const CURVE_BLOCK: usize = 2_000;

const METRIC_COLUMNS: &str = "step, total_steps, train_loss, train_mean_token_accuracy, valid_loss, valid_mean_token_accuracy, full_valid_loss, full_valid_mean_token_accuracy";

/// What curves hold: the step, the total and the three losses (the accuracies left out).
const LOSS_COLUMNS: &str = "step, total_steps, train_loss, valid_loss, full_valid_loss";

/// A row of [`LOSS_COLUMNS`].
fn loss_row(r: &sqlx::sqlite::SqliteRow) -> StepMetrics {
    StepMetrics {
        step: r.get(0),
        total_steps: r.get(1),
        train_loss: r.get(2),
        valid_loss: r.get(3),
        full_valid_loss: r.get(4),
        ..StepMetrics::default()
    }
}

fn step_metrics(r: &sqlx::sqlite::SqliteRow) -> StepMetrics {
    StepMetrics {
        step: r.get(0),
        total_steps: r.get(1),
        train_loss: r.get(2),
        train_mean_token_accuracy: r.get(3),
        valid_loss: r.get(4),
        valid_mean_token_accuracy: r.get(5),
        full_valid_loss: r.get(6),
        full_valid_mean_token_accuracy: r.get(7),
    }
}

impl Store {
    /// Stores one page of a job's metrics (a step stored before is overwritten: the API's
    /// newest word on it), in one statement: a page of 100 events is one write, not 100.
    pub async fn put_metrics(
        &self,
        account: &str,
        job_id: &str,
        page: &[(StepMetrics, i64)],
    ) -> Result<(), StoreError> {
        // 11 values a row; SQLite takes 32,766 bound values a statement.
        for chunk in page.chunks(1000) {
            let mut sql = format!(
                "INSERT OR REPLACE INTO metrics (account, job_id, {METRIC_COLUMNS}, reported_at) VALUES "
            );
            for i in 0..chunk.len() {
                sql.push_str(if i == 0 { "" } else { ", " });
                sql.push_str("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
            }
            let mut q = sqlx::query(&sql);
            for (m, at) in chunk {
                q = q
                    .bind(account)
                    .bind(job_id)
                    .bind(m.step)
                    .bind(m.total_steps)
                    .bind(m.train_loss)
                    .bind(m.train_mean_token_accuracy)
                    .bind(m.valid_loss)
                    .bind(m.valid_mean_token_accuracy)
                    .bind(m.full_valid_loss)
                    .bind(m.full_valid_mean_token_accuracy)
                    .bind(*at);
            }
            q.execute(&self.pool).await.map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// The newest event of the job stored so far (where the next read stops), if any.
    pub async fn metrics_cursor(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT newest_event_id FROM metrics_cursor WHERE account = ? AND job_id = ?",
        )
        .bind(account)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Moves the cursor once every event down to the old one is stored: a read cut short
    /// leaves it where it was, and the next read pages down to it again.
    pub async fn set_metrics_cursor(
        &self,
        account: &str,
        job_id: &str,
        newest_event_id: &str,
        at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO metrics_cursor (account, job_id, newest_event_id, read_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (account, job_id) DO UPDATE SET newest_event_id = excluded.newest_event_id, read_at = excluded.read_at",
        )
        .bind(account)
        .bind(job_id)
        .bind(newest_event_id)
        .bind(at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The newest step at which the job's checkpoints were read, if ever.
    pub async fn checkpoints_step(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT checkpoints_step FROM metrics_cursor WHERE account = ? AND job_id = ?",
        )
        .bind(account)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?
        .flatten())
    }

    /// Records that the job's checkpoints were read at its newest step `step`.
    pub async fn set_checkpoints_step(
        &self,
        account: &str,
        job_id: &str,
        step: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE metrics_cursor SET checkpoints_step = ? WHERE account = ? AND job_id = ?",
        )
        .bind(step)
        .bind(account)
        .bind(job_id)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The running jobs with stored metrics, as (account, job id).
    pub async fn running_with_metrics(&self) -> Result<Vec<(String, String)>, StoreError> {
        // From the small index of active jobs, each looked up in the cursors by key.
        sqlx::query_as(
            "SELECT j.account, j.id FROM jobs j INDEXED BY jobs_active
              WHERE j.status NOT IN ('succeeded','failed','cancelled') AND j.gone_at IS NULL
                AND j.status = 'running'
                AND EXISTS (SELECT 1 FROM metrics_cursor c WHERE c.account = j.account AND c.job_id = j.id)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Every job whose metrics were read, as (account, job id).
    pub async fn jobs_with_metrics(
        &self,
    ) -> Result<std::collections::HashSet<(String, String)>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT account, job_id FROM metrics_cursor")
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().collect())
    }

    /// A job's losses with when each was reported, in step order (`ftguard replay`): what
    /// curves hold, the accuracies left out.
    pub async fn metrics_reported(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Vec<(i64, StepMetrics)>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {LOSS_COLUMNS}, reported_at FROM metrics WHERE account = ? AND job_id = ?
              ORDER BY step"
        ))
        .bind(account)
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(|r| (r.get(5), loss_row(r))).collect())
    }

    /// A job's metrics, in step order.
    pub async fn metrics(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Vec<StepMetrics>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {METRIC_COLUMNS} FROM metrics WHERE account = ? AND job_id = ? ORDER BY step"
        ))
        .bind(account)
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(step_metrics).collect())
    }

    /// A job's loss curves, read a row at a time (a job of 100,000 steps holds its three
    /// curves, not its rows).
    pub async fn curves(&self, account: &str, job_id: &str) -> Result<Curves, StoreError> {
        let mut curves = Curves::default();
        self.extend_curves(account, job_id, &mut curves).await?;
        Ok(curves)
    }

    /// Adds to `curves` the steps stored after its last one (all, for empty curves): a pass
    /// reads only what a sync added since the last.
    pub async fn extend_curves(
        &self,
        account: &str,
        job_id: &str,
        curves: &mut Curves,
    ) -> Result<(), StoreError> {
        // In blocks of rows by step: a block is one round to SQLite's thread, and a job of
        // 100,000 steps holds a block of rows at a time. Only what curves hold is read.
        let sql = format!(
            "SELECT {LOSS_COLUMNS} FROM metrics
              WHERE account = ? AND job_id = ? AND step > ? ORDER BY step LIMIT {CURVE_BLOCK}"
        );
        let mut after = curves.last_step().unwrap_or(i64::MIN);
        loop {
            let rows = sqlx::query(&sql)
                .bind(account)
                .bind(job_id)
                .bind(after)
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?;
            for r in &rows {
                let m = loss_row(r);
                after = m.step;
                curves.push(&m);
            }
            if rows.len() < CURVE_BLOCK {
                return Ok(());
            }
        }
    }

    /// The newest step stored for a job and the total steps it reported then.
    pub async fn newest_metrics(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Option<(i64, Option<i64>)>, StoreError> {
        sqlx::query_as(
            "SELECT step, total_steps FROM metrics WHERE account = ? AND job_id = ?
              ORDER BY step DESC LIMIT 1",
        )
        .bind(account)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Replaces what is stored of a job's checkpoints with what the API lists now.
    pub async fn put_checkpoints(
        &self,
        account: &str,
        job_id: &str,
        checkpoints: &[Checkpoint],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await.map_err(|e| self.err(e))?;
        for c in checkpoints {
            let metrics = serde_json::to_string(&c.metrics).unwrap_or_else(|_| "{}".into());
            sqlx::query(
                "INSERT OR REPLACE INTO checkpoints (account, job_id, id, model, step, created_at, metrics)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(account)
            .bind(job_id)
            .bind(&c.id)
            .bind(&c.model)
            .bind(c.step)
            .bind(c.created_at)
            .bind(metrics)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// A job's stored checkpoints, by step.
    pub async fn checkpoints(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Vec<Checkpoint>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, model, step, created_at, metrics FROM checkpoints
              WHERE account = ? AND job_id = ? ORDER BY step",
        )
        .bind(account)
        .bind(job_id)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| Checkpoint {
                id: r.get(0),
                model: r.get(1),
                step: r.get(2),
                created_at: r.get(3),
                metrics: serde_json::from_str(&r.get::<String, _>(4)).unwrap_or_default(),
            })
            .collect())
    }

    /// Records the estimated cost an action did not spend.
    pub async fn set_estimated_saving(
        &self,
        action_id: i64,
        saving: crate::model::Usd,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE actions SET estimated_saving = ? WHERE id = ?")
            .bind(saving.0)
            .bind(action_id)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The estimated savings of actions requested since `since`: (sum, actions).
    pub async fn estimated_savings_since(
        &self,
        since: i64,
    ) -> Result<(crate::model::Usd, i64), StoreError> {
        let (sum, n): (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(estimated_saving), 0), COUNT(estimated_saving) FROM actions
              WHERE requested_at >= ? AND estimated_saving IS NOT NULL",
        )
        .bind(since)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok((crate::model::Usd(sum), n))
    }

    /// Records the checkpoint named by an action (JSON, or null when none was listed).
    pub async fn set_best_checkpoint(
        &self,
        action_id: i64,
        best: Option<&serde_json::Value>,
    ) -> Result<(), StoreError> {
        self.durable(
            sqlx::query("UPDATE actions SET best_checkpoint = ? WHERE id = ?")
                .bind(best.map(serde_json::Value::to_string))
                .bind(action_id),
        )
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::jobs::fixtures::store;

    fn m(step: i64, train: f64, valid: Option<f64>) -> (StepMetrics, i64) {
        (
            StepMetrics {
                step,
                total_steps: Some(100),
                train_loss: Some(train),
                valid_loss: valid,
                ..StepMetrics::default()
            },
            1_800_000_000 + step,
        )
    }

    #[tokio::test]
    async fn metrics_pages_and_checkpoints_read_back_in_step_order() {
        let (_dir, s) = store().await;
        s.put_metrics("a", "j", &[m(3, 0.7, Some(0.9)), m(2, 0.8, None)])
            .await
            .unwrap();
        s.put_metrics("a", "j", &[m(1, 0.9, None), m(2, 0.81, None)])
            .await
            .unwrap();
        s.put_metrics("b", "j", &[m(1, 5.0, None)]).await.unwrap();
        let c = s.curves("a", "j").await.unwrap();
        assert_eq!(c.train_loss, [(1, 0.9), (2, 0.81), (3, 0.7)]);
        assert_eq!(c.valid_loss, [(3, 0.9)], "missing stays missing");
        assert_eq!(c.total_steps, Some(100));
        assert_eq!(s.metrics("a", "j").await.unwrap().len(), 3);
        assert_eq!(s.metrics_cursor("a", "j").await.unwrap(), None);
        s.set_metrics_cursor("a", "j", "ftevent-9", 5)
            .await
            .unwrap();
        s.set_metrics_cursor("a", "j", "ftevent-12", 6)
            .await
            .unwrap();
        assert_eq!(
            s.metrics_cursor("a", "j").await.unwrap().as_deref(),
            Some("ftevent-12")
        );
        let ck = |id: &str, step: i64| Checkpoint {
            id: id.into(),
            model: format!("ft:m:ckpt-step-{step}"),
            step,
            created_at: 1,
            metrics: m(step, 0.5, Some(0.6)).0,
        };
        s.put_checkpoints("a", "j", &[ck("c2", 20), ck("c1", 10)])
            .await
            .unwrap();
        let got = s.checkpoints("a", "j").await.unwrap();
        assert_eq!(got.iter().map(|c| c.step).collect::<Vec<_>>(), [10, 20]);
        assert_eq!(got[0].metrics.valid_loss, Some(0.6));
    }
}
