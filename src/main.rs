//! The `ftguard` command line. Library errors become `anyhow` here, with context.

// stdout goes through `out!`/`outln!` (output.rs): `println!` panics on a closed pipe.
#![deny(clippy::print_stdout)]
// No `as` cast that can wrap, truncate or lose a sign: times and amounts from a hostile API or
// a careless config saturate or fail instead (model.rs holds the few deliberate conversions).
#![deny(
    clippy::cast_possible_wrap,
    clippy::cast_sign_loss,
    clippy::cast_possible_truncation
)]

mod cli;

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// ftguard keeps LLM fine-tuning spend under control: it watches every fine-tuning job of your
/// OpenAI-compatible or Portkey accounts, stores them in SQLite, applies policies (runtime and
/// queue limits, per-job cost caps, period budgets, model allow-lists, ...) and cancels offending
/// jobs exactly once, recording what the API answered.
///
/// Start with `ftguard demo` (no account needed), then write ftguard.toml from
/// config/ftguard.example.toml and run `ftguard config check`, `ftguard sync`, `ftguard plan`.
///
/// `jobs`, `show`, `actions`, `spend`, `status` and `plan --offline` only read the database:
/// they work without the accounts' credentials (as an operator beside the service, which alone
/// gets them).
#[derive(Parser)]
#[command(
    name = "ftguard",
    version,
    propagate_version = true,
    after_help = "Examples:\n  ftguard demo\n  ftguard config check --config /etc/ftguard/ftguard.toml\n  ftguard plan --json | jq '.[] | select(.action == \"cancel\")'\n  ftguard jobs --status running --json\n  ftguard spend --period month --by metadata.team\n  ftguard cancel ftjob-abc123 --reason \"wrong dataset\""
)]
struct Cli {
    /// Configuration file. Default: $FTGUARD_CONFIG, else ./ftguard.toml, else /etc/ftguard/ftguard.toml.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log format on stderr. Filter with FTGUARD_LOG or RUST_LOG (default: info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: sync at start and on daemon.sync_schedule, evaluate policies, enforce.
    /// Stops cleanly on SIGTERM/SIGINT; SIGHUP reloads the configuration.
    Run {
        /// One sync, one evaluation of every policy, enforcement, then exit: 0 on success,
        /// 1 when every account's sync failed (nothing is watched), 2 when an action failed
        /// (for a systemd timer or cron instead of the daemon).
        #[arg(long)]
        once: bool,
        /// With --once: print what was done as JSON: `syncs` (as `sync --json`), the counts
        /// (cancelled, accepted, paused, already_finished, failed, held, warned, cleared,
        /// notified, dry_run) and `lines`, one per action as the text output shows it.
        #[arg(long, requires = "once")]
        json: bool,
    },
    /// Sync every account once and print a summary per account. Exit 0 if at least one synced.
    ///
    /// Each account's line counts the jobs listed, the pages asked for, and what was stored:
    /// `new` (first seen), `changed status` (each change is listed below the line and kept in
    /// the job's history), `updated` (other fields changed); jobs listed exactly as stored are
    /// not written. `(incremental)`: only the newest pages were listed, down to the oldest job
    /// that was still active at the last sync; known active jobs the listing did not show are
    /// retrieved one by one.
    Sync {
        /// List every job, not only those since the oldest job active at the last sync
        /// (the daemon does this every daemon.full_sync_every, default 24h).
        #[arg(long)]
        full: bool,
        /// Only this account (repeatable): to retry one that failed, or look at one of many.
        /// Only its credentials are needed.
        #[arg(long = "account", value_name = "NAME")]
        accounts: Vec<String>,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show what the policies would do now and why. Never acts.
    ///
    /// Syncs every account first (and counts the training files a cost policy needs) unless
    /// --offline. One line per decision: what would be done, account, job, [policy], why.
    /// `would warn` starts a grace period; `(dry run)` marks policies that only record.
    /// Budget thresholds (`warn_at`) not notified yet show as `would notify budget group G`.
    /// A decision an action recorded earlier already stands for (a notify policy notified
    /// once, a cancel the API accepted, a pause refused under `fallback = "notify"`) shows as
    /// `done`: the pass does not act again.
    Plan {
        /// Use the stored jobs; do not sync first. Needs no credentials.
        #[arg(long)]
        offline: bool,
        /// Also list what will happen within this long if nothing changes (e.g. 12h): each
        /// active job that will reach a time limit (or end its grace period), when, under which
        /// policy, and what follows.
        #[arg(long, value_name = "DURATION", value_parser = duration_arg)]
        upcoming: Option<std::time::Duration>,
        /// Print a JSON array. Job entries: account, job_id, policy, action (cancel, pause,
        /// notify, warn, clear), act_after (for warn: when the grace period ends), reason,
        /// dry_run, already_done (the action recorded earlier that stands for it, so the pass
        /// does not act again: action_id, what; else null). Budget entries: action "budget_notice", policy, group, period_start,
        /// percent, reason. With --upcoming: action "upcoming", account, job_id, policy, at,
        /// then (cancel, pause, notify or warn), dry_run, schedule (the policy's own cron, if
        /// any: it acts at its next run after `at`).
        #[arg(long)]
        json: bool,
    },
    /// What the policies would have done over the stored history, and what it would have saved.
    ///
    /// Reads only the database: needs no credentials, calls no API, records nothing. Each job
    /// created since --since is walked through its stored life (its status changes as ftguard
    /// saw them; a job first seen finished is taken as running from its creation to its end),
    /// and each policy acts at the first moment it would have: after its grace, at a run of its
    /// own schedule. Budgets replay every job in time order. One table per policy, largest
    /// saving first, then the totals.
    ///
    /// Training-quality policies (`loss_plateau`, `loss_divergence`) are judged along a job's
    /// stored training metrics, as they were reported; `stalled` judges nothing (when steps
    /// were reported is not stored along a life), and the report says how many jobs a policy
    /// could not judge and why.
    ///
    /// Saved: a job stopped at t would not have paid for training after t, training taken as
    /// spread evenly from its start (its change to `running`, else its creation) to its end
    /// (by steps where metrics are stored); stopped before training started, all of it.
    /// Notify policies save nothing. The total counts each job once, at its largest saving.
    /// README.md has the rules and their limits.
    ///
    /// Examples: `ftguard replay --since 30d`; `ftguard replay --policies candidate.toml --json`.
    Replay {
        /// How far back (a duration like 90d, or a date like 2026-09-01): jobs created since.
        #[arg(long, default_value = "90d", value_name = "WHEN")]
        since: String,
        /// Replay the `[[policies]]` (and `[pricing]`, if any) of this TOML file instead of the
        /// configuration's: try a candidate before deploying it. Validated like `config check`.
        #[arg(long, value_name = "FILE")]
        policies: Option<std::path::PathBuf>,
        /// Print JSON: since, until, jobs (created in the window), policies (name, kind, action,
        /// jobs: account, job_id, at, reason, actual_status, actual_cost_usd, saved_usd;
        /// jobs_count, saved_usd, not_judged: jobs, why), saved_usd.
        #[arg(long)]
        json: bool,
    },
    /// List stored jobs, newest first.
    Jobs {
        /// Only jobs with this status (e.g. running, queued, cancelled; `active`: every job not
        /// finished yet; `gone`: jobs the API no longer knows).
        #[arg(long)]
        status: Option<String>,
        /// Only jobs of this account.
        #[arg(long)]
        account: Option<String>,
        /// Only jobs whose base model matches this glob, as in a policy's `match.models`
        /// (e.g. 'gpt-4o*').
        #[arg(long, value_name = "GLOB")]
        model: Option<String>,
        /// Only jobs created since: a duration back from now (24h, 7d), a date (2026-11-01,
        /// UTC) or a timestamp (2026-11-01T12:00:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// At most N jobs, the newest.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        /// Print a JSON array with the API's values verbatim (unix seconds).
        ///
        /// Besides the API's fields each job has ftguard's: `account`; `cost_usd` (finished
        /// jobs), `projected_cost_usd` (active ones) and `cost_unknown_reason`; `last_step_at`
        /// and `steps_checked_at` (the newest training step in the job's events and when they
        /// were fetched, for running jobs a `stalled` policy looked at); `first_seen_at`;
        /// `updated_at`, when what the API says about the job last changed; and `gone_at`, when
        /// the API answered 404 for a job it had listed (no longer watched; `status` is the
        /// last one seen).
        #[arg(long)]
        json: bool,
    },
    /// Spend per group in a period: spent (finished jobs), projected (active jobs), limit and
    /// remaining (from a budget policy with the same period and grouping); and what jobs
    /// stopped early by training-quality policies did not spend.
    Spend {
        /// day, week, month (calendar, UTC or the budget's timezone) or a duration like 30d.
        #[arg(long, default_value = "month")]
        period: String,
        /// Group by account, model or metadata.KEY (default: one group).
        #[arg(long)]
        by: Option<String>,
        /// Print a JSON array, dollars as numbers.
        #[arg(long)]
        json: bool,
    },
    /// Show one job with its status history and actions, and where it stands with each policy
    /// now: breaking it (acted on at the next pass), in grace until when, when a time limit
    /// will be reached and what follows, how many steps a training-quality policy gives it if
    /// its loss does not improve, or why a policy leaves it alone. A job with stored training
    /// metrics also shows its loss curve (train and validation loss over the steps, as
    /// sparklines on one scale) with its checkpoints marked and listed.
    Show {
        /// The job id (ftjob-...).
        job: String,
        /// The account, when the id exists in several.
        #[arg(long)]
        account: Option<String>,
        /// Print the job, its raw payload, status history, actions and `policies` (per policy:
        /// `policy`, `standing` = breaks | paused (breaks a pause policy and is paused already)
        /// | in_grace | due | watching (a training-quality policy: `progress`) | keeps | group |
        /// not_matched | exempt, with `reason`, `until` or `at` where they apply, `action`,
        /// `dry_run`, `grace_secs`, and `already_done` when an action recorded earlier stands
        /// for it: `action_id`, `what`), `metrics` (per reported step: step, total_steps,
        /// train_loss, valid_loss, full_valid_loss and the accuracies, null where not reported)
        /// and `checkpoints` (id, model, step, created_at, metrics) as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Whether ftguard is doing its job, from the database: each account's last successful
    /// sync, active and stored jobs, actions of the last 24 hours. Exit 1 when unhealthy
    /// (an account not synced successfully within three sync intervals, as `/healthz`).
    ///
    /// Works beside the running service and without credentials; for monitoring scripts,
    /// `ftguard status --json` or the exit code.
    Status {
        /// Print JSON: healthy, problems, sync_interval_secs, accounts (account, healthy,
        /// last_successful_sync, last_sync, last_error, active_jobs, stored_jobs),
        /// actions_last_24h (per outcome), pending_actions, notices_waiting and
        /// oldest_notice_waiting_since (webhook notices not delivered yet), database.
        #[arg(long)]
        json: bool,
    },
    /// List recorded actions (cancels, pauses, warnings, holds), oldest first.
    Actions {
        /// Only actions on this job.
        #[arg(long)]
        job: Option<String>,
        /// Only actions requested since: a duration back from now (24h, 7d), a date
        /// (2026-11-01, UTC) or a timestamp (2026-11-01T12:00:00Z).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
        /// Only actions of this policy (`manual` for `ftguard cancel` and `resume`).
        #[arg(long)]
        policy: Option<String>,
        /// Only this action.
        #[arg(long, value_parser = ["cancel", "pause", "resume", "warn", "clear", "notify"])]
        action: Option<String>,
        /// Only this outcome.
        #[arg(long, value_parser = ["pending", "succeeded", "accepted", "already_finished", "failed", "held", "dry_run", "notified", "warned", "cleared"])]
        outcome: Option<String>,
        /// Print a JSON array: id, account, job_id, policy, action, reason, outcome, attempts,
        /// requested_at, completed_at, http_status, response_* fields, error, note,
        /// best_checkpoint (training-quality policies: the checkpoint to use instead, {model,
        /// step, metric, value}, else null), estimated_saving_usd (what stopping it early did
        /// not spend, else null).
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job by hand, through the same recorded path as policies (policy "manual").
    Cancel {
        /// The job id (ftjob-...).
        job: String,
        /// The account, needed when the job is not stored yet or exists in several.
        #[arg(long)]
        account: Option<String>,
        /// Why: recorded with the action.
        #[arg(long)]
        reason: String,
        /// Print JSON: `sent` (whether a cancel went out now) and `action`, the job's cancel
        /// as recorded (the fields of `actions --json`; the earlier one when none was sent, or the row
        /// saying it did not take: the job still active 10 minutes after the API accepted it).
        #[arg(long)]
        json: bool,
    },
    /// Resume a paused job. Recorded as an action of policy "manual" (with what the API
    /// answered) and notified as `resumed`.
    Resume {
        /// The job id (ftjob-...).
        job: String,
        /// The account, when the id exists in several.
        #[arg(long)]
        account: Option<String>,
        /// Why: recorded with the action.
        #[arg(long, default_value = "resumed by hand")]
        reason: String,
        /// Print the action as recorded (the fields of `actions --json`).
        #[arg(long)]
        json: bool,
    },
    /// Configuration commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Serve the built-in simulator of the fine-tuning API until interrupted: for trying
    /// configurations, benchmarks and gateway tests. Point an account's base_url at it.
    Sim {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Finished jobs in history (at most 2,000,000: about 600 MB of memory).
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(0..=2_000_000))]
        jobs: u32,
        /// Running jobs (the newest), one of them past 7 hours; each has a small training file
        /// (200 examples, about 20,000 tokens) for cost policies to count. At most 100,000.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=100_000))]
        active: u32,
        /// Added to every answer, like a remote API's round trip (e.g. 20ms).
        #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
        latency: std::time::Duration,
    },
    /// Run ftguard against its built-in simulator for a short while: no account needed.
    Demo {
        /// How long to run.
        #[arg(long, default_value_t = 12)]
        seconds: u64,
    },
    /// Print a shell completion script, e.g.
    /// `ftguard completions bash | sudo tee /usr/share/bash-completion/completions/ftguard`.
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Print a man page (roff): ftguard(1), or ftguard-COMMAND(1) for a command. The .deb
    /// installs them all (from man/, kept current by a test).
    #[command(hide = true)]
    Man {
        /// The command whose page to print; none for ftguard(1).
        command: Option<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Validate everything (keys, durations, cron, secrets) and print the effective
    /// configuration with secrets redacted. Non-zero exit on any error.
    ///
    /// The output is the configuration as TOML; findings (warnings, prices, the online check)
    /// are `#` comments, so it stays valid TOML.
    Check {
        /// Also ask each account's API for its newest job (one `GET /fine_tuning/jobs?limit=1`,
        /// no retries, nothing stored): checks base_url, credentials and Portkey headers before
        /// the daemon depends on them. Non-zero exit if any account fails.
        #[arg(long)]
        online: bool,
        /// Also send each [[notifiers]] webhook one notice with event `test` (once, no
        /// retries): shows the URL works and how notices look in the channel. Non-zero exit if
        /// any is refused.
        #[arg(long)]
        test_notifiers: bool,
    },
}

/// A duration argument (`12h`, `90m`, `2d`), with examples when it is not one.
fn duration_arg(text: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(text.trim())
        .map_err(|e| format!("not a duration ({e}); examples: 12h, 90m, 2d"))
}

fn init_logging(format: LogFormat, default: &str) {
    let filter = std::env::var("FTGUARD_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| default.into());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only for a terminal: journald and log files get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(cli::log_writer::EscapingStderr { ansi })
        .with_ansi(ansi);
    match format {
        LogFormat::Json => builder.json().init(),
        // journald adds timestamps of its own.
        LogFormat::Text if std::env::var_os("JOURNAL_STREAM").is_some() => {
            builder.without_time().init()
        }
        LogFormat::Text => builder.init(),
    }
}

// One thread runs every task: ftguard waits on the network and on SQLite (which has threads
// of its own in sqlx), and its computing is short. On the small machines it runs on, a
// multi-threaded runtime spent more on waking threads across cores than it saved
// (BENCHMARKS.md, first sync).
#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story on stdout; only errors go to stderr by default.
    let default = if matches!(cli.command, Command::Demo { .. }) {
        "error"
    } else {
        "info"
    };
    init_logging(cli.log_format, default);
    match cli::dispatch(cli).await {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
