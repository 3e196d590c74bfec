//! The daemon: wires the sync schedule, per-policy schedules, signals and sd_notify to the
//! pass functions in [`crate::app`]. It holds no business rules.

use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};
use tokio_util::sync::CancellationToken;

use crate::app::{self, App, BuildError};
use crate::config::{Config, ConfigError};
use crate::enforce::PassReport;
use crate::sdnotify;
use crate::store::StoreError;

/// Why the daemon stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Build(#[from] BuildError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("scheduler: {0}")]
    Scheduler(String),
}

/// Receives human-readable lines about what the daemon does (the demo prints them).
pub type Reporter = Arc<dyn Fn(String) + Send + Sync>;

/// How to run.
pub struct Options {
    /// The configuration file to re-read on SIGHUP.
    pub config_path: Option<PathBuf>,
    /// One sync, one evaluation, enforcement, then return.
    pub once: bool,
    pub report: Option<Reporter>,
    /// Cancelled to stop (signals cancel it too).
    pub stop: CancellationToken,
}

#[derive(Debug)]
enum Tick {
    Sync,
    Policies(String),
}

/// Runs until stopped. Returns the report of the last pass.
pub async fn run(config: Config, opts: Options) -> Result<PassReport, DaemonError> {
    let say = |line: String| {
        if let Some(r) = &opts.report {
            r(line);
        }
    };
    let mut app = App::build(config).await?;
    if app.config.accounts.is_empty() {
        tracing::warn!("no [[accounts]] configured: nothing to watch");
    }
    let reconciled = app.enforcer.reconcile_pending().await?;
    for l in &reconciled.lines {
        say(l.clone());
    }
    if !opts.once {
        spawn_signal_handlers(opts.stop.clone());
    }
    sdnotify::notify("READY=1");

    let mut last = full_pass(&app, &say).await?;
    if opts.once {
        return Ok(last);
    }

    let (tx, mut rx) = mpsc::channel::<Tick>(16);
    let mut sched = schedule(&app, tx.clone()).await?;
    let watchdog = spawn_watchdog(opts.stop.clone());
    let mut hup = hangup_stream();
    loop {
        tokio::select! {
            _ = opts.stop.cancelled() => break,
            _ = hup.recv() => {
                sdnotify::notify(&format!("RELOADING=1\nMONOTONIC_USEC={}", monotonic_usec()));
                match reload(opts.config_path.as_deref(), &app) {
                    Ok(new) => {
                        let _ = sched.shutdown().await;
                        app = new;
                        sched = schedule(&app, tx.clone()).await?;
                        tracing::info!("configuration reloaded");
                        say("configuration reloaded".into());
                    }
                    Err(e) => tracing::error!(error = %e, "reload refused; keeping the running configuration"),
                }
                sdnotify::notify("READY=1");
            }
            Some(tick) = rx.recv() => {
                let work = async {
                    match &tick {
                        Tick::Sync => full_pass(&app, &say).await,
                        Tick::Policies(s) => {
                            let policies = app.scheduled_policies().remove(s).unwrap_or_default();
                            let report = app.enforce(&policies).await?;
                            for l in &report.lines { say(l.clone()); }
                            Ok(report)
                        }
                    }
                };
                tokio::pin!(work);
                tokio::select! {
                    r = &mut work => last = r?,
                    _ = opts.stop.cancelled() => {
                        // Let in-flight actions finish, within a bound.
                        match tokio::time::timeout(app.config.shutdown_timeout, &mut work).await {
                            Ok(r) => last = r?,
                            Err(_) => tracing::warn!("shutdown: in-flight work did not finish in time; pending actions are reconciled at next start"),
                        }
                        break;
                    }
                }
            }
        }
    }
    sdnotify::notify("STOPPING=1");
    let _ = sched.shutdown().await;
    watchdog.abort();
    app.store.close().await;
    Ok(last)
}

/// A new App from the configuration file, on the same database; the error is for the log.
fn reload(path: Option<&std::path::Path>, current: &App) -> Result<App, String> {
    let config = Config::load(path).map_err(|e| e.to_string())?;
    App::with_store(config, current.store.clone()).map_err(|e| e.to_string())
}

/// Sync, then evaluate and enforce the policies that run after every sync.
async fn full_pass(app: &App, say: &impl Fn(String)) -> Result<PassReport, DaemonError> {
    let results = app.sync().await;
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    for (account, r) in &results {
        say(app::sync_line(account, r));
    }
    app.estimate().await?;
    let report = app.enforce(&app.after_sync_policies()).await?;
    for l in &report.lines {
        say(l.clone());
    }
    sdnotify::notify(&format!(
        "STATUS=synced {ok}/{} account(s); last pass: {} cancelled, {} failed, {} held",
        results.len(),
        report.cancelled,
        report.failed,
        report.held
    ));
    Ok(report)
}

async fn schedule(app: &App, tx: mpsc::Sender<Tick>) -> Result<JobScheduler, DaemonError> {
    let err = |e: tokio_cron_scheduler::JobSchedulerError| DaemonError::Scheduler(e.to_string());
    let sched = JobScheduler::new().await.map_err(err)?;
    let add = |expr: String, tick: Tick| {
        let tx = tx.clone();
        let tick = Arc::new(tick);
        CronJob::new_async(expr.as_str(), move |_, _| {
            let tx = tx.clone();
            let tick = tick.clone();
            Box::pin(async move {
                let t = match tick.as_ref() {
                    Tick::Sync => Tick::Sync,
                    Tick::Policies(s) => Tick::Policies(s.clone()),
                };
                // A full channel means a pass is still running: skipping this tick is right.
                let _ = tx.try_send(t);
            })
        })
        .map_err(err)
    };
    let mut jobs = vec![add(app.config.sync_schedule.clone(), Tick::Sync)?];
    for s in app.scheduled_policies().into_keys() {
        jobs.push(add(s.clone(), Tick::Policies(s))?);
    }
    for j in jobs {
        sched.add(j).await.map_err(err)?;
    }
    sched.start().await.map_err(err)?;
    Ok(sched)
}

fn spawn_signal_handlers(stop: CancellationToken) {
    tokio::spawn(async move {
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
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        stop.cancel();
    });
}

/// SIGHUP as a stream of ticks (never fires off unix).
fn hangup_stream() -> mpsc::Receiver<()> {
    let (tx, rx) = mpsc::channel(1);
    #[cfg(unix)]
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hup) = signal(SignalKind::hangup()) else {
            return;
        };
        while hup.recv().await.is_some() {
            let _ = tx.try_send(());
        }
    });
    #[cfg(not(unix))]
    drop(tx);
    rx
}

/// WATCHDOG=1 at half the interval while the runtime is alive.
fn spawn_watchdog(stop: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let Some(interval) = sdnotify::watchdog_interval() else {
            return;
        };
        let mut tick = tokio::time::interval(interval / 2);
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tick.tick() => sdnotify::notify("WATCHDOG=1"),
            }
        }
    })
}

fn monotonic_usec() -> u128 {
    #[cfg(target_os = "linux")]
    {
        // CLOCK_MONOTONIC as systemd reads it; /proc/uptime is close enough and needs no libc.
        if let Ok(s) = std::fs::read_to_string("/proc/uptime")
            && let Some(secs) = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
        {
            return (secs * 1_000_000.0) as u128;
        }
    }
    0
}
