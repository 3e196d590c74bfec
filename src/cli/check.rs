//! `ftguard config check`: the effective configuration as TOML, findings as `#` comments, and
//! with `--online` one request per account to prove it can be reached with its credentials,
//! with `--test-notifiers` one `test` notice per webhook.

use std::process::ExitCode;

use crate::{out, outln};
use ftguard::config::Config;
use ftguard::model::time;
use ftguard::notify::Notice;
use ftguard::policy::format::count;
use ftguard::provider::Client;

pub async fn check(
    config: &Config,
    online: bool,
    test_notifiers: bool,
) -> anyhow::Result<ExitCode> {
    outln!(
        "# configuration OK: {}",
        config
            .source
            .as_ref()
            .map_or("built-in defaults (no file found)".into(), |p| p
                .display()
                .to_string())
    );
    outln!(
        "# {}, {}, {}; secrets shown as references only",
        count(config.accounts.len() as u64, "account", "accounts"),
        count(config.policies.len() as u64, "policy", "policies"),
        count(config.notifiers.len() as u64, "notifier", "notifiers")
    );
    for w in config.warnings() {
        outln!("# warning: {w}");
    }
    out!("{}", config.redacted_toml());
    outln!("\n# training prices in force (USD):");
    for line in config.prices.describe() {
        outln!("#   {line}");
    }
    let mut failed = 0;
    if online {
        failed += accounts(config).await;
    }
    if test_notifiers {
        failed += notifiers(config).await;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Sends every notifier a `test` notice; returns how many failed.
async fn notifiers(config: &Config) -> usize {
    outln!("\n# notifiers: one `test` notice each, once, no retries");
    if config.notifiers.is_empty() {
        outln!("#   no [[notifiers]] configured");
    }
    let http = ftguard::notify::http_client();
    let notice = Notice::test(&format!(
        "ftguard config check --test-notifiers{}: notices of this ftguard reach this channel",
        config
            .source
            .as_ref()
            .map(|p| format!(" ({})", p.display()))
            .unwrap_or_default()
    ));
    let sends = config.notifiers.iter().map(|n| n.try_once(&http, &notice));
    let mut failed = 0;
    for (i, (n, result)) in config
        .notifiers
        .iter()
        .zip(futures_util::future::join_all(sends).await)
        .enumerate()
    {
        match result {
            Ok(status) => outln!("#   notifiers[{i}] ({}): OK, HTTP {status}", n.describe()),
            Err(e) => {
                failed += 1;
                outln!("#   notifiers[{i}] ({}): FAILED: {e}", n.describe());
            }
        }
    }
    failed
}

/// Asks every account for its newest job; returns how many failed.
async fn accounts(config: &Config) -> usize {
    outln!("\n# online: GET /fine_tuning/jobs?limit=1 per account, once, nothing stored");
    if config.accounts.is_empty() {
        outln!("#   no accounts to check");
    }
    // All accounts at once, as many requests in flight as the daemon would allow: a slow one
    // does not hold the others' answers back, and a hundred accounts share their connections.
    let pool = ftguard::provider::Pool::new(config.max_concurrent_requests);
    let probes = config.accounts.iter().map(|a| {
        let pool = pool.clone();
        async move {
            let (result, offset) = match Client::with_pool(a.clone(), &pool) {
                Ok(client) => (client.probe().await, client.clock().get()),
                Err(e) => (Err(e), None),
            };
            (a.name.to_string(), result, offset)
        }
    });
    let mut failed = 0;
    for (name, result, offset) in futures_util::future::join_all(probes).await {
        match result {
            Ok(page) => {
                outln!("#   {name}: OK, {}", newest(&page));
                outln!("#   {name}: {}", clock_line(offset));
            }
            Err(e) => {
                failed += 1;
                // The error names the account itself.
                outln!("#   {name}: FAILED: {e}");
            }
        }
    }
    failed
}

/// Whether this machine's clock agrees with the API's: time limits depend on it.
fn clock_line(offset: Option<i64>) -> String {
    use ftguard::provider::api_clock;
    match offset {
        None => "clock not checked: the answer had no Date header".into(),
        Some(o) if api_clock::is_skewed(o) => format!("warning: {}", api_clock::describe(o)),
        Some(o) => format!(
            "clock agrees with the API's ({o:+} s, within {} s)",
            api_clock::SKEW_WARN_SECS
        ),
    }
}

/// What the account's newest job says: proof the answer came from a fine-tuning API.
fn newest(page: &ftguard::provider::JobPage) -> String {
    match page.jobs.first() {
        Some(j) => format!(
            "newest job {} ({}, created {})",
            j.id,
            j.status,
            time::human(j.created_at)
        ),
        None if !page.rejected.is_empty() => format!(
            "but its newest job could not be parsed: {}",
            page.rejected[0]
        ),
        None => "no fine-tuning jobs yet".into(),
    }
}
