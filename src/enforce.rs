//! Enforcement: decisions -> durable action rows -> cancel/pause/notify calls -> recorded outcomes.
//!
//! Architecture invariant: a row is written (`pending`) before any call that changes a job,
//! and the database's unique index refuses a second pending or successful cancel of a job, so
//! a crash at any point leaves either nothing sent or a pending row that the next start
//! reconciles by asking the API for the job's real state.

use std::collections::HashMap;
use std::time::Duration;

use serde::Serialize;
use tracing::Instrument;

use crate::clock;
use crate::model::{Job, JobStatus};
use crate::notify::{self, Notice, Notifier};
use crate::policy::{ActionKind, Decision, Fallback, GroupNotice, Verdict};
use crate::provider::{Client, ProviderError};
use crate::store::{NewAction, Outcome, ResponseFields, Store, StoreError};

/// The policy name recorded for `ftguard cancel`.
pub const MANUAL: &str = "manual";

/// Attempts per action within one pass; after them the action is `failed` and a later pass
/// decides again.
const ATTEMPTS_PER_ACTION: u32 = 4;

/// What enforcement needs: the store, a client per account, notifiers, the breaker limit.
#[derive(Clone)]
pub struct Enforcer {
    pub store: Store,
    pub clients: HashMap<String, Client>,
    pub notifiers: Vec<Notifier>,
    pub http: reqwest::Client,
    pub max_cancels_per_pass: u32,
    /// Circuit breaker across passes: at most this many cancels/pauses sent by policies in any
    /// hour (`None`: no such limit). Manual cancels neither count nor are held.
    pub max_cancels_per_hour: Option<u32>,
}

/// The window of `max_cancels_per_hour`.
const BREAKER_WINDOW_SECS: i64 = 3600;

/// What one pass did, for summaries and `STATUS=`.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PassReport {
    /// The syncs before the pass (`run --once --json`), as `sync --json` shows them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub syncs: Vec<serde_json::Value>,
    pub cancelled: u32,
    pub paused: u32,
    pub already_finished: u32,
    pub failed: u32,
    pub held: u32,
    pub warned: u32,
    pub cleared: u32,
    pub notified: u32,
    pub dry_run: u32,
    pub lines: Vec<String>,
}

impl PassReport {
    /// Adds another report's counts and lines to this one.
    pub fn absorb(&mut self, other: PassReport) {
        self.cancelled += other.cancelled;
        self.paused += other.paused;
        self.already_finished += other.already_finished;
        self.failed += other.failed;
        self.held += other.held;
        self.warned += other.warned;
        self.cleared += other.cleared;
        self.notified += other.notified;
        self.dry_run += other.dry_run;
        self.syncs.extend(other.syncs);
        self.lines.extend(other.lines);
    }

    fn add(&mut self, outcome: Outcome, action: &str, line: String) {
        match (outcome, action) {
            (Outcome::Succeeded, "pause") => self.paused += 1,
            (Outcome::Succeeded, _) => self.cancelled += 1,
            (Outcome::AlreadyFinished, _) => self.already_finished += 1,
            (Outcome::Failed, _) => self.failed += 1,
            (Outcome::Held, _) => self.held += 1,
            (Outcome::Warned, _) => self.warned += 1,
            (Outcome::Cleared, _) => self.cleared += 1,
            (Outcome::Notified, _) => self.notified += 1,
            (Outcome::DryRun, _) => self.dry_run += 1,
            (Outcome::Pending, _) => {}
        }
        self.lines.push(line);
    }
}

/// The end of one cancel or pause.
struct Finished {
    outcome: Outcome,
    http_status: Option<u16>,
    response: Option<ResponseFields>,
    error: Option<String>,
    note: Option<String>,
}

impl Enforcer {
    fn notice(&self, event: &str, account: &str, job_id: &str, policy: &str, reason: &str) {
        notify::send_all(
            &self.http,
            &self.notifiers,
            Notice::job(event, account, job_id, policy, reason),
        );
    }

    /// Records budget thresholds reached and notifies each the first time (also in dry-run:
    /// a notice changes nothing at the provider).
    pub async fn notify_groups(&self, notices: &[GroupNotice]) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        for n in notices {
            if !self.store.record_budget_notice(n, clock::now()).await? {
                continue;
            }
            let span = tracing::info_span!("budget_notice", policy = %n.policy, group = %n.group, percent = n.percent);
            let _g = span.enter();
            tracing::warn!(reason = %n.reason, "budget threshold reached");
            notify::send_all(&self.http, &self.notifiers, Notice::budget(n));
            report.notified += 1;
            report
                .lines
                .push(format!("notified [{}]: {}", n.policy, n.reason));
        }
        Ok(report)
    }

    /// Carries out one pass of decisions.
    pub async fn run(&self, decisions: &[Decision<'_>]) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        let mut acted = 0u32;
        // What the hourly breaker still allows, read once the first action is due.
        let mut hour_left: Option<u32> = None;
        for d in decisions {
            let span = tracing::info_span!("action", account = %d.account, job_id = %d.job_id, policy = %d.policy);
            async {
                let row = |action: &'static str, outcome| NewAction {
                    account: &d.account,
                    job_id: &d.job_id,
                    policy: &d.policy,
                    action,
                    reason: &d.reason,
                    outcome,
                };
                let now = clock::now();
                match &d.verdict {
                    Verdict::Warn { until } => {
                        self.store.set_grace_mark(&d.account, &d.job_id, &d.policy, d.observed_at).await?;
                        self.store.insert_action(&row("warn", Outcome::Warned), now).await?;
                        tracing::warn!(reason = %d.reason, until = %clock::human(*until), "violation: grace period started");
                        self.notice("grace_warning", &d.account, &d.job_id, &d.policy, &d.reason);
                        report.add(Outcome::Warned, "warn", format!("warned {} {}: {} (acts after {})", d.account, d.job_id, d.reason, clock::human(*until)));
                    }
                    Verdict::Clear => {
                        self.store.clear_grace_mark(&d.account, &d.job_id, &d.policy).await?;
                        let id = self.store.insert_action(&row("clear", Outcome::Cleared), now).await?;
                        if let Some(id) = id {
                            self.store.complete_action(id, Outcome::Cleared, None, None, None, Some("became compliant during grace; not cancelled"), now).await?;
                        }
                        tracing::info!("compliant again during grace; unmarked");
                        self.notice("cleared", &d.account, &d.job_id, &d.policy, "compliant again during grace");
                        report.add(Outcome::Cleared, "clear", format!("cleared {} {}: compliant again", d.account, d.job_id));
                    }
                    Verdict::Act(ActionKind::Notify) => {
                        if !self.store.has_action(&d.account, &d.job_id, &d.policy, &[Outcome::Notified]).await? {
                            self.store.insert_action(&row("notify", Outcome::Notified), now).await?;
                            tracing::warn!(reason = %d.reason, "violation (notify only)");
                            self.notice("violation", &d.account, &d.job_id, &d.policy, &d.reason);
                            report.add(Outcome::Notified, "notify", format!("notified {} {}: {}", d.account, d.job_id, d.reason));
                        }
                    }
                    Verdict::Act(kind) => {
                        let action = kind.as_str();
                        if d.dry_run {
                            if !self.store.has_action(&d.account, &d.job_id, &d.policy, &[Outcome::DryRun]).await? {
                                self.store.insert_action(&row(action, Outcome::DryRun), now).await?;
                                tracing::info!(reason = %d.reason, "dry run: would {action}");
                                report.add(Outcome::DryRun, action, format!("would {action} {} {}: {}", d.account, d.job_id, d.reason));
                            }
                            return Ok(());
                        }
                        let left = match (self.max_cancels_per_hour, hour_left) {
                            (None, _) => u32::MAX,
                            (Some(_), Some(left)) => left,
                            (Some(max), None) => {
                                let sent = self.store.actions_sent_since(now - BREAKER_WINDOW_SECS).await?;
                                *hour_left.insert(max.saturating_sub(sent))
                            }
                        };
                        if acted >= self.max_cancels_per_pass || acted >= left {
                            let (limit, why) = if acted >= self.max_cancels_per_pass {
                                (format!("max_cancels_per_pass = {}", self.max_cancels_per_pass), format!("more than {} actions in one pass", self.max_cancels_per_pass))
                            } else {
                                let max = self.max_cancels_per_hour.unwrap_or_default();
                                (format!("max_cancels_per_hour = {max}"), format!("{max} actions already sent in the last hour"))
                            };
                            if !self.store.has_action(&d.account, &d.job_id, &d.policy, &[Outcome::Held]).await? {
                                self.store.insert_action(&row(action, Outcome::Held), now).await?;
                                tracing::error!(limit = %limit, "circuit breaker: held, not acted on");
                                self.notice("held", &d.account, &d.job_id, &d.policy, &format!("circuit breaker: {why}"));
                            }
                            report.add(Outcome::Held, action, format!("held {} {} ({limit})", d.account, d.job_id));
                            return Ok(());
                        }
                        let Some(id) = self.store.insert_action(&row(action, Outcome::Pending), now).await? else {
                            tracing::debug!("a cancel of this job is already pending or done");
                            return Ok(());
                        };
                        acted += 1;
                        let fin = self.execute(id, &d.account, &d.job_id, *kind, d.fallback, &d.policy, &d.reason).await?;
                        report.add(fin.0, fin.1, fin.2);
                    }
                }
                Ok::<_, StoreError>(())
            }
            .instrument(span)
            .await?;
        }
        Ok(report)
    }

    /// Sends the call for a pending row and completes it. Returns (outcome, action, line).
    #[allow(clippy::too_many_arguments)]
    async fn execute(
        &self,
        id: i64,
        account: &str,
        job_id: &str,
        kind: ActionKind,
        fallback: Fallback,
        policy: &str,
        reason: &str,
    ) -> Result<(Outcome, &'static str, String), StoreError> {
        let Some(client) = self.clients.get(account) else {
            let msg = format!("account {account:?} is not configured any more");
            self.store
                .complete_action(
                    id,
                    Outcome::Failed,
                    None,
                    None,
                    Some(&msg),
                    None,
                    clock::now(),
                )
                .await?;
            return Ok((Outcome::Failed, kind.as_str(), msg));
        };
        let fin = match kind {
            ActionKind::Pause => match self.pause(id, client, job_id).await? {
                Ok(fin) => fin,
                Err(refusal) => {
                    let note = format!(
                        "pause refused ({refusal}); fallback {}",
                        match fallback {
                            Fallback::Cancel => "cancel",
                            Fallback::Notify => "notify",
                        }
                    );
                    match fallback {
                        Fallback::Notify => {
                            self.notice("pause_refused", account, job_id, policy, &note);
                            Finished {
                                outcome: Outcome::Notified,
                                http_status: None,
                                response: None,
                                error: Some(refusal),
                                note: Some(note),
                            }
                        }
                        Fallback::Cancel => {
                            self.store
                                .complete_action(
                                    id,
                                    Outcome::Failed,
                                    None,
                                    None,
                                    Some(&refusal),
                                    Some(&note),
                                    clock::now(),
                                )
                                .await?;
                            let new = NewAction {
                                account,
                                job_id,
                                policy,
                                action: "cancel",
                                reason,
                                outcome: Outcome::Pending,
                            };
                            let Some(cid) = self.store.insert_action(&new, clock::now()).await?
                            else {
                                return Ok((Outcome::Failed, "pause", note));
                            };
                            let fin = self.cancel(cid, client, job_id).await?;
                            return self
                                .finish(cid, "cancel", account, job_id, policy, reason, fin)
                                .await;
                        }
                    }
                }
            },
            _ => self.cancel(id, client, job_id).await?,
        };
        self.finish(id, kind.as_str(), account, job_id, policy, reason, fin)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        id: i64,
        action: &'static str,
        account: &str,
        job_id: &str,
        policy: &str,
        reason: &str,
        fin: Finished,
    ) -> Result<(Outcome, &'static str, String), StoreError> {
        self.store
            .complete_action(
                id,
                fin.outcome,
                fin.http_status,
                fin.response.as_ref(),
                fin.error.as_deref(),
                fin.note.as_deref(),
                clock::now(),
            )
            .await?;
        let r = fin.response.unwrap_or_default();
        let line = match fin.outcome {
            Outcome::Succeeded => {
                tracing::warn!(
                    reason,
                    status = r.status.as_deref(),
                    trained_tokens = r.trained_tokens,
                    "{action} applied"
                );
                self.notice(
                    if action == "pause" {
                        "paused"
                    } else {
                        "cancelled"
                    },
                    account,
                    job_id,
                    policy,
                    reason,
                );
                format!(
                    "{}{} {account} {job_id}: {reason} -> {} (trained_tokens {})",
                    if action == "pause" {
                        "paused"
                    } else {
                        "cancelled"
                    },
                    "",
                    r.status.as_deref().unwrap_or("?"),
                    r.trained_tokens.map_or("unknown".into(), |t| t.to_string())
                )
            }
            Outcome::AlreadyFinished => {
                tracing::info!(status = r.status.as_deref(), "job had already finished");
                format!(
                    "{account} {job_id} had already finished ({})",
                    r.status.as_deref().unwrap_or("?")
                )
            }
            Outcome::Notified => format!(
                "notified {account} {job_id}: {}",
                fin.note.unwrap_or_default()
            ),
            _ => {
                let e = fin.error.unwrap_or_default();
                if policy == MANUAL {
                    tracing::error!(error = %e, "{action} failed; nothing retries a manual one");
                } else {
                    tracing::error!(error = %e, "{action} failed; a later pass will decide again");
                }
                self.notice("cancel_failed", account, job_id, policy, &e);
                format!("{action} of {account} {job_id} failed: {e}")
            }
        };
        Ok((fin.outcome, action, line))
    }

    /// Cancels with the answer paths the API can give; see the module invariant.
    async fn cancel(&self, id: i64, client: &Client, job_id: &str) -> Result<Finished, StoreError> {
        let mut last_error = String::new();
        let mut last_status = None;
        for attempt in 1..=ATTEMPTS_PER_ACTION {
            self.store.count_attempt(id).await?;
            match client.cancel(job_id).await {
                Ok(job) => {
                    self.save_job(client, &job).await?;
                    return Ok(Finished {
                        outcome: Outcome::Succeeded,
                        http_status: Some(200),
                        response: Some((&job).into()),
                        error: None,
                        note: None,
                    });
                }
                Err(e) => {
                    last_status = e.status();
                    last_error = e.to_string();
                    if e.status() == Some(404) {
                        return Ok(Finished {
                            outcome: Outcome::Failed,
                            http_status: Some(404),
                            response: None,
                            error: Some(last_error),
                            note: Some("the job is unknown to the API".into()),
                        });
                    }
                    tracing::warn!(attempt, error = %e, "cancel got no usable answer; checking the job's real state");
                    // 400/409 "already finished", or no usable answer: the cancel may have
                    // been applied. The job's real state decides.
                    if let Some(fin) = self.settled(client, job_id, &e).await? {
                        return Ok(fin);
                    }
                }
            }
            if attempt < ATTEMPTS_PER_ACTION {
                tokio::time::sleep(crate::provider::retry::backoff(
                    attempt + 1,
                    None,
                    Duration::from_secs(30),
                ))
                .await;
            }
        }
        Ok(Finished {
            outcome: Outcome::Failed,
            http_status: last_status,
            response: None,
            error: Some(last_error),
            note: None,
        })
    }

    /// After a failed cancel: retrieve the job; if it is no longer active, the action is settled.
    async fn settled(
        &self,
        client: &Client,
        job_id: &str,
        cause: &ProviderError,
    ) -> Result<Option<Finished>, StoreError> {
        let job = match client.retrieve(job_id).await {
            Ok(j) => j,
            Err(e) => {
                tracing::warn!(error = %e, "could not retrieve the job after a failed cancel");
                return Ok(None);
            }
        };
        self.save_job(client, &job).await?;
        if !job.status.is_terminal() {
            return Ok(None);
        }
        let applied =
            job.status == JobStatus::Cancelled && !matches!(cause.status(), Some(400 | 409));
        Ok(Some(Finished {
            outcome: if applied {
                Outcome::Succeeded
            } else {
                Outcome::AlreadyFinished
            },
            http_status: cause.status(),
            response: Some((&job).into()),
            error: None,
            note: Some(if applied {
                format!(
                    "cancel answer was unusable ({cause}); the job's state shows it was applied"
                )
            } else {
                format!("the API answered: {cause}")
            }),
        }))
    }

    /// Pauses; `Err(refusal)` when the API refuses (e.g. no step trained yet).
    async fn pause(
        &self,
        id: i64,
        client: &Client,
        job_id: &str,
    ) -> Result<Result<Finished, String>, StoreError> {
        self.store.count_attempt(id).await?;
        match client.pause(job_id).await {
            Ok(job) => {
                self.save_job(client, &job).await?;
                Ok(Ok(Finished {
                    outcome: Outcome::Succeeded,
                    http_status: Some(200),
                    response: Some((&job).into()),
                    error: None,
                    note: None,
                }))
            }
            Err(e) if matches!(e.status(), Some(400..=499)) => Ok(Err(e.to_string())),
            Err(e) => {
                // No usable answer: the job's state says whether it was applied.
                let state = client.retrieve(job_id).await.ok();
                if let Some(job) = &state {
                    self.save_job(client, job).await?;
                    if job.status.as_str() == "paused" {
                        return Ok(Ok(Finished {
                            outcome: Outcome::Succeeded,
                            http_status: e.status(),
                            response: Some(job.into()),
                            error: None,
                            note: Some("pause answer was unusable; the job shows paused".into()),
                        }));
                    }
                }
                Ok(Ok(Finished {
                    outcome: Outcome::Failed,
                    http_status: e.status(),
                    response: state.as_ref().map(Into::into),
                    error: Some(e.to_string()),
                    note: None,
                }))
            }
        }
    }

    async fn save_job(&self, client: &Client, job: &Job) -> Result<(), StoreError> {
        self.store
            .upsert_jobs(client.account(), std::slice::from_ref(job), clock::now())
            .await
            .map(|_| ())
    }

    /// At start: settles actions a crash left pending, before anything else is decided.
    pub async fn reconcile_pending(&self) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        for a in self.store.pending_actions().await? {
            let span = tracing::info_span!("action", account = %a.account, job_id = %a.job_id, policy = %a.policy);
            async {
                tracing::info!(action = %a.action, "reconciling an action left pending");
                let kind = if a.action == "pause" {
                    ActionKind::Pause
                } else {
                    ActionKind::Cancel
                };
                // First ask the API: the cancel may have been applied just before the crash.
                if let Some(client) = self.clients.get(&a.account)
                    && let Ok(job) = client.retrieve(&a.job_id).await
                {
                    self.save_job(client, &job).await?;
                    if job.status.is_terminal() {
                        let applied =
                            job.status == JobStatus::Cancelled && kind == ActionKind::Cancel;
                        let fin = Finished {
                            outcome: if applied {
                                Outcome::Succeeded
                            } else {
                                Outcome::AlreadyFinished
                            },
                            http_status: None,
                            response: Some((&job).into()),
                            error: None,
                            note: Some("reconciled after restart from the job's state".into()),
                        };
                        let r = self
                            .finish(
                                a.id,
                                if kind == ActionKind::Pause {
                                    "pause"
                                } else {
                                    "cancel"
                                },
                                &a.account,
                                &a.job_id,
                                &a.policy,
                                &a.reason,
                                fin,
                            )
                            .await?;
                        report.add(r.0, r.1, format!("reconciled: {}", r.2));
                        return Ok(());
                    }
                }
                let fin = self
                    .execute(
                        a.id,
                        &a.account,
                        &a.job_id,
                        kind,
                        Fallback::Notify,
                        &a.policy,
                        &a.reason,
                    )
                    .await?;
                report.add(fin.0, fin.1, format!("reconciled: {}", fin.2));
                Ok::<_, StoreError>(())
            }
            .instrument(span)
            .await?;
        }
        Ok(report)
    }

    /// A manual cancel through the same path, recorded with policy `manual`.
    pub async fn manual_cancel(
        &self,
        account: &str,
        job_id: &str,
        reason: &str,
    ) -> Result<PassReport, StoreError> {
        let d = Decision {
            account: account.into(),
            job_id: job_id.into(),
            policy: MANUAL.into(),
            verdict: Verdict::Act(ActionKind::Cancel),
            reason: reason.into(),
            dry_run: false,
            fallback: Fallback::Notify,
            waiting: false,
            created_at: 0,
            observed_at: clock::now(),
        };
        let mut one = self.clone();
        one.max_cancels_per_pass = 1;
        one.max_cancels_per_hour = None;
        one.run(std::slice::from_ref(&d)).await
    }
}
