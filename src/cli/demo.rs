//! `ftguard demo`: the simulator on a loopback port, a temporary configuration and database
//! pointed at it, and the real daemon code running against it for a short while.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::table::{Align, Tabled};
use crate::outln;
use ftguard::config::Config;
use ftguard::daemon::{self, Options, Reporter};
use ftguard::model::time;
use ftguard::sim::{CurveShape, Sim, SimJob};
use ftguard::store::{JobFilter, Store};

/// The demo's jobs: a runaway, one stuck in the queue, one that finishes during the demo,
/// an exempt one, and history.
pub fn scenario(now: i64) -> Vec<SimJob> {
    let h = 3600;
    vec![
        SimJob::in_status("ftjob-demo-runaway", "running", 7 * h, now)
            .with_metadata("team", "research"),
        SimJob::in_status("ftjob-demo-stuck-queue", "queued", 3 * h, now)
            .with_metadata("team", "search"),
        SimJob::timeline("ftjob-demo-fresh", 0, now, 2, 2, 4).with_metadata("team", "search"),
        SimJob::in_status("ftjob-demo-exempt", "running", 10 * h, now)
            .with_metadata("ftguard", "exempt"),
        SimJob::in_status("ftjob-demo-pricey", "queued", 60, now).with_model("gpt-4o-2024-08-06"),
        SimJob::in_status("ftjob-demo-done", "succeeded", 26 * h, now),
        SimJob::in_status("ftjob-demo-failed", "failed", 30 * h, now)
            .with_model("gpt-4.1-mini-2025-04-14"),
        // 3,000 steps at 10 a second; its loss triples at step 1,500, 2,000 steps in.
        SimJob::in_status("ftjob-demo-diverging", "running", 200, now)
            .with_curve(CurveShape::Diverging { at: 1500 }, 3000, 10)
            .with_metadata("team", "research"),
    ]
}

/// The demo's configuration file text, pointing at the simulator.
pub fn config_text(
    base_url: &str,
    database: &std::path::Path,
    token_file: &std::path::Path,
) -> String {
    format!(
        r#"# Written by `ftguard demo`.
[daemon]
database = "{db}"
sync_schedule = "*/2 * * * * *"

[[accounts]]
name = "demo"
base_url = "{base_url}"
bearer_token = {{ file = "{token}" }}

[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"
exempt = {{ metadata = {{ ftguard = "exempt" }} }}

[[policies]]
name = "queue-2h"
kind = "max_queue_time"
limit = "2h"

[[policies]]
name = "cap-10"
kind = "max_job_cost"
limit_usd = 10.0

[[policies]]
name = "diverging"
kind = "loss_divergence"
metric = "train_loss"
factor = 2.0
patience = 30
"#,
        db = toml_str(database),
        token = toml_str(token_file),
    )
}

/// Runs the demo for `seconds`, printing what the daemon sees and does.
pub async fn run(seconds: u64) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let sim = Sim::start(scenario(time::now())).await?;
    // 240 chat examples of ~1,000 tokens: with 3 epochs on gpt-4o at $25/1M, about $18.
    sim.add_training_file("ftjob-demo-pricey", 240, (700, 289));
    let token = "sk-demo-not-a-real-key";
    sim.require_header("authorization", &format!("Bearer {token}"));
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, format!("{token}\n"))?;
    let db = dir.path().join("ftguard.db");
    let cfg_path = dir.path().join("ftguard.toml");
    std::fs::write(&cfg_path, config_text(&sim.base_url(), &db, &token_file))?;
    let config = Config::load(Some(&cfg_path))?;

    outln!(
        "ftguard demo: simulator at {}, database {}",
        sim.base_url(),
        db.display()
    );
    outln!(
        "policies: runtime-6h (max_runtime 6h, exempt metadata ftguard=exempt), queue-2h (max_queue_time 2h),\n          cap-10 (max_job_cost $10, from the training file's tokens),\n          diverging (loss_divergence: training loss above 2x its best for 30 steps)"
    );
    outln!("syncing every 2 seconds for {seconds} seconds...\n");

    let report: Reporter = Arc::new(|line: String| outln!("{line}"));
    let stop = CancellationToken::new();
    let stopper = stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stopper.cancel();
    });
    let ctrl_c = stop.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        ctrl_c.cancel();
    });
    daemon::run(
        config,
        Options {
            config_path: Some(cfg_path.clone()),
            report: Some(report),
            stop,
        },
    )
    .await?;

    let store = Store::open(&db).await?;
    outln!("\nJobs at the end:");
    let mut table = Tabled::new(
        &[
            ("ID", Align::Left),
            ("STATUS", Align::Left),
            ("TRAINED_TOKENS", Align::Right),
        ],
        true,
    );
    for j in store.jobs(&JobFilter::default()).await? {
        table.row([
            j.job.id.to_string(),
            j.job.status.to_string(),
            j.job.trained_tokens.map_or("-".into(), |t| t.to_string()),
        ]);
    }
    table.print_indented("  ");
    outln!("\nActions recorded:");
    for a in store.actions(None, None).await? {
        outln!(
            "  #{} {} {} [{}] {} -> {} (status {}, trained_tokens {})",
            a.id,
            a.action,
            a.job_id,
            a.policy,
            a.reason,
            a.outcome,
            a.response_status.as_deref().unwrap_or("-"),
            a.response_trained_tokens
                .map_or("-".into(), |t| t.to_string())
        );
        if let Some(best) = &a.best_checkpoint {
            outln!(
                "     use instead: {} (step {}, {} {})",
                best["model"].as_str().unwrap_or("?"),
                best["step"],
                best["metric"].as_str().unwrap_or("?"),
                best["value"]
                    .as_f64()
                    .map_or("?".into(), ftguard::policy::format::loss)
            );
        }
    }
    outln!(
        "\nThe runaway, the stuck, the too-expensive and the diverging job were cancelled once each (the stuck and the\ntoo-expensive one before they trained; the diverging one two thirds of the way in, its best checkpoint named);\nthe exempt job and the one finishing on its own were left alone."
    );
    store.close().await;
    outln!("\n{}", replay_line(&cfg_path).await?);
    outln!(
        "Next: copy config/ftguard.example.toml to ftguard.toml, add your account, check it with\n`ftguard config check --online`, run `ftguard sync`, then `ftguard replay` and `ftguard plan`."
    );
    Ok(())
}

/// One line: what the demo's policies would have done over everything the simulator's account
/// stored, had they always been in force (`ftguard replay`).
async fn replay_line(cfg_path: &std::path::Path) -> anyhow::Result<String> {
    let config = Config::load_with(Some(cfg_path), ftguard::config::Secrets::Skip)?;
    let (policies, prices) = (config.policies.clone(), config.prices.clone());
    let app = ftguard::app::App::build_to_read(config).await?;
    let now = time::now();
    let r = app
        .replay(&policies, &prices, now - 90 * 86_400, now)
        .await?;
    app.store().close().await;
    let acted: std::collections::HashSet<&str> = r
        .policies
        .iter()
        .flat_map(|p| p.jobs.iter().map(|s| s.job_id.as_str()))
        .collect();
    let per_policy: Vec<String> = r
        .policies
        .iter()
        .map(|p| format!("{} {}", p.name, p.jobs.len()))
        .collect();
    Ok(format!(
        "Replay (`ftguard replay`): had these policies always been in force, over the {} jobs stored they would have acted on {} ({}) and saved {}.",
        r.jobs,
        acted.len(),
        per_policy.join(", "),
        r.saved
    ))
}

fn toml_str(p: &std::path::Path) -> String {
    p.display()
        .to_string()
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
}
