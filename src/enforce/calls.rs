//! Sending a cancel or pause for a pending action row and recording what came back, through
//! every answer the API can give; and, at start, settling rows a crash left pending.

use std::time::Duration;

use tracing::Instrument;

use super::{Enforcer, MANUAL, PassReport};
use crate::model::time;
use crate::model::{Job, JobStatus};
use crate::notify::{Event, Notice};
use crate::policy::{ActionKind, Fallback};
use crate::provider::{Client, ProviderError};
use crate::store::{Completion, NewAction, Outcome, StoreError};

/// Attempts per action within one pass; after them the action is `failed` and a later pass
/// decides again.
const ATTEMPTS_PER_ACTION: u32 = 4;

/// What an action row is about: the job, the policy that decided and why.
#[derive(Debug, Clone, Copy)]
pub(super) struct Subject<'a> {
    pub account: &'a str,
    pub job_id: &'a str,
    pub policy: &'a str,
    pub reason: &'a str,
    /// For training-quality decisions: the checkpoint to use instead (inside: none listed).
    pub best_checkpoint: Option<Option<&'a crate::model::metrics::BestCheckpoint>>,
}

/// How a sent action ended, for the pass's report.
#[derive(Debug)]
pub(super) struct Executed {
    pub outcome: Outcome,
    /// `cancel` or `pause`: what was sent in the end (a refused pause may fall back to cancel).
    pub action: &'static str,
    /// The line for people.
    pub line: String,
}

impl Enforcer {
    /// Sends the call for a pending row and completes it.
    pub(super) async fn execute(
        &self,
        id: i64,
        subject: Subject<'_>,
        kind: ActionKind,
        fallback: Fallback,
    ) -> Result<Executed, StoreError> {
        let Subject {
            account,
            job_id,
            policy,
            reason,
            ..
        } = subject;
        let Some(client) = self.clients.get(account) else {
            let msg = format!("account {account:?} is not configured any more");
            self.store
                .complete_action(
                    id,
                    &Completion::new(Outcome::Failed).with_error(msg.as_str()),
                    time::now(),
                )
                .await?;
            return Ok(Executed {
                outcome: Outcome::Failed,
                action: kind.as_str(),
                line: msg,
            });
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
                            self.notice(Event::PauseRefused, account, job_id, policy, &note);
                            Completion {
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
                                    &Completion::new(Outcome::Failed)
                                        .with_error(refusal.as_str())
                                        .with_note(note.as_str()),
                                    time::now(),
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
                            let Some(cid) = self.store.insert_action(&new, time::now()).await?
                            else {
                                return Ok(Executed {
                                    outcome: Outcome::Failed,
                                    action: "pause",
                                    line: note,
                                });
                            };
                            let fin = self.cancel(cid, client, job_id).await?;
                            return self.finish(cid, "cancel", subject, fin).await;
                        }
                    }
                }
            },
            _ => self.cancel(id, client, job_id).await?,
        };
        self.finish(id, kind.as_str(), subject, fin).await
    }

    async fn finish(
        &self,
        id: i64,
        action: &'static str,
        subject: Subject<'_>,
        fin: Completion,
    ) -> Result<Executed, StoreError> {
        let Subject {
            account,
            job_id,
            policy,
            reason,
            best_checkpoint,
        } = subject;
        self.store.complete_action(id, &fin, time::now()).await?;
        let r = fin.response.clone().unwrap_or_default();
        // A training-quality stop: what it did not spend, from the job's own figures.
        let mut saving_line = String::new();
        if best_checkpoint.is_some()
            && matches!(fin.outcome, Outcome::Succeeded | Outcome::Accepted)
            && let Some((saving, left)) = self.saving(account, job_id, r.trained_tokens).await?
        {
            self.store.set_estimated_saving(id, saving).await?;
            saving_line = format!("; about {saving} not spent ({left} steps not trained)");
        }
        let instead = best_checkpoint.flatten().map_or(String::new(), |b| {
            format!(
                "; best checkpoint {} (step {}, {} {})",
                b.model,
                b.step,
                b.metric,
                crate::policy::format::loss(b.value)
            )
        });
        let line = match fin.outcome {
            Outcome::Succeeded | Outcome::Accepted => {
                // Accepted: the API answered the cancel with the job still active.
                let accepted = fin.outcome == Outcome::Accepted;
                let event = match (accepted, action) {
                    (true, _) => Event::CancelAccepted,
                    (false, "pause") => Event::Paused,
                    (false, _) => Event::Cancelled,
                };
                let what = if accepted {
                    "cancel accepted; the job has not ended yet".to_owned()
                } else {
                    format!("{action} applied")
                };
                tracing::warn!(
                    reason,
                    status = r.status.as_deref(),
                    trained_tokens = r.trained_tokens,
                    "{what}"
                );
                self.outbox.send(
                    Notice::job(event, account, job_id, policy, reason)
                        .with_answer(r.status.as_deref(), r.trained_tokens)
                        .with_best_checkpoint(best_checkpoint),
                );
                let status = r.status.as_deref().unwrap_or("?");
                let tokens = r.trained_tokens.map_or("unknown".into(), |t| t.to_string());
                if accepted {
                    format!(
                        "cancel accepted {account} {job_id}: {reason} -> still {status} (trained_tokens {tokens}); ftguard says so if it keeps going"
                    )
                } else {
                    format!(
                        "{event} {account} {job_id}: {reason} -> {status} (trained_tokens {tokens}){saving_line}{instead}"
                    )
                }
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
                // Once per job and policy: a later pass retries, and an API down for an hour
                // would otherwise send sixty of them per job. The next `cancelled` says it
                // went through; every attempt is in `ftguard actions` and the log.
                let said = policy != MANUAL
                    && self
                        .store
                        .failed_before(account, job_id, policy, action, id)
                        .await?;
                if !said {
                    self.notice(Event::CancelFailed, account, job_id, policy, &e);
                }
                format!("{action} of {account} {job_id} failed: {e}")
            }
        };
        Ok(Executed {
            outcome: fin.outcome,
            action,
            line,
        })
    }

    /// Cancels with the answer paths the API can give; see the module invariant.
    async fn cancel(
        &self,
        id: i64,
        client: &Client,
        job_id: &str,
    ) -> Result<Completion, StoreError> {
        let mut last_error = String::new();
        let mut last_status = None;
        let budget = client.action_budget();
        let deadline = tokio::time::Instant::now() + budget;
        let out_of_time = |last: &str| {
            format!(
                "no usable answer within this pass's {} for the job (twice request_timeout); a later pass decides again{}{last}",
                humantime::format_duration(budget),
                if last.is_empty() { "" } else { ". Last: " }
            )
        };
        for attempt in 1..=ATTEMPTS_PER_ACTION {
            self.store.count_attempt(id).await?;
            let Ok(answer) = tokio::time::timeout_at(deadline, client.cancel(job_id)).await else {
                last_error = out_of_time(&last_error);
                break;
            };
            match answer {
                Ok(job) => {
                    self.save_job(client, &job).await?;
                    // A 200 whose job still trains is the API's word that it will stop it,
                    // not that it has: recorded as accepted, and said if it does not stop.
                    let ended = job.status.is_terminal();
                    return Ok(Completion {
                        outcome: if ended {
                            Outcome::Succeeded
                        } else {
                            Outcome::Accepted
                        },
                        http_status: Some(200),
                        response: Some((&job).into()),
                        error: None,
                        note: (!ended).then(|| {
                            format!(
                                "the API accepted the cancel; the job was still {}",
                                job.status
                            )
                        }),
                    });
                }
                Err(e) => {
                    last_status = e.status();
                    last_error = e.to_string();
                    if e.status() == Some(404) {
                        return Ok(Completion {
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
                    let Ok(settled) =
                        tokio::time::timeout_at(deadline, self.settled(client, job_id, &e)).await
                    else {
                        last_error = out_of_time(&last_error);
                        break;
                    };
                    if let Some(fin) = settled? {
                        return Ok(fin);
                    }
                }
            }
            if attempt < ATTEMPTS_PER_ACTION {
                let pause =
                    crate::provider::retry::backoff(attempt + 1, None, Duration::from_secs(30));
                if tokio::time::Instant::now() + pause >= deadline {
                    last_error = out_of_time(&last_error);
                    break;
                }
                tokio::time::sleep(pause).await;
            }
        }
        Ok(Completion {
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
    ) -> Result<Option<Completion>, StoreError> {
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
        Ok(Some(Completion {
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
    ) -> Result<Result<Completion, String>, StoreError> {
        self.store.count_attempt(id).await?;
        // The same budget per pass as a cancel: every retry and the check included.
        let budget = client.action_budget();
        match tokio::time::timeout(budget, self.pause_once(client, job_id)).await {
            Ok(done) => done,
            Err(_) => Ok(Ok(Completion {
                outcome: Outcome::Failed,
                http_status: None,
                response: None,
                error: Some(format!(
                    "no usable answer within this pass's {} for the job (twice request_timeout); a later pass decides again",
                    humantime::format_duration(budget)
                )),
                note: None,
            })),
        }
    }

    async fn pause_once(
        &self,
        client: &Client,
        job_id: &str,
    ) -> Result<Result<Completion, String>, StoreError> {
        match client.pause(job_id).await {
            Ok(job) => {
                self.save_job(client, &job).await?;
                Ok(Ok(Completion {
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
                        return Ok(Ok(Completion {
                            outcome: Outcome::Succeeded,
                            http_status: e.status(),
                            response: Some(job.into()),
                            error: None,
                            note: Some("pause answer was unusable; the job shows paused".into()),
                        }));
                    }
                }
                Ok(Ok(Completion {
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
            .upsert_jobs(client.account(), std::slice::from_ref(job), time::now())
            .await
            .map(|_| ())
    }

    /// What stopping a job at its newest stored step did not spend, and the steps left: from
    /// the tokens it trained per step so far (`trained_tokens` in the API's answer) and its
    /// price. None when a figure is missing.
    async fn saving(
        &self,
        account: &str,
        job_id: &str,
        trained_tokens: Option<i64>,
    ) -> Result<Option<(crate::model::Usd, i64)>, StoreError> {
        let curves = self.store.curves(account, job_id).await?;
        let (Some(step), Some(total)) = (curves.last_step(), curves.total_steps) else {
            return Ok(None);
        };
        let Some(job) = self.store.job(Some(account), job_id).await?.pop() else {
            return Ok(None);
        };
        Ok(
            crate::cost::saving_by_steps(&job.job, trained_tokens, step, total, &self.prices)
                .map(|s| (s, total.saturating_sub(step).max(0))),
        )
    }

    /// At start: settles actions a crash left pending, before anything else is decided.
    pub async fn reconcile_pending(&self) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        for a in self.store.pending_actions().await? {
            let span = tracing::info_span!("action", account = %a.account, job_id = %a.job_id, policy = %a.policy);
            let best: Option<crate::model::metrics::BestCheckpoint> = a
                .best_checkpoint
                .as_ref()
                .and_then(|v| serde_json::from_value(v.clone()).ok());
            let subject = Subject {
                account: &a.account,
                job_id: &a.job_id,
                policy: &a.policy,
                reason: &a.reason,
                best_checkpoint: best.as_ref().map(Some),
            };
            async {
                tracing::info!(action = %a.action, "reconciling an action left pending");
                let kind = match a.action.as_str() {
                    "cancel" => ActionKind::Cancel,
                    "pause" => ActionKind::Pause,
                    // Only cancels and pauses are written pending. Anything else (a newer
                    // ftguard's, or a hand-edited row) is closed, never re-sent as a cancel.
                    other => {
                        let note = format!(
                            "left pending as {other:?}, which this ftguard does not reconcile; not sent again"
                        );
                        tracing::warn!(action = %other, "{note}");
                        self.store
                            .complete_action(
                                a.id,
                                &Completion::new(Outcome::Failed).with_note(note.as_str()),
                                time::now(),
                            )
                            .await?;
                        report.add(
                            Outcome::Failed,
                            "reconcile",
                            format!("not reconciled: {} {} {other}: {note}", a.account, a.job_id),
                        );
                        return Ok(());
                    }
                };
                // First ask the API: the cancel may have been applied just before the crash.
                if let Some(client) = self.clients.get(&a.account)
                    && let Ok(job) = client.retrieve(&a.job_id).await
                {
                    self.save_job(client, &job).await?;
                    if job.status.is_terminal() {
                        let applied =
                            job.status == JobStatus::Cancelled && kind == ActionKind::Cancel;
                        let fin = Completion {
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
                                subject,
                                fin,
                            )
                            .await?;
                        report.add(r.outcome, r.action, format!("reconciled: {}", r.line));
                        return Ok(());
                    }
                }
                let fin = self
                    .execute(a.id, subject, kind, Fallback::Notify)
                    .await?;
                report.add(fin.outcome, fin.action, format!("reconciled: {}", fin.line));
                Ok::<_, StoreError>(())
            }
            .instrument(span)
            .await?;
        }
        Ok(report)
    }
}
