//! Command implementations: build what a command needs, run it, print for people or JSON.

use std::process::ExitCode;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::{Cli, Command, ConfigCommand};

mod actions;
mod check;
mod curve;
mod demo;
mod jobs;
pub mod log_writer;
pub mod output;
mod plan;
mod replay;
mod spend;
mod standing;
mod status;
pub mod table;
use crate::{out, outln};
use ftguard::app::App;
use ftguard::config::{Config, Secrets};
use ftguard::daemon;
use ftguard::model::time;
use ftguard::store::Store;

pub async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let path = cli.config.as_deref();
    let load = || Config::load(path).context("invalid configuration");
    // Commands that only read the database work without the accounts' credentials.
    let load_to_read = || Config::load_with(path, Secrets::Skip).context("invalid configuration");
    match cli.command {
        Command::Completions { shell } => {
            let mut out = Vec::new();
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "ftguard",
                &mut out,
            );
            out!("{}", String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Man { command } => {
            let mut out = Vec::new();
            clap_mangen::Man::new(man_page(command.as_deref())?).render(&mut out)?;
            out!("{}", String::from_utf8_lossy(&out));
            Ok(ExitCode::SUCCESS)
        }
        Command::Sim {
            listen,
            jobs,
            active,
            latency,
        } => {
            let now = time::now();
            let mut all: Vec<ftguard::sim::SimJob> = (0..active)
                .map(|i| {
                    ftguard::sim::SimJob::in_status(
                        &format!("ftjob-active-{i:04}"),
                        "running",
                        if i == 0 { 7 * 3600 } else { 60 + i64::from(i) },
                        now,
                    )
                })
                .collect();
            all.extend((0..jobs).map(|i| {
                ftguard::sim::SimJob::in_status(
                    &ftguard::sim::history_id(u64::from(i)),
                    "succeeded",
                    8 * 3600 + i64::from(i) * 10,
                    now,
                )
            }));
            let sim = ftguard::sim::Sim::start_on(listen, all)
                .await
                .with_context(|| format!("cannot listen on {listen}"))?;
            sim.set_latency(latency);
            sim.forget_requests();
            // Cost policies count a running job's training file: give each one to count.
            for i in 0..active {
                sim.add_training_file(&format!("ftjob-active-{i:04}"), 200, (60, 40));
            }
            outln!(
                "simulator of the fine-tuning API at {} ({jobs} finished, {active} running jobs); Ctrl-C stops it",
                sim.base_url()
            );
            tokio::signal::ctrl_c().await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Demo { seconds } => demo::run(seconds).await.map(|_| ExitCode::SUCCESS),
        Command::Config {
            command:
                ConfigCommand::Check {
                    online,
                    test_notifiers,
                },
        } => check::check(&load()?, online, test_notifiers).await,
        Command::Run { once: false, .. } => {
            daemon::run(
                load()?,
                daemon::Options {
                    config_path: cli.config.clone(),
                    report: None,
                    stop: CancellationToken::new(),
                },
            )
            .await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { once: true, json } => {
            let say = |l: String| {
                if !json {
                    outln!("{l}");
                }
            };
            let report = ftguard::app::run_once(load()?, &say).await?;
            if json {
                outln!("{}", serde_json::to_string_pretty(&report)?);
            }
            // A timer running `run --once` must not report success while nothing is watched:
            // every account's sync failing is a failure, as for `sync`.
            let all_syncs_failed = !report.syncs.is_empty()
                && report.syncs.iter().all(|s| s["ok"] == Value::Bool(false));
            Ok(if all_syncs_failed {
                ExitCode::FAILURE
            } else if report.failed > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Sync {
            full,
            accounts,
            json,
        } => {
            // Named accounts: only theirs are the credentials needed.
            let mut config = if accounts.is_empty() {
                load()?
            } else {
                load_to_read()?
            };
            if let Some(unknown) = accounts.iter().find(|n| config.account(n).is_none()) {
                bail!(
                    "--account {unknown:?} is not configured (configured: {})",
                    configured(&config)
                );
            }
            if !accounts.is_empty() {
                config
                    .only_accounts(&accounts)
                    .context("invalid configuration")?;
            }
            let app = App::build(config).await?;
            if app.clients().is_empty() {
                bail!(
                    "no [[accounts]] configured in {}",
                    app.config()
                        .source
                        .as_ref()
                        .map_or("the configuration".into(), |p| p.display().to_string())
                );
            }
            let results = app.sync_with(full).await;
            if json {
                let out: Vec<Value> = results
                    .iter()
                    .map(|(a, r)| ftguard::sync::sync_json(a, r))
                    .collect();
                outln!("{}", serde_json::to_string_pretty(&out)?);
            } else {
                for (a, r) in &results {
                    outln!("{}", ftguard::sync::sync_line(a, r));
                }
            }
            Ok(if results.iter().any(|(_, r)| r.is_ok()) {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Command::Plan {
            offline,
            upcoming,
            json,
        } => {
            let app = if offline {
                App::build_to_read(load_to_read()?).await?
            } else {
                App::build(load()?).await?
            };
            plan::plan(&app, offline, upcoming, json).await
        }
        Command::Jobs {
            status,
            account,
            model,
            since,
            limit,
            json,
        } => {
            let filter = jobs::filter(status, account, model, since, limit)?;
            jobs::list(load_to_read()?, filter, json).await
        }
        Command::Replay {
            since,
            policies,
            json,
        } => {
            let since = since_arg(Some(since))?.unwrap_or_default();
            replay::replay(load_to_read()?, since, policies.as_deref(), json).await
        }
        Command::Spend { period, by, json } => {
            spend::spend(load_to_read()?, period, by, json).await
        }
        Command::Show { job, account, json } => {
            jobs::show(
                &App::build_to_read(load_to_read()?).await?,
                job,
                account,
                json,
            )
            .await
        }
        Command::Status { json } => {
            let config = load_to_read()?;
            let store = open_store(config.clone()).await?;
            status::status(&config, &store, json).await
        }
        Command::Actions {
            job,
            since,
            policy,
            action,
            outcome,
            json,
        } => {
            let only = actions::Only {
                policy,
                action,
                outcome,
            };
            actions::list(load_to_read()?, job, since, only, json).await
        }
        Command::Cancel {
            job,
            account,
            reason,
            json,
        } => {
            let app = App::build(load()?).await?;
            let account = resolve_account(&app, &job, account).await?;
            let report = app.manual_cancel(&account, &job, &reason).await?;
            // The cancel's notice, before exiting.
            app.flush_notices().await;
            // A cancel went out (whatever came back); not when one was already pending or
            // accepted — then the line says so, and whether the job kept going after it.
            let sent =
                report.cancelled + report.accepted + report.already_finished + report.failed > 0;
            if json {
                // The job's newest cancel: the one just recorded, or the one that stopped it.
                let action = app
                    .store()
                    .actions(Some(&job), None)
                    .await?
                    .into_iter()
                    .rfind(|a| a.account == account && a.action == "cancel");
                outln!("{:#}", serde_json::json!({"sent": sent, "action": action}));
            } else {
                for l in &report.lines {
                    outln!("{l}");
                }
                if report.lines.is_empty() {
                    outln!("{job} already has a pending or successful cancel: nothing sent");
                }
            }
            Ok(
                if report.cancelled + report.already_finished > 0 || report.lines.is_empty() {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                },
            )
        }
        Command::Resume {
            job,
            account,
            reason,
            json,
        } => {
            let app = App::build(load()?).await?;
            let account = resolve_account(&app, &job, account).await?;
            app.client(&account).context("account not configured")?;
            let (id, error) = app.manual_resume(&account, &job, &reason).await?;
            app.flush_notices().await;
            let action = match id {
                Some(id) => app
                    .store()
                    .actions(Some(&job), None)
                    .await?
                    .into_iter()
                    .find(|a| a.id == id),
                None => None,
            };
            if json {
                outln!("{:#}", serde_json::json!(action));
            } else if error.is_none() {
                let status = action
                    .as_ref()
                    .and_then(|a| a.response_status.clone())
                    .unwrap_or_else(|| "?".into());
                outln!("{job} resumed: status {status}");
            }
            match error {
                Some(e) => Err(anyhow::Error::new(e).context(format!("resume of {job} failed"))),
                None => Ok(ExitCode::SUCCESS),
            }
        }
    }
}

/// The command a man page describes: ftguard itself, or a command named by its path joined with
/// `-` (`sync`, `config-check`), named `ftguard-PATH` as the pages refer to each other.
fn man_page(path: Option<&str>) -> anyhow::Result<clap::Command> {
    // Built, so that each command carries the global options (--config, ...); without the
    // `help` commands, which would only repeat the pages.
    let mut top = <Cli as clap::CommandFactory>::command()
        .disable_help_subcommand(true)
        .mut_subcommand("config", |c| c.disable_help_subcommand(true));
    top.build();
    let Some(path) = path else {
        return Ok(top);
    };
    let mut cmd = &top;
    for part in path.split('-') {
        cmd = cmd
            .find_subcommand(part)
            .with_context(|| format!("no command {:?}", path.replace('-', " ")))?;
    }
    Ok(cmd
        .clone()
        .name(format!("ftguard-{path}"))
        .version(env!("CARGO_PKG_VERSION")))
}

/// A `--since` argument as unix seconds (see [`time::parse_since`]).
fn since_arg(since: Option<String>) -> anyhow::Result<Option<i64>> {
    since
        .map(|s| time::parse_since(&s, time::now()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--since: {e}"))
}

async fn open_store(config: Config) -> anyhow::Result<Store> {
    Ok(Store::open_existing(&config.database).await?)
}

/// The configured accounts' names, for errors about one that is not.
fn configured(config: &Config) -> String {
    let names: Vec<&str> = config.accounts.iter().map(|a| a.name.as_str()).collect();
    names.join(", ")
}

/// The account a job belongs to: given, or the one account storing it, or the only account.
async fn resolve_account(app: &App, job: &str, given: Option<String>) -> anyhow::Result<String> {
    if let Some(a) = given {
        if app.config().account(&a).is_none() {
            bail!(
                "unknown account {a:?} (configured: {})",
                configured(app.config())
            );
        }
        return Ok(a);
    }
    let stored = app.store().job(None, job).await?;
    match (stored.as_slice(), app.config().accounts.as_slice()) {
        ([one], _) => Ok(one.account.to_string()),
        ([], [only]) => Ok(only.name.to_string()),
        ([], _) => bail!("job {job:?} is not stored: run `ftguard sync` or pass --account"),
        (many, _) => bail!(
            "job {job:?} exists in {} accounts: pass --account",
            many.len()
        ),
    }
}
