//! Enforcement: decisions -> durable action rows -> cancel/pause/notify calls -> recorded outcomes.
//!
//! Architecture invariant: a row is written (`pending`) before any call that changes a job,
//! and the database's unique index refuses a second pending or successful cancel of a job, so
//! a crash at any point leaves either nothing sent or a pending row that the next start
//! reconciles by asking the API for the job's real state. (A manual resume, harmless to repeat
//! and never reconciled, is recorded once its answer is in.)

use std::collections::HashMap;

use futures_util::StreamExt;
use tracing::Instrument;

use crate::model::metrics::{BestCheckpoint, best_checkpoint};
use crate::model::time;
use crate::notify::{Event, Notice, Outbox};
use crate::policy::{ActionKind, Decision, Fallback, GroupNotice, Verdict};
use crate::provider::Client;
use crate::store::{Completion, NewAction, Outcome, Store, StoreError};

mod breaker;
mod calls;
mod report;
mod stands;

use breaker::Breaker;
pub use report::PassReport;
pub use stands::already_done;

/// The policy name recorded for `ftguard cancel`.
pub const MANUAL: &str = crate::store::MANUAL_POLICY;

/// How long a job may stay active after the API accepted its cancel before ftguard says the
/// cancel did not take: OpenAI's answer already says `cancelled`; a provider winding a job
/// down shows it within a sync or two.
pub const CANCEL_TAKES_EFFECT_WITHIN: std::time::Duration = std::time::Duration::from_secs(10 * 60);

/// How many accounts are enforced at once within a pass.
pub const ACCOUNTS_AT_ONCE: usize = 8;

/// What enforcement needs: the store, a client per account, the outbox, the breaker limit.
#[derive(Clone)]
pub struct Enforcer {
    store: Store,
    clients: HashMap<String, Client>,
    /// Where notices go (webhooks, in the background).
    outbox: Outbox,
    max_cancels_per_pass: u32,
    /// Circuit breaker across passes: at most this many cancels/pauses sent by policies in any
    /// hour (`None`: no such limit). Manual cancels neither count nor are held.
    max_cancels_per_hour: Option<u32>,
    /// Prices, for what stopping a job early did not spend.
    prices: crate::cost::pricing::PriceTable,
}

impl Enforcer {
    pub fn new(
        store: Store,
        clients: &[Client],
        outbox: Outbox,
        max_cancels_per_pass: u32,
        max_cancels_per_hour: Option<u32>,
    ) -> Self {
        Self {
            store,
            clients: clients
                .iter()
                .map(|c| (c.account().to_string(), c.clone()))
                .collect(),
            outbox,
            max_cancels_per_pass,
            max_cancels_per_hour,
            prices: crate::cost::pricing::PriceTable::default(),
        }
    }

    /// The prices in force (the built-in ones otherwise), for estimating what stopping a job
    /// early did not spend.
    #[must_use]
    pub fn with_prices(mut self, prices: crate::cost::pricing::PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// Where notices go.
    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Notices go to `outbox` from now on (a reload keeps the deliveries in flight).
    pub fn set_outbox(&mut self, outbox: Outbox) {
        self.outbox = outbox;
    }

    fn notice(&self, event: Event, account: &str, job_id: &str, policy: &str, reason: &str) {
        self.outbox
            .send(Notice::job(event, account, job_id, policy, reason));
    }

    /// Records budget thresholds reached and notifies each the first time (also in dry-run:
    /// a notice changes nothing at the provider).
    pub async fn notify_groups(&self, notices: &[GroupNotice]) -> Result<PassReport, StoreError> {
        let mut report = PassReport::default();
        for n in notices {
            if !self.store.record_budget_notice(n, time::now()).await? {
                continue;
            }
            let span = tracing::info_span!("budget_notice", policy = %n.policy, group = %n.group, percent = n.percent);
            let _g = span.enter();
            tracing::warn!(reason = %n.reason, "budget threshold reached");
            self.outbox.send(Notice::budget(n));
            report.notified += 1;
            report
                .lines
                .push(format!("notified [{}]: {}", n.policy, n.reason));
        }
        Ok(report)
    }

    /// Carries out one pass of decisions. Accounts are enforced at once (up to
    /// [`ACCOUNTS_AT_ONCE`]), each account's decisions in order: three cancels hanging on one
    /// account do not hold up another account's.
    pub async fn run(&self, decisions: &[Decision<'_>]) -> Result<PassReport, StoreError> {
        // A policy typo breaking 500 jobs notifies 10 of each kind, then sums up the rest.
        let _pass = self.outbox.pass();
        let breaker = tokio::sync::Mutex::new(Breaker::new(
            self.max_cancels_per_pass,
            self.max_cancels_per_hour,
        ));
        let mut by_account: Vec<(&str, Vec<&Decision<'_>>)> = Vec::new();
        for d in decisions {
            match by_account.iter_mut().find(|(a, _)| *a == &*d.account) {
                Some((_, ds)) => ds.push(d),
                None => by_account.push((&*d.account, vec![d])),
            }
        }
        let breaker = &breaker;
        let reports: Vec<Result<PassReport, StoreError>> = futures_util::stream::iter(by_account)
            .map(|(_, ds)| async move {
                let mut report = PassReport::default();
                for d in ds {
                    let span = tracing::info_span!("action", account = %d.account, job_id = %d.job_id, policy = %d.policy);
                    self.decide(d, breaker, &mut report).instrument(span).await?;
                }
                Ok(report)
            })
            // Ordered output (an account's lines stay together, accounts in the order their
            // first decision came), concurrent work.
            .buffered(ACCOUNTS_AT_ONCE)
            .collect()
            .await;
        let mut report = PassReport::default();
        for r in reports {
            report.absorb(r?);
        }
        Ok(report)
    }

    /// Carries out one decision.
    async fn decide(
        &self,
        d: &Decision<'_>,
        breaker: &tokio::sync::Mutex<Breaker>,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        let row = |action: &'static str, outcome| NewAction {
            account: &d.account,
            job_id: &d.job_id,
            policy: &d.policy,
            action,
            reason: &d.reason,
            outcome,
        };
        let now = time::now();
        match &d.verdict {
            Verdict::Warn { until } => {
                self.store
                    .set_grace_mark(&d.account, &d.job_id, &d.policy, d.observed_at)
                    .await?;
                self.store
                    .insert_action(&row("warn", Outcome::Warned), now)
                    .await?;
                tracing::warn!(reason = %d.reason, until = %time::human(*until), "violation: grace period started");
                self.notice(
                    Event::GraceWarning,
                    &d.account,
                    &d.job_id,
                    &d.policy,
                    &d.reason,
                );
                report.add(
                    Outcome::Warned,
                    "warn",
                    format!(
                        "warned {} {}: {} (acts after {})",
                        d.account,
                        d.job_id,
                        d.reason,
                        time::human(*until)
                    ),
                );
            }
            Verdict::Clear => {
                self.store
                    .clear_grace_mark(&d.account, &d.job_id, &d.policy)
                    .await?;
                let id = self
                    .store
                    .insert_action(&row("clear", Outcome::Cleared), now)
                    .await?;
                if let Some(id) = id {
                    self.store
                        .complete_action(
                            id,
                            &Completion::new(Outcome::Cleared)
                                .with_note("became compliant during grace; not cancelled"),
                            now,
                        )
                        .await?;
                }
                tracing::info!("compliant again during grace; unmarked");
                self.notice(
                    Event::Cleared,
                    &d.account,
                    &d.job_id,
                    &d.policy,
                    "compliant again during grace",
                );
                report.add(
                    Outcome::Cleared,
                    "clear",
                    format!("cleared {} {}: compliant again", d.account, d.job_id),
                );
            }
            Verdict::Act(ActionKind::Notify) => {
                if !self
                    .store
                    .has_action(&d.account, &d.job_id, &d.policy, &[Outcome::Notified])
                    .await?
                {
                    let best = self.best_checkpoint(d).await?;
                    if let Some(id) = self
                        .store
                        .insert_action(&row("notify", Outcome::Notified), now)
                        .await?
                    {
                        self.record_best_checkpoint(d, id, best.as_ref()).await?;
                    }
                    tracing::warn!(reason = %d.reason, "violation (notify only)");
                    self.outbox.send(
                        Notice::job(
                            Event::Violation,
                            &d.account,
                            &d.job_id,
                            &d.policy,
                            &d.reason,
                        )
                        .with_best_checkpoint(d.judged_loss.map(|_| best.as_ref())),
                    );
                    report.add(
                        Outcome::Notified,
                        "notify",
                        format!("notified {} {}: {}", d.account, d.job_id, d.reason),
                    );
                }
            }
            Verdict::Act(kind) => {
                let action = kind.as_str();
                // An id that cannot be one URL path segment would send the cancel to
                // another URL: never acted on (the sync said so once, when it listed it).
                if let Some(why) = crate::provider::path::unusable(&d.job_id) {
                    tracing::debug!(why, "not acted on: its id cannot be sent to the API");
                    return Ok(());
                }
                // A pause the API refused (it cannot pause this job), with `fallback =
                // "notify"`, was said once: not sent and said again at every pass while
                // the job stays as it was. (A job that changed status since — one that
                // was queued and now trains — and a policy changed to `fallback =
                // "cancel"` are tried again.)
                if *kind == ActionKind::Pause && d.fallback == Fallback::Notify {
                    let changed = self.store.last_status_change(&d.account, &d.job_id).await?;
                    let mut actions = self.store.actions(Some(&d.job_id), None).await?;
                    actions.retain(|a| a.account == d.account);
                    if already_done(*kind, d.fallback, &d.policy, &actions, changed).is_some() {
                        tracing::debug!("its pause was refused and notified already");
                        return Ok(());
                    }
                }
                if d.dry_run {
                    if !self
                        .store
                        .has_action(&d.account, &d.job_id, &d.policy, &[Outcome::DryRun])
                        .await?
                    {
                        self.store
                            .insert_action(&row(action, Outcome::DryRun), now)
                            .await?;
                        tracing::info!(reason = %d.reason, "dry run: would {action}");
                        report.add(
                            Outcome::DryRun,
                            action,
                            format!("would {action} {} {}: {}", d.account, d.job_id, d.reason),
                        );
                    }
                    return Ok(());
                }
                // The breaker is shared by the accounts enforced at once: an action is
                // counted as it is allowed, and given back if it is not sent after all.
                let held = {
                    let mut b = breaker.lock().await;
                    let held = b.check(&self.store, now).await?;
                    if held.is_none() {
                        b.sent();
                    }
                    held
                };
                if let Some(held) = held {
                    let (limit, why) = (held.limit, held.why);
                    if !self
                        .store
                        .has_action(&d.account, &d.job_id, &d.policy, &[Outcome::Held])
                        .await?
                    {
                        self.store
                            .insert_action(&row(action, Outcome::Held), now)
                            .await?;
                        tracing::error!(limit = %limit, "circuit breaker: held, not acted on");
                        self.notice(
                            Event::Held,
                            &d.account,
                            &d.job_id,
                            &d.policy,
                            &format!("circuit breaker: {why}"),
                        );
                    }
                    report.add(
                        Outcome::Held,
                        action,
                        format!("held {} {} ({limit})", d.account, d.job_id),
                    );
                    return Ok(());
                }
                let Some(id) = self
                    .store
                    .insert_action(&row(action, Outcome::Pending), now)
                    .await?
                else {
                    breaker.lock().await.unsent();
                    self.cancel_did_not_take(d, now, report).await?;
                    return Ok(());
                };
                // Named before the job stops: the checkpoints the API lists at that moment.
                let best = self.best_checkpoint(d).await?;
                self.record_best_checkpoint(d, id, best.as_ref()).await?;
                let subject = calls::Subject {
                    account: &d.account,
                    job_id: &d.job_id,
                    policy: &d.policy,
                    reason: &d.reason,
                    best_checkpoint: d.judged_loss.map(|_| best.as_ref()),
                };
                let fin = self.execute(id, subject, *kind, d.fallback).await?;
                report.add(fin.outcome, fin.action, fin.line);
            }
        }
        Ok(())
    }

    /// For a training-quality decision: the checkpoint to use instead, among those the API
    /// lists now (stored too, for `show`). None for other policies, and when none is listed or
    /// they cannot be read (said in the log; the action goes ahead).
    async fn best_checkpoint(
        &self,
        d: &Decision<'_>,
    ) -> Result<Option<BestCheckpoint>, StoreError> {
        let Some(judged) = d.judged_loss else {
            return Ok(None);
        };
        let Some(client) = self.clients.get(&*d.account) else {
            return Ok(None);
        };
        match client.checkpoints(&d.job_id).await {
            Ok(list) => {
                self.store
                    .put_checkpoints(&d.account, &d.job_id, &list)
                    .await?;
                Ok(best_checkpoint(&list, judged))
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not list the job's checkpoints: the action names none");
                Ok(self
                    .store
                    .checkpoints(&d.account, &d.job_id)
                    .await
                    .ok()
                    .and_then(|stored| best_checkpoint(&stored, judged)))
            }
        }
    }

    /// Records on the action the checkpoint it names (training-quality decisions only).
    async fn record_best_checkpoint(
        &self,
        d: &Decision<'_>,
        action_id: i64,
        best: Option<&BestCheckpoint>,
    ) -> Result<(), StoreError> {
        if d.judged_loss.is_none() {
            return Ok(());
        }
        let json = best.and_then(|b| serde_json::to_value(b).ok());
        self.store
            .set_best_checkpoint(action_id, json.as_ref())
            .await
    }

    /// A policy still decides to cancel a job whose cancel the API accepted: the job is still
    /// active in the listing. Soon after the cancel that is the provider winding it down; past
    /// [`CANCEL_TAKES_EFFECT_WITHIN`] the provider did not stop it and the job may still be
    /// billing. Said once per accepted cancel — logged as an error, a `cancel_ineffective`
    /// notice, a `cancel` row `notified` — and not sent again: ftguard cancels a job once.
    async fn cancel_did_not_take(
        &self,
        d: &Decision<'_>,
        now: i64,
        report: &mut PassReport,
    ) -> Result<(), StoreError> {
        let Some((cancel_id, accepted_at, said)) =
            self.store.accepted_cancel(&d.account, &d.job_id).await?
        else {
            tracing::debug!("a cancel of this job is already pending");
            return Ok(());
        };
        let since = now.saturating_sub(accepted_at);
        if said || since < crate::model::secs(CANCEL_TAKES_EFFECT_WITHIN) {
            tracing::debug!(
                cancel = cancel_id,
                "this job's cancel was accepted {since}s ago"
            );
            return Ok(());
        }
        let reason = format!(
            "still active {} after the API accepted its cancel (action #{cancel_id}): the provider did not stop it and it may still be billing; stop it at the provider (ftguard cancels a job once). Limit: {}",
            crate::policy::format::secs(since),
            d.reason
        );
        let row = NewAction {
            account: &d.account,
            job_id: &d.job_id,
            policy: &d.policy,
            action: "cancel",
            reason: &reason,
            outcome: Outcome::Notified,
        };
        self.store.insert_action(&row, now).await?;
        tracing::error!(cancel = cancel_id, "{reason}");
        self.notice(
            Event::CancelIneffective,
            &d.account,
            &d.job_id,
            &d.policy,
            &reason,
        );
        report.add(
            Outcome::Notified,
            "cancel",
            format!("cancel did not take {} {}: {reason}", d.account, d.job_id),
        );
        Ok(())
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
            observed_at: time::now(),
            judged_loss: None,
        };
        let mut one = self.clone();
        one.max_cancels_per_pass = 1;
        one.max_cancels_per_hour = None;
        one.run(std::slice::from_ref(&d)).await
    }

    /// `ftguard resume`: resumes a paused job and records it as a completed action of policy
    /// "manual" (never written pending first: a resume left pending would be reconciled as a
    /// cancel, and resuming twice is harmless). Notifies `resumed`. Returns the action's id
    /// and the API's error, if it refused.
    pub async fn manual_resume(
        &self,
        account: &str,
        job_id: &str,
        reason: &str,
    ) -> Result<(Option<i64>, Option<crate::provider::ProviderError>), StoreError> {
        let Some(client) = self.clients.get(account) else {
            return Ok((None, None));
        };
        let span =
            tracing::info_span!("action", account = %account, job_id = %job_id, policy = %MANUAL);
        async move {
            let answer = client.resume(job_id).await;
            let now = time::now();
            let outcome = if answer.is_ok() {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            };
            let id = self
                .store
                .insert_action(
                    &NewAction {
                        account,
                        job_id,
                        policy: MANUAL,
                        action: "resume",
                        reason,
                        outcome,
                    },
                    now,
                )
                .await?;
            match answer {
                Ok(job) => {
                    self.store
                        .upsert_jobs(client.account(), std::slice::from_ref(&job), now)
                        .await?;
                    if let Some(id) = id {
                        let fields: crate::store::ResponseFields = (&job).into();
                        self.store
                            .complete_action(
                                id,
                                &Completion {
                                    http_status: Some(200),
                                    response: Some(fields),
                                    ..Completion::new(outcome)
                                },
                                now,
                            )
                            .await?;
                    }
                    tracing::info!(status = %job.status, reason, "resumed by hand");
                    self.outbox.send(
                        Notice::job(Event::Resumed, account, job_id, MANUAL, reason)
                            .with_answer(Some(job.status.as_str()), job.trained_tokens),
                    );
                    Ok((id, None))
                }
                Err(e) => {
                    if let Some(id) = id {
                        self.store
                            .complete_action(
                                id,
                                &Completion {
                                    http_status: e.status(),
                                    ..Completion::new(outcome).with_error(e.to_string())
                                },
                                now,
                            )
                            .await?;
                    }
                    tracing::error!(error = %e, "resume failed");
                    Ok((id, Some(e)))
                }
            }
        }
        .instrument(span)
        .await
    }
}
