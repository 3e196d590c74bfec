//! Actions: every decision that reached enforcement, and what the API answered.

use serde::Serialize;
use sqlx::Row;

use super::{Store, StoreError};
use crate::model::Job;

/// The policy recorded for `ftguard cancel` by hand.
pub const MANUAL_POLICY: &str = "manual";

/// How an action ended (or that it has not yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Written before the call; still pending after a crash means "reconcile me".
    Pending,
    /// The API applied it.
    Succeeded,
    /// The API answered a cancel with the job still active: accepted, not finished. Never sent
    /// again; a job still active 10 minutes on is said (`cancel_ineffective`).
    Accepted,
    /// The job had already finished; its final state is recorded.
    AlreadyFinished,
    /// No usable answer after the allowed attempts; a later pass decides again.
    Failed,
    /// Stopped by the circuit breaker.
    Held,
    /// Dry-run: nothing was sent.
    DryRun,
    /// `action = "notify"`, or a pause refused with `fallback = "notify"`.
    Notified,
    /// First violation of a policy with grace.
    Warned,
    /// Became compliant during grace.
    Cleared,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Succeeded => "succeeded",
            Self::Accepted => "accepted",
            Self::AlreadyFinished => "already_finished",
            Self::Failed => "failed",
            Self::Held => "held",
            Self::DryRun => "dry_run",
            Self::Notified => "notified",
            Self::Warned => "warned",
            Self::Cleared => "cleared",
        }
    }
}

/// A row to insert.
#[derive(Debug, Clone)]
pub struct NewAction<'a> {
    pub account: &'a str,
    pub job_id: &'a str,
    pub policy: &'a str,
    pub action: &'a str,
    pub reason: &'a str,
    pub outcome: Outcome,
}

/// How an action ended: its outcome, the HTTP status and job the API answered with, an error,
/// and a note for people.
#[derive(Debug, Clone)]
pub struct Completion {
    pub outcome: Outcome,
    pub http_status: Option<u16>,
    pub response: Option<ResponseFields>,
    pub error: Option<String>,
    pub note: Option<String>,
}

impl Completion {
    /// An outcome with nothing else known yet.
    pub fn new(outcome: Outcome) -> Self {
        Completion {
            outcome,
            http_status: None,
            response: None,
            error: None,
            note: None,
        }
    }

    pub fn with_error(mut self, error: impl Into<String>) -> Self {
        self.error = Some(error.into());
        self
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.note = Some(note.into());
        self
    }
}

/// The job state an answer carried (cancel response, or a retrieve after it).
#[derive(Debug, Clone, Default)]
pub struct ResponseFields {
    pub status: Option<String>,
    pub trained_tokens: Option<i64>,
    pub finished_at: Option<i64>,
    pub fine_tuned_model: Option<String>,
    pub error: Option<String>,
}

impl From<&Job> for ResponseFields {
    fn from(j: &Job) -> Self {
        Self {
            status: Some(j.status.to_string()),
            trained_tokens: j.trained_tokens,
            finished_at: j.finished_at,
            fine_tuned_model: j.fine_tuned_model.clone(),
            error: j.error.as_ref().map(|e| e.to_string()),
        }
    }
}

/// An action as stored; also the `actions --json` shape.
#[derive(Debug, Clone, Serialize)]
pub struct ActionRecord {
    pub id: i64,
    pub account: String,
    pub job_id: String,
    pub policy: String,
    pub action: String,
    pub reason: String,
    pub outcome: String,
    pub attempts: i64,
    pub requested_at: i64,
    pub completed_at: Option<i64>,
    pub http_status: Option<i64>,
    pub response_status: Option<String>,
    pub response_trained_tokens: Option<i64>,
    pub response_finished_at: Option<i64>,
    pub response_fine_tuned_model: Option<String>,
    pub response_error: Option<String>,
    pub error: Option<String>,
    pub note: Option<String>,
    /// For actions of training-quality policies: the checkpoint to use instead,
    /// `{model, step, metric, value}` (null when none was listed, and for other policies).
    pub best_checkpoint: Option<serde_json::Value>,
    /// For a job a training-quality policy stopped: the cost it did not spend, estimated from
    /// the steps not trained (dollars).
    pub estimated_saving_usd: Option<f64>,
}

const COLUMNS: &str = "id, account, job_id, policy, action, reason, outcome, attempts, requested_at, completed_at, http_status, response_status, response_trained_tokens, response_finished_at, response_fine_tuned_model, response_error, error, note, best_checkpoint, estimated_saving";

fn record(r: &sqlx::sqlite::SqliteRow) -> ActionRecord {
    ActionRecord {
        id: r.get(0),
        account: r.get(1),
        job_id: r.get(2),
        policy: r.get(3),
        action: r.get(4),
        reason: r.get(5),
        outcome: r.get(6),
        attempts: r.get(7),
        requested_at: r.get(8),
        completed_at: r.get(9),
        http_status: r.get(10),
        response_status: r.get(11),
        response_trained_tokens: r.get(12),
        response_finished_at: r.get(13),
        response_fine_tuned_model: r.get(14),
        response_error: r.get(15),
        error: r.get(16),
        note: r.get(17),
        best_checkpoint: r
            .get::<Option<String>, _>(18)
            .and_then(|t| serde_json::from_str(&t).ok()),
        estimated_saving_usd: r
            .get::<Option<i64>, _>(19)
            .map(|m| crate::model::Usd(m).as_dollars()),
    }
}

impl Store {
    /// Inserts an action row. Returns `None` when the database refuses a second pending or
    /// successful cancel of the same job: the guarantee of at most one cancel lives here.
    pub async fn insert_action(
        &self,
        a: &NewAction<'_>,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let completed = (a.outcome != Outcome::Pending).then_some(now);
        let res = sqlx::query(
            "INSERT INTO actions (account, job_id, policy, action, reason, outcome, requested_at, completed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.account)
        .bind(a.job_id)
        .bind(a.policy)
        .bind(a.action)
        .bind(a.reason)
        .bind(a.outcome.as_str())
        .bind(now)
        .bind(completed);
        let res = self.durable(res).await;
        match res {
            Ok(r) => Ok(Some(r.last_insert_rowid())),
            Err(sqlx::Error::Database(d)) if d.is_unique_violation() => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Counts one more attempt on an action.
    pub async fn count_attempt(&self, id: i64) -> Result<(), StoreError> {
        self.durable(
            sqlx::query("UPDATE actions SET attempts = attempts + 1 WHERE id = ?").bind(id),
        )
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Completes an action with how it ended.
    pub async fn complete_action(
        &self,
        id: i64,
        done: &Completion,
        now: i64,
    ) -> Result<(), StoreError> {
        let r = done.response.clone().unwrap_or_default();
        let (outcome, http_status, error, note) = (
            done.outcome,
            done.http_status,
            done.error.as_deref(),
            done.note.as_deref(),
        );
        let q = sqlx::query(
            "UPDATE actions SET outcome = ?, completed_at = ?, http_status = ?, response_status = ?, response_trained_tokens = ?,
               response_finished_at = ?, response_fine_tuned_model = ?, response_error = ?, error = ?, note = COALESCE(?, note)
             WHERE id = ?",
        )
        .bind(outcome.as_str())
        .bind((outcome != Outcome::Pending).then_some(now))
        .bind(http_status.map(i64::from))
        .bind(r.status)
        .bind(r.trained_tokens)
        .bind(r.finished_at)
        .bind(r.fine_tuned_model)
        .bind(r.error)
        .bind(error)
        .bind(note)
        .bind(id);
        self.durable(q).await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Actions left pending (by a crash), oldest first.
    pub async fn pending_actions(&self) -> Result<Vec<ActionRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM actions WHERE outcome = 'pending' ORDER BY id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(record).collect())
    }

    /// All actions, or one job's, oldest first.
    /// Cancels and pauses that policies sent (or are sending) since `since`, for the hourly
    /// circuit breaker: held, dry-run and manual ones do not count.
    pub async fn actions_sent_since(&self, since: i64) -> Result<u32, StoreError> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM actions WHERE requested_at >= ? AND action IN ('cancel', 'pause') \
             AND outcome IN ('pending', 'succeeded', 'accepted', 'already_finished', 'failed') AND policy <> ?",
        )
        .bind(since)
        .bind(MANUAL_POLICY)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Recorded actions, oldest first: of one job, and/or requested at or after `since`.
    pub async fn actions(
        &self,
        job_id: Option<&str>,
        since: Option<i64>,
    ) -> Result<Vec<ActionRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM actions WHERE (?1 IS NULL OR job_id = ?1) \
             AND (?2 IS NULL OR requested_at >= ?2) ORDER BY id"
        ))
        .bind(job_id)
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.iter().map(record).collect())
    }

    /// Whether a job already has an action with one of these outcomes under a policy
    /// (so notify-only policies and holds notify once, not every pass).
    pub async fn has_action(
        &self,
        account: &str,
        job_id: &str,
        policy: &str,
        outcomes: &[Outcome],
    ) -> Result<bool, StoreError> {
        let list: Vec<&str> = outcomes.iter().map(|o| o.as_str()).collect();
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM actions WHERE account = ? AND job_id = ? AND policy = ? AND outcome IN (SELECT value FROM json_each(?)))",
        )
        .bind(account)
        .bind(job_id)
        .bind(policy)
        .bind(serde_json::to_string(&list).unwrap_or_else(|_| "[]".into()))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.get::<i64, _>(0) != 0)
    }

    /// Whether this job already had a `failed` action of this kind under this policy before
    /// action `before`: its failure was notified then, and later passes retry it quietly.
    pub async fn failed_before(
        &self,
        account: &str,
        job_id: &str,
        policy: &str,
        action: &str,
        before: i64,
    ) -> Result<bool, StoreError> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM actions WHERE account = ? AND job_id = ? AND policy = ?
                 AND action = ? AND outcome = 'failed' AND id < ?)",
        )
        .bind(account)
        .bind(job_id)
        .bind(policy)
        .bind(action)
        .bind(before)
        .fetch_one(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.get::<i64, _>(0) != 0)
    }

    /// The last cancel of a job the API accepted, as (action id, when), and whether ftguard
    /// has said since that the job kept going (a `cancel` row `notified` after it). `None`:
    /// no accepted cancel (the one refused by `one_cancel_per_job` is still pending).
    pub async fn accepted_cancel(
        &self,
        account: &str,
        job_id: &str,
    ) -> Result<Option<(i64, i64, bool)>, StoreError> {
        let row = sqlx::query(
            "SELECT a.id, a.completed_at, EXISTS (SELECT 1 FROM actions n
                 WHERE n.account = a.account AND n.job_id = a.job_id AND n.action = 'cancel'
                   AND n.outcome = 'notified' AND n.id > a.id)
             FROM actions a
             WHERE a.account = ? AND a.job_id = ? AND a.action = 'cancel' AND a.outcome IN ('succeeded', 'accepted')
             ORDER BY a.id DESC LIMIT 1",
        )
        .bind(account)
        .bind(job_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(row.and_then(|r| {
            let at: Option<i64> = r.get(1);
            Some((r.get(0), at?, r.get::<i64, _>(2) != 0))
        }))
    }

    /// (policy, action, outcome, count) for `/metrics`.
    pub async fn action_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT policy, action, outcome, COUNT(*) FROM actions GROUP BY policy, action, outcome")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(rows
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
            .collect())
    }
}
