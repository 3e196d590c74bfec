//! The daemon: wires the sync schedule, per-policy schedules, signals and sd_notify to the
//! pass functions in [`crate::app`]. It holds no business rules.

pub mod deadline_timer;
pub mod http;
pub mod schedule_timer;
pub mod sdnotify;

use std::path::PathBuf;
use std::sync::Arc;

use sd_notify::NotifyState;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::app::{App, BuildError, Counting};
use crate::config::{Config, ConfigError};
use crate::enforce::PassReport;
use crate::model::schedule::Schedule;
use crate::store::StoreError;
use crate::sync::outage_watch::SyncWatch;

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Lock(#[from] crate::store::LockError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// Receives human-readable lines about what the daemon does (the demo prints them).
pub type Reporter = Arc<dyn Fn(String) + Send + Sync>;

/// How to run.
pub struct Options {
    /// The configuration file to re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    pub report: Option<Reporter>,
    /// Cancelled to stop (signals cancel it too).
    pub stop: CancellationToken,
}

#[derive(Debug, Clone)]
enum Tick {
    Sync,
    /// A policy schedule's tick (boxed: a parsed cron is large beside `Sync`).
    Policies(Box<Schedule>),
}

/// Runs until stopped. Returns the report of the last pass.
pub async fn run(config: Config, opts: Options) -> Result<PassReport, DaemonError> {
    let say = |line: String| {
        if let Some(r) = &opts.report {
            r(line);
        }
    };
    let _lock = crate::store::DatabaseLock::acquire(&config.database)?;
    // Signals are taken over before anything slow (reconciling, the first sync): a SIGHUP
    // (`systemctl reload`) or SIGTERM arriving then is handled, not the default "terminate".
    spawn_signal_handlers(opts.stop.clone());
    let mut hup = hangup_stream();
    let mut app = App::build(config).await?;
    let (app_tx, app_rx) = tokio::sync::watch::channel(app.clone());
    let http = match app.config().listen {
        Some(addr) => {
            let listener = crate::daemon::http::bind(addr)
                .await
                .map_err(|source| DaemonError::Listen { addr, source })?;
            tracing::info!(addr = %listener.local_addr().unwrap_or(addr), "serving /healthz and /metrics");
            Some(crate::daemon::http::spawn(
                listener,
                app_rx,
                opts.stop.clone(),
            ))
        }
        None => None,
    };
    log_config(app.config(), "ftguard starting");
    if app.config().accounts.is_empty() {
        tracing::warn!("no [[accounts]] configured: nothing to watch");
    }
    // Ready before reconciling: settling actions left pending asks the API about each, which
    // on a slow or hanging API could outlast systemd's start timeout (and the service would
    // be failed and restarted into the same wait). The watchdog is answered meanwhile.
    sdnotify::notify(&[NotifyState::Ready]);
    // WATCHDOG=1 comes from the loops that run passes, so a wedged loop stops the pings and
    // systemd restarts the daemon; it starts before anything slow (reconciling, the first
    // pass, which can take longer than WatchdogSec on a large history).
    let mut watchdog = watchdog_ticker();
    let reconciling = async { Ok(app.reconcile_pending().await?) };
    let grace = app.config().shutdown_timeout;
    let reconciled = until_stopped(reconciling, &mut watchdog, &opts.stop, grace).await?;
    for l in &reconciled.lines {
        say(l.clone());
    }

    // Scheduled policies run on their own cron, not after every sync.
    let first = app.after_sync_policies();
    let mut watch = app.sync_watch().await;
    // Training files are counted in the background: a download never holds up a pass.
    let mut counting = Counting::Background(None);
    let first_pass = if opts.stop.is_cancelled() {
        // Stopped while settling pending actions: no first pass.
        Ok(PassReport::default())
    } else {
        // A first sync can take minutes (a large history, a slow API): SIGTERM during it
        // gets the same bounded wait as any in-flight pass, not the whole sync.
        let work = pass(&app, &say, &first, &mut watch, &mut counting);
        until_stopped(
            work,
            &mut watchdog,
            &opts.stop,
            app.config().shutdown_timeout,
        )
        .await
    };
    let mut last = first_pass?;

    let (tx, mut rx) = mpsc::channel::<Tick>(16);
    let mut sched = schedule(&app, tx.clone(), &opts.stop);
    let mut deadlines = crate::daemon::deadline_timer::DeadlineTimer::new();
    rearm(&app, &mut deadlines).await;
    // Stopped during the first pass: straight to shutdown.
    while !opts.stop.is_cancelled() {
        tokio::select! {
            _ = opts.stop.cancelled() => break,
            _ = watchdog.tick() => sdnotify::notify(&[NotifyState::Watchdog]),
            due = deadlines.wait() => {
                let span = tracing::info_span!("deadline", jobs = due.len());
                let work = async { Ok(app.on_deadline(&due).instrument(span).await?) };
                let report =
                    until_stopped(work, &mut watchdog, &opts.stop, app.config().shutdown_timeout).await?;
                for l in &report.lines {
                    say(l.clone());
                }
                last = report;
                if opts.stop.is_cancelled() {
                    break;
                }
                rearm(&app, &mut deadlines).await;
            }
            _ = hup.recv() => {
                sdnotify::reloading();
                match reload(opts.config_path.as_deref(), &app) {
                    Ok(new) => {
                        crate::telemetry::reload(true);
                        sched.cancel();
                        app = new;
                        let _ = app_tx.send(app.clone());
                        rearm(&app, &mut deadlines).await;
                        sched = schedule(&app, tx.clone(), &opts.stop);
                        log_config(app.config(), "configuration reloaded");
                        say("configuration reloaded".into());
                    }
                    Err(e) => {
                        crate::telemetry::reload(false);
                        tracing::error!(error = %e, "reload refused; keeping the running configuration");
                    }
                }
                sdnotify::notify(&[NotifyState::Ready]);
            }
            Some(tick) = rx.recv() => {
                let work = async {
                    match &tick {
                        Tick::Sync => {
                            pass(&app, &say, &app.after_sync_policies(), &mut watch, &mut counting).await
                        }
                        Tick::Policies(s) => {
                            let policies = app.scheduled_policies().remove(&**s).unwrap_or_default();
                            let report = app.enforce(&policies).await?;
                            for l in &report.lines { say(l.clone()); }
                            Ok(report)
                        }
                    }
                };
                last = until_stopped(work, &mut watchdog, &opts.stop, app.config().shutdown_timeout).await?;
                if opts.stop.is_cancelled() {
                    break;
                }
                rearm(&app, &mut deadlines).await;
            }
        }
    }
    sdnotify::notify(&[NotifyState::Stopping]);
    sched.cancel();
    if let Some(h) = http {
        let _ = h.await;
    }
    app.flush_notices().await;
    app.store().close().await;
    tracing::info!("stopped");
    Ok(last)
}

/// One line saying what runs: read after an incident, the journal shows which configuration
/// was in force (at start and after each reload).
fn log_config(config: &Config, message: &str) {
    let names = |v: Vec<&str>| v.join(",");
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        database = %config.database.display(),
        accounts = names(config.accounts.iter().map(|a| a.name.as_str()).collect()).as_str(),
        policies = names(config.policies.iter().map(|p| p.name.as_str()).collect()).as_str(),
        sync_schedule = config.sync_schedule.as_str(),
        dry_run = config.dry_run,
        max_cancels_per_pass = config.max_cancels_per_pass,
        max_cancels_per_hour = config.max_cancels_per_hour,
        "{message}"
    );
    for w in config.warnings() {
        tracing::warn!("configuration: {w}");
    }
}

/// Sets the deadline timer to the next crossing; a store error only costs exactness (logged).
async fn rearm(app: &App, timer: &mut crate::daemon::deadline_timer::DeadlineTimer) {
    match app.next_crossings(crate::model::time::now()).await {
        Ok(c) => {
            timer.set(&c, crate::model::time::now_ms());
            if let Some(at) = timer.at() {
                tracing::debug!(at = %crate::model::time::human(at), "next limit crossing");
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot compute the next limit crossing"),
    }
}

/// Settings a reload cannot change — the database (the store stays open) and the listen
/// address (the socket stays bound) — are kept as running, with a warning, so that the
/// "configuration reloaded" line shows what is really in force.
fn keep_restart_only_settings(new: &mut Config, running: &Config) {
    if new.database != running.database {
        tracing::warn!(
            new = %new.database.display(),
            running = %running.database.display(),
            "daemon.database changed: takes effect at the next restart; still using the running one"
        );
        new.database = running.database.clone();
    }
    if new.listen != running.listen {
        tracing::warn!("daemon.listen changed: takes effect at the next restart");
        new.listen = running.listen;
    }
}

/// A new App from the configuration file, on the same database; the error is for the log.
fn reload(path: Option<&std::path::Path>, current: &App) -> Result<App, String> {
    let mut config = Config::load(path).map_err(|e| e.to_string())?;
    keep_restart_only_settings(&mut config, current.config());
    current.reloaded(config).map_err(|e| e.to_string())
}

/// The application's pass, and what systemd shows of it (`systemctl status`).
async fn pass(
    app: &App,
    say: &dyn Fn(String),
    policies: &[crate::policy::Policy],
    watch: &mut SyncWatch,
    counting: &mut Counting,
) -> Result<PassReport, DaemonError> {
    let report = app.full_pass(say, policies, watch, counting).await?;
    let ok = report.syncs.iter().filter(|s| s["ok"] == true).count();
    let status = format!(
        "synced {ok}/{} accounts; last pass: {} cancelled, {} failed, {} held",
        report.syncs.len(),
        report.cancelled,
        report.failed,
        report.held
    );
    sdnotify::notify(&[NotifyState::Status(&status)]);
    Ok(report)
}

/// Starts one timer per cron schedule (syncs, and scheduled policies), each sleeping until its
/// next occurrence; cancelling the returned token (or `stop`) ends them.
fn schedule(app: &App, tx: mpsc::Sender<Tick>, stop: &CancellationToken) -> CancellationToken {
    let timers = stop.child_token();
    let mut ticks = vec![(app.config().sync_schedule.clone(), Tick::Sync)];
    for s in app.scheduled_policies().into_keys() {
        ticks.push((s.clone(), Tick::Policies(Box::new(s))));
    }
    for (schedule, tick) in ticks {
        let tx = tx.clone();
        tokio::spawn(crate::daemon::schedule_timer::run(
            schedule,
            timers.clone(),
            move || {
                // A full channel means a pass is still running: skipping this tick is right.
                !matches!(
                    tx.try_send(tick.clone()),
                    Err(mpsc::error::TrySendError::Closed(_))
                )
            },
        ));
    }
    timers
}

/// Installs the SIGTERM/SIGINT handlers now (not in a task that may run later), then waits
/// for either in the background and stops the daemon.
fn spawn_signal_handlers(stop: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            stop.cancel();
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
}

/// SIGHUP as a stream of ticks (never fires off unix).
fn hangup_stream() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Installed now; one received before the loop waits for it is kept (capacity 1).
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        let _ = tx.try_send(());
                    }
                });
            }
            Err(e) => tracing::error!(error = %e, "cannot install the SIGHUP handler"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// Awaits a pass while answering the watchdog. Once stopped (SIGTERM) the pass gets `grace`
/// more to finish its in-flight actions; past that it is dropped — what it stored stays, and
/// actions it left pending are reconciled at the next start — and an empty report returned.
async fn until_stopped<F>(
    work: F,
    watchdog: &mut tokio::time::Interval,
    stop: &CancellationToken,
    grace: std::time::Duration,
) -> Result<PassReport, DaemonError>
where
    F: std::future::Future<Output = Result<PassReport, DaemonError>>,
{
    tokio::pin!(work);
    tokio::select! {
        r = watched(&mut work, watchdog) => return r,
        () = stop.cancelled() => {}
    }
    match tokio::time::timeout(grace, watched(&mut work, watchdog)).await {
        Ok(r) => r,
        Err(_) => {
            tracing::warn!(
                "shutdown: in-flight work did not finish in time; pending actions are reconciled at next start"
            );
            Ok(PassReport::default())
        }
    }
}

/// Awaits `work` while answering the watchdog (a pass may take longer than WatchdogSec).
async fn watched<F: std::future::Future>(
    work: F,
    watchdog: &mut tokio::time::Interval,
) -> F::Output {
    tokio::pin!(work);
    loop {
        tokio::select! {
            r = &mut work => return r,
            _ = watchdog.tick() => sdnotify::notify(&[NotifyState::Watchdog]),
        }
    }
}

/// Ticks at half the watchdog interval systemd asked for; never when there is none.
fn watchdog_ticker() -> tokio::time::Interval {
    let period = sdnotify::watchdog_interval()
        .map_or(std::time::Duration::from_secs(365 * 86400), |i| i / 2);
    let mut t = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    t
}
