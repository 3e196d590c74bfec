//! `cargo bench`: ftguard against its targets, on this machine. Prints a Markdown report;
//! BENCHMARKS.md records a run and the method. Uses the release binary and the simulator.
//!
//! Measures: policy evaluation over 1k/10k/100k stored jobs; first sync of 1k/10k jobs against
//! raw page fetching from the same simulator over one keep-alive connection, with the binary's
//! peak RSS; the steady-state request count; an idle daemon's RSS and CPU; deadline lateness;
//! and 1 to 1,000 accounts on one host (sync time and memory, idle daemon, `config check`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ftguard::cost::JobCost;
use ftguard::model::{Job, JobId, JobStatus, Usd};
use ftguard::policy::{self, JobView, PolicyConfig};
use ftguard::sim::{Sim, SimJob};

const H: i64 = 3600;

/// The binary users get: `cargo build --release`. Not the one `cargo bench` builds for itself,
/// which carries the test-only dependencies' features (HTTP/2 and more, about 1 MB of code).
fn shipped_binary() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let out = std::process::Command::new(env!("CARGO"))
            .args([
                "build",
                "--release",
                "--locked",
                "--bin",
                "ftguard",
                "--message-format=json",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stderr(std::process::Stdio::inherit())
            .output()
            .unwrap();
        assert!(out.status.success(), "cargo build --release failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter_map(|m| m["executable"].as_str().map(std::path::PathBuf::from))
            .next_back()
            .expect("cargo reported no executable")
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn job(i: usize, now: i64) -> Job {
    // One job in five is active (running or queued): 20,000 of 100,000.
    let statuses = ["running", "queued", "succeeded", "succeeded", "failed"];
    let status = if i.is_multiple_of(5) {
        statuses[i % 2]
    } else {
        statuses[2 + i % 3]
    };
    let mut metadata = std::collections::BTreeMap::new();
    metadata.insert("team".to_owned(), format!("team-{}", i % 7));
    Job {
        id: JobId::new(format!("ftjob-{i:06}")),
        model: if i.is_multiple_of(3) {
            "gpt-4o-2024-08-06".into()
        } else {
            "gpt-4o-mini-2024-07-18".into()
        },
        status: JobStatus::parse(status),
        created_at: now - (i as i64 % 86_400),
        finished_at: None,
        trained_tokens: None,
        estimated_finish: Some(now + 3600),
        fine_tuned_model: None,
        training_file: Some(format!("file-{i}")),
        validation_file: None,
        n_epochs: Some(serde_json::json!(3)),
        method: Some("supervised".into()),
        suffix: None,
        metadata,
        error: None,
        raw: String::new(),
    }
}

fn policies() -> Vec<policy::Policy> {
    let texts = [
        "name='rt'\nkind='max_runtime'\nlimit='6h'\nexempt={metadata={team='team-3'}}",
        "name='q'\nkind='max_queue_time'\nlimit='2h'\ngrace='15m'",
        "name='models'\nkind='allowed_models'\nmodels=['gpt-4o*','gpt-4.1*']",
        "name='meta'\nkind='required_metadata'\nkeys=['team']",
        "name='deadline'\nkind='deadline'\nlimit='8h'",
        "name='cap'\nkind='max_job_cost'\nlimit_usd=50.0",
        "name='budget'\nkind='budget'\nlimit_usd=1000000.0\ngroup_by='metadata.team'\nwarn_at=[0.8]",
    ];
    texts
        .iter()
        .map(|t| policy::compile(&toml::from_str::<PolicyConfig>(t).unwrap()).unwrap())
        .collect()
}

fn bench_evaluate(out: &mut String) {
    let now = ftguard::model::time::now();
    let pols = policies();
    out.push_str("\n## Policy evaluation (pure, 7 policies incl. a grouped budget)\n\n| stored jobs | active | median | per active job |\n|---:|---:|---:|---:|\n");
    for n in [1_000usize, 10_000, 100_000] {
        let jobs: Vec<Job> = (0..n).map(|i| job(i, now)).collect();
        let costs: Vec<JobCost> = (0..n)
            .map(|i| JobCost {
                actual: None,
                projected: Some(Usd::from_dollars((i % 100) as f64)),
                ..Default::default()
            })
            .collect();
        let views: Vec<JobView> = jobs
            .iter()
            .zip(&costs)
            .map(|(j, c)| JobView {
                account: "prod",
                job: j,
                last_step_at: None,
                steps_checked_at: None,
                curves: None,
                cost: c,
            })
            .collect();
        let active = views.iter().filter(|v| !v.job.status.is_terminal()).count();
        let marks = HashMap::new();
        let runs: Vec<Duration> = (0..15)
            .map(|_| {
                let t = Instant::now();
                let d = policy::evaluate(&views, now, &pols, &marks, false);
                std::hint::black_box(d);
                t.elapsed()
            })
            .collect();
        let m = median(runs);
        out.push_str(&format!(
            "| {n} | {active} | {:.2} ms | {:.2} µs |\n",
            m.as_secs_f64() * 1e3,
            m.as_secs_f64() * 1e6 / active as f64
        ));
    }
}

/// `App::decide` end to end: load active jobs (and the budget's period) from SQLite, parse,
/// cost, evaluate.
async fn bench_decide(out: &mut String) {
    out.push_str("\n## A whole policy pass from the database (`App::decide`: load, parse, cost, evaluate)\n\n| stored jobs | active | median | with a monthly budget: first pass | later passes (nothing changed) | a pass after a job finished |\n|---:|---:|---:|---:|---:|---:|\n");
    let now = ftguard::model::time::now();
    for n in [1_000usize, 10_000, 100_000] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = dir.path().join("ftguard.toml");
        let mut text = format!(
            "[daemon]\ndatabase = {:?}\n[[accounts]]\nname = \"prod\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
            dir.path().join("db").display().to_string()
        );
        text.push_str("[[policies]]\nname='rt'\nkind='max_runtime'\nlimit='6h'\n[[policies]]\nname='q'\nkind='max_queue_time'\nlimit='2h'\n[[policies]]\nname='models'\nkind='allowed_models'\nmodels=['gpt-4o*']\n");
        std::fs::write(&cfg, text).unwrap();
        let app = ftguard::app::App::build(ftguard::config::Config::load(Some(&cfg)).unwrap())
            .await
            .unwrap();
        let account = app.clients()[0].account().clone();
        let jobs: Vec<Job> = (0..n)
            .map(|i| {
                let j = job(i, now);
                ftguard::provider::payload::parse_job(serde_json::json!({
                    "id": j.id, "model": j.model, "status": j.status, "created_at": j.created_at,
                    "estimated_finish": j.estimated_finish, "training_file": j.training_file, "metadata": j.metadata,
                    "hyperparameters": {"n_epochs": 3}, "method": {"type": "supervised"}
                }))
                .unwrap()
            })
            .collect();
        for chunk in jobs.chunks(500) {
            app.store().upsert_jobs(&account, chunk, now).await.unwrap();
        }
        let active = jobs.iter().filter(|j| !j.status.is_terminal()).count();
        let mut runs = Vec::new();
        for _ in 0..7 {
            let t = Instant::now();
            let d = app.decide(&app.config().policies, now).await.unwrap();
            runs.push(t.elapsed());
            std::hint::black_box(d);
        }
        // The same jobs under a monthly budget: the first pass tallies every finished job of
        // the month; later ones reuse that while no job was stored or changed status.
        let mut config = app.config().clone();
        config.policies.extend(
            ftguard::config::Config::load(Some(&{
                let p = dir.path().join("budget.toml");
                std::fs::write(
                    &p,
                    format!(
                        "[daemon]\ndatabase = {:?}\n[[accounts]]\nname = \"prod\"\nbase_url = \"http://127.0.0.1:9/v1\"\n[[policies]]\nname='monthly'\nkind='budget'\nlimit_usd=1000000000.0\nperiod='month'\ngroup_by='model'\n",
                        dir.path().join("db").display().to_string()
                    ),
                )
                .unwrap();
                p
            }))
            .unwrap()
            .policies,
        );
        let budget_app = ftguard::app::App::with_store(config, app.store().clone()).unwrap();
        let timed_pass = || async {
            let t = Instant::now();
            std::hint::black_box(
                budget_app
                    .decide(&budget_app.config().policies, now)
                    .await
                    .unwrap(),
            );
            t.elapsed()
        };
        let first = timed_pass().await;
        let mut again = Vec::new();
        for _ in 0..7 {
            again.push(timed_pass().await);
        }
        // A job finishes before each pass (what a sync that saw it stores): only it is added
        // to the kept spend, not the whole month read again.
        let mut after_finish = Vec::new();
        for j in jobs.iter().filter(|j| !j.status.is_terminal()).take(7) {
            let mut raw = j.raw_value();
            raw["status"] = "succeeded".into();
            raw["trained_tokens"] = 1_000_000.into();
            raw["finished_at"] = now.into();
            let done = ftguard::provider::payload::parse_job(raw).unwrap();
            app.store()
                .upsert_jobs(&account, &[done], now)
                .await
                .unwrap();
            after_finish.push(timed_pass().await);
        }
        out.push_str(&format!(
            "| {n} | {active} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms |\n",
            median(runs).as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            median(again).as_secs_f64() * 1e3,
            median(after_finish).as_secs_f64() * 1e3
        ));
        app.store().close().await;
    }
}

fn sim_jobs(n: usize, now: i64) -> Vec<SimJob> {
    (0..n)
        .map(|i| {
            let status = if i < 20 { "running" } else { "succeeded" };
            SimJob::in_status(
                &ftguard::sim::history_id(i as u64),
                status,
                60 + i as i64 * 10,
                now,
            )
        })
        .collect()
}

async fn raw_fetch(base: String) -> (Duration, usize) {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let t = Instant::now();
    let mut after: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut req = http
            .get(format!("{base}/fine_tuning/jobs"))
            .query(&[("limit", "100")]);
        if let Some(a) = &after {
            req = req.query(&[("after", a)]);
        }
        let v: serde_json::Value = req.send().await.unwrap().json().await.unwrap();
        pages += 1;
        let data = v["data"].as_array().unwrap();
        if !v["has_more"].as_bool().unwrap_or(false) {
            break;
        }
        after = data
            .last()
            .and_then(|j| j["id"].as_str())
            .map(str::to_owned);
    }
    (t.elapsed(), pages)
}

/// Runs the release binary, returning (wall time, peak RSS in KiB, stdout). The peak is the
/// child's own VmHWM, polled until it exits: rusage would count the benchmark process the child
/// was forked from before it exec'd.
fn run_binary(args: &[&str], config: &std::path::Path) -> (Duration, i64, String) {
    let t = Instant::now();
    let mut child = std::process::Command::new(shipped_binary())
        .arg("--config")
        .arg(config)
        .args(args)
        .env("FTGUARD_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut text).unwrap();
        text
    });
    let mut peak = 0;
    let exe = std::fs::canonicalize(shipped_binary()).unwrap();
    loop {
        // Only once the child runs our binary (after exec) does its VmHWM mean anything.
        if std::fs::read_link(format!("/proc/{pid}/exe")).ok().as_ref() == Some(&exe) {
            peak = peak.max(proc_status(pid, "VmHWM:"));
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let elapsed = t.elapsed();
    (elapsed, peak, reader.join().unwrap())
}

fn config(dir: &std::path::Path, base: &str, extra: &str) -> std::path::PathBuf {
    let p = dir.join("ftguard.toml");
    std::fs::write(
        &p,
        format!("[daemon]\ndatabase = {:?}\n{extra}\n[[accounts]]\nname = \"sim\"\nbase_url = \"{base}\"\n", dir.join("ftguard.db").display().to_string()),
    )
    .unwrap();
    p
}

/// `ftguard sync` as a process on three fresh databases: best time, highest peak RSS (KiB), and
/// the last database's directory (for a steady-state sync after it).
async fn first_syncs(base: &str) -> (Duration, i64, tempfile::TempDir) {
    let (mut best, mut rss, mut last) = (Duration::MAX, 0, None);
    for _ in 0..3 {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), base, "");
        let (d, r, _) = tokio::task::spawn_blocking(move || run_binary(&["sync"], &cfg))
            .await
            .unwrap();
        best = best.min(d);
        rss = rss.max(r);
        last = Some(dir);
    }
    (best, rss, last.unwrap())
}

/// Runs `fut` on a one-threaded runtime of its own, as ftguard's commands run, so that the raw
/// client and ftguard's sync meet the same scheduling (and not the benchmark's own runtime,
/// which may be serving the simulator).
async fn one_threaded<T: Send + 'static>(
    fut: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    tokio::task::spawn_blocking(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(fut)
    })
    .await
    .unwrap()
}

/// The sync alone, in the benchmark's process (no process start, no migrations), on fresh
/// databases: the best of three.
async fn sync_in_process(base: &str) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let d = tempfile::tempdir().unwrap();
        let c = ftguard::config::Config::load(Some(&config(d.path(), base, ""))).unwrap();
        let took = one_threaded(async move {
            let app = ftguard::app::App::build(c).await.unwrap();
            let t = Instant::now();
            let r = app.sync_with(true).await;
            let took = t.elapsed();
            assert!(r.iter().all(|(_, r)| r.is_ok()));
            app.store().close().await;
            took
        })
        .await;
        best = best.min(took);
    }
    best
}

async fn bench_sync(out: &mut String) {
    out.push_str("\n## First sync vs raw page fetching (same simulator, one keep-alive connection)\n\n| jobs | pages | raw fetch+parse | ftguard sync, in process | ratio | `ftguard sync` as a process (start, migrations, sync) | ratio | peak RSS of that process | steady-state requests |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for n in [1_000usize, 10_000] {
        let sim = Sim::start(sim_jobs(n, ftguard::model::time::now()))
            .await
            .unwrap();
        let base = sim.base_url();
        // Warm the simulator (its first sort of the jobs) and take the best of three raw runs.
        let mut raw = Vec::new();
        let mut pages = 0;
        for _ in 0..3 {
            let (d, p) = one_threaded(raw_fetch(base.clone())).await;
            raw.push(d);
            pages = p;
        }
        let raw = raw.into_iter().min().unwrap();
        let (best, rss, dir) = first_syncs(&base).await;
        // In-process: the sync alone (no process start, no migrations), on a fresh database.
        let inproc = sync_in_process(&base).await;
        // Steady state on the last database: count what a second sync asks of the API.
        let before = sim.requests().len();
        let cfg = dir.path().join("ftguard.toml");
        tokio::task::spawn_blocking(move || run_binary(&["sync"], &cfg))
            .await
            .unwrap();
        let steady = sim.requests().len() - before;
        out.push_str(&format!(
            "| {n} | {pages} | {:.0} ms | {:.0} ms | {:.2}x | {:.0} ms | {:.2}x | {:.1} MB | {steady} |\n",
            raw.as_secs_f64() * 1e3,
            inproc.as_secs_f64() * 1e3,
            inproc.as_secs_f64() / raw.as_secs_f64(),
            best.as_secs_f64() * 1e3,
            best.as_secs_f64() / raw.as_secs_f64(),
            rss as f64 / 1024.0,
        ));
    }
}

/// The same comparison with the simulator in a process of its own (`ftguard sim`), so the
/// benchmark's client and the simulator do not share a runtime with what is measured.
async fn bench_sync_external(out: &mut String) {
    let mut cli = String::new();
    out.push_str("\n## First sync vs raw page fetching, simulator in its own process\n\n| jobs | API latency per request | raw fetch+parse | ftguard sync, in process | ratio | `ftguard sync` as a process | ratio | peak RSS | steady-state `ftguard sync` after it |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (n, latency) in [
        (1_000usize, "0ms"),
        (10_000, "0ms"),
        (100_000, "0ms"),
        (10_000, "1ms"),
        (10_000, "5ms"),
        (10_000, "20ms"),
    ] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut sim = std::process::Command::new(shipped_binary())
            .args([
                "sim",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--jobs",
                &(n - 20).to_string(),
                "--active",
                "20",
                "--latency",
                latency,
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let base = format!("http://127.0.0.1:{port}/v1");
        let mut raw = Duration::MAX;
        for _ in 0..3 {
            raw = raw.min(one_threaded(raw_fetch(base.clone())).await.0);
        }
        let (best, rss, dir) = first_syncs(&base).await;
        // Like for like with the raw client, which runs in this process too.
        let inproc = sync_in_process(&base).await;
        // The sync a daemon runs every minute from then on (one request; the store must not
        // read the history either).
        let cfg = dir.path().join("ftguard.toml");
        let steady = tokio::task::spawn_blocking(move || {
            (0..3)
                .map(|_| run_binary(&["sync"], &cfg).0)
                .min()
                .unwrap_or_default()
        })
        .await
        .unwrap();
        if n == 100_000 && latency == "0ms" {
            cli_rows(dir.path(), &mut cli).await;
        }
        let _ = sim.kill();
        let _ = sim.wait();
        out.push_str(&format!(
            "| {n} | {latency} | {:.0} ms | {:.0} ms | {:.2}x | {:.0} ms | {:.2}x | {:.1} MB | {:.0} ms |\n",
            raw.as_secs_f64() * 1e3,
            inproc.as_secs_f64() * 1e3,
            inproc.as_secs_f64() / raw.as_secs_f64(),
            best.as_secs_f64() * 1e3,
            best.as_secs_f64() / raw.as_secs_f64(),
            rss as f64 / 1024.0,
            steady.as_secs_f64() * 1e3
        ));
    }
    out.push_str(&cli);
}

/// The commands people run by hand, over the 100,000 jobs a first sync just stored: each
/// streams the jobs, so its peak stays near the binary's own size.
async fn cli_rows(dir: &std::path::Path, out: &mut String) {
    out.push_str("\n## Commands over 100,000 stored jobs\n\n| command | time | peak RSS |\n|---|---:|---:|\n");
    let cfg = dir.join("ftguard.toml");
    let budget = dir.join("budget.toml");
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 1000000000\nperiod = \"month\"\ngroup_by = \"model\"\n");
    std::fs::write(&budget, text).unwrap();
    for (args, config, label) in [
        (&["jobs"][..], &cfg, "`ftguard jobs`"),
        (&["jobs", "--json"][..], &cfg, "`ftguard jobs --json`"),
        (
            &["spend", "--by", "model"][..],
            &cfg,
            "`ftguard spend --by model`",
        ),
        (
            &["plan"][..],
            &budget,
            "`ftguard plan` with a monthly budget (sync, then a pass)",
        ),
    ] {
        let config = config.clone();
        let (d, rss, _) = tokio::task::spawn_blocking(move || run_binary(args, &config))
            .await
            .unwrap();
        out.push_str(&format!(
            "| {label} | {:.0} ms | {:.1} MB |\n",
            d.as_secs_f64() * 1e3,
            rss as f64 / 1024.0
        ));
    }
}

/// A JSONL chat training file of `examples` lines with varied words (so tokenizing does
/// real work).
fn training_text(examples: usize) -> Vec<u8> {
    const WORDS: [&str; 12] = [
        "invoice", "the", "refund", "customer", "shipping", "policy", "delayed", "order", "please",
        "thanks", "account", "number",
    ];
    let mut out = String::new();
    for i in 0..examples {
        let words = |n: usize| {
            (0..n)
                .map(|k| WORDS[(i * 7 + k * 5) % WORDS.len()])
                .collect::<Vec<_>>()
                .join(" ")
        };
        out.push_str(&format!(
            "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{} {i}?\"}},{{\"role\":\"assistant\",\"content\":\"{}.\"}}]}}\n",
            words(40),
            words(50)
        ));
    }
    out.into_bytes()
}

fn proc_status(pid: u32, key: &str) -> i64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn cpu_ticks(pid: u32) -> i64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0)
}

/// `/healthz` and `/metrics` read the newest sync run of each account: over 30 days of a sync a
/// minute for two accounts (what retention keeps), recorded the way the daemon records them.
async fn bench_sync_runs(out: &mut String) {
    let dir = tempfile::tempdir().unwrap();
    let store = ftguard::store::Store::open(&dir.path().join("ftguard.db"))
        .await
        .unwrap();
    let start = ftguard::model::time::now() - 31 * 86_400;
    let mut record = Vec::new();
    for minute in 0..31 * 1440i64 {
        for account in ["prod", "research"] {
            let run = ftguard::store::SyncRun {
                account: account.into(),
                started_at: start + minute * 60,
                finished_at: Some(start + minute * 60 + 1),
                pages: 1,
                jobs_seen: 20,
                error: (minute % 97 == 0).then(|| "timeout".to_owned()),
            };
            let t = Instant::now();
            store.record_sync_run(&run).await.unwrap();
            record.push(t.elapsed());
        }
    }
    let time = |f: &dyn Fn() -> Duration| median((0..15).map(|_| f()).collect());
    let rt = tokio::runtime::Handle::current();
    let latest = time(&|| {
        let t = Instant::now();
        tokio::task::block_in_place(|| rt.block_on(store.latest_sync_runs())).unwrap();
        t.elapsed()
    });
    let ok = time(&|| {
        let t = Instant::now();
        tokio::task::block_in_place(|| rt.block_on(store.last_successful_syncs())).unwrap();
        t.elapsed()
    });
    out.push_str("\n## Sync runs (`/healthz`, `/metrics`): 31 days of one sync a minute, two accounts\n\n| measure | median |\n|---|---:|\n");
    out.push_str(&format!(
        "| recording a run (insert, and pruning runs older than 30 days) | {:.2} ms |\n| newest run per account | {:.2} ms |\n| newest successful run per account | {:.2} ms |\n",
        median(record).as_secs_f64() * 1e3,
        latest.as_secs_f64() * 1e3,
        ok.as_secs_f64() * 1e3
    ));
    store.close().await;
}

/// `ftguard run` (the daemon) on this configuration, logging errors only.
fn spawn_daemon(cfg: &std::path::Path) -> std::process::Child {
    std::process::Command::new(shipped_binary())
        .arg("--config")
        .arg(cfg)
        .arg("run")
        .env("FTGUARD_LOG", "error")
        .spawn()
        .unwrap()
}

/// What one daemon run measured.
struct DaemonRun {
    rss: i64,
    anon: i64,
    file: i64,
    hwm: i64,
    idle_ticks: i64,
    /// Cancel request received minus limit crossed, in ms.
    lateness_ms: Option<i64>,
    counted: bool,
}

/// `ftguard run` with hourly syncs over 1,000 jobs plus one that crosses its 6h limit 5 s after
/// start; with `count`, also a cost policy and a running job whose 2.4 MB training file it counts.
async fn daemon_run(count: bool) -> DaemonRun {
    let now = ftguard::model::time::now();
    let mut jobs = sim_jobs(1_000, now);
    jobs.push(SimJob::in_status(
        "ftjob-crossing",
        "running",
        6 * H - 5,
        now,
    ));
    if count {
        // 4,000 chat examples: the tokenizer counting takes must not stay resident after.
        let mut counted = SimJob::in_status("ftjob-counted", "running", 600, now);
        counted.training_file = "file-counted".to_owned();
        jobs.push(counted);
    }
    let sim = Sim::start(jobs).await.unwrap();
    sim.add_file("file-counted", training_text(4_000));
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(
        dir.path(),
        &sim.base_url(),
        "sync_schedule = \"0 0 * * * *\"\n",
    );
    let mut text = std::fs::read_to_string(&cfg).unwrap();
    text.push_str("\n[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n");
    if count {
        text.push_str(
            "\n[[policies]]\nname = \"cap\"\nkind = \"max_job_cost\"\nlimit_usd = 1000.0\n",
        );
    }
    std::fs::write(&cfg, text).unwrap();
    // created_at + 6h = now + 5 s.
    let crossing_ms = (now + 5) * 1000;
    let mut child = spawn_daemon(&cfg);
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim.status("ftjob-crossing").as_deref() != Some("cancelled") && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // And until the training file's count is stored.
    let mut counted = false;
    while count && Instant::now() < deadline {
        if let Ok(store) = ftguard::store::Store::open(&dir.path().join("ftguard.db")).await {
            counted = store.file_tokens().await.is_ok_and(|m| !m.is_empty());
            store.close().await;
            if counted {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let lateness_ms = sim
        .requests()
        .iter()
        .find(|r| r.path.ends_with("/cancel"))
        .map(|r| r.at_ms - crossing_ms);
    // Idle: no work scheduled for an hour.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let ticks0 = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let run = DaemonRun {
        idle_ticks: cpu_ticks(pid) - ticks0,
        rss: proc_status(pid, "VmRSS:"),
        anon: proc_status(pid, "RssAnon:"),
        file: proc_status(pid, "RssFile:"),
        hwm: proc_status(pid, "VmHWM:"),
        lateness_ms,
        counted,
    };
    let _ = child.kill();
    let _ = child.wait();
    run
}

async fn bench_daemon(out: &mut String) {
    let mb = |kib: i64| kib as f64 / 1024.0;
    let plain = daemon_run(false).await;
    let counting = daemon_run(true).await;
    out.push_str("\n## Daemon\n\n| measure | value |\n|---|---:|\n");
    for (what, r) in [
        (
            "after syncing 1,001 jobs and one cancel; no cost policy",
            &plain,
        ),
        (
            "after syncing 1,002 jobs, counting one 2.4 MB training file, one cancel",
            &counting,
        ),
    ] {
        out.push_str(&format!(
            "| idle RSS ({what}) | {:.1} MB ({:.1} MB heap and stacks, {:.1} MB the binary's own pages) |\n| peak RSS of that run | {:.1} MB |\n| CPU while idle for 10 s | {} ticks ({} ms) |\n",
            mb(r.rss),
            mb(r.anon),
            mb(r.file),
            mb(r.hwm),
            r.idle_ticks,
            r.idle_ticks * 10
        ));
    }
    if !counting.counted {
        out.push_str("| training file count | not stored within 30 s |\n");
    }
    let late = |r: &DaemonRun| {
        r.lateness_ms
            .map_or("no cancel within 30 s".to_owned(), |ms| {
                format!("{:.2} s", ms as f64 / 1000.0)
            })
    };
    out.push_str(&format!(
        "| deadline lateness (cancel request received − limit crossed), hourly syncs | {} / {} |\n",
        late(&plain),
        late(&counting)
    ));
}

/// A configuration of `n` accounts, each with a header of its own (so none repeats another),
/// all pointing at the same simulator: `n` x its jobs stored.
fn accounts_config(dir: &std::path::Path, base: &str, n: usize, extra: &str) -> std::path::PathBuf {
    let mut text = format!(
        "[daemon]\ndatabase = {:?}\n{extra}\n",
        dir.join("ftguard.db").display().to_string()
    );
    for i in 0..n {
        text.push_str(&format!(
            "[[accounts]]\nname = \"acct-{i:04}\"\nbase_url = \"{base}\"\nheaders = {{ \"x-bench-account\" = \"{i}\" }}\n"
        ));
    }
    text.push_str("[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"100d\"\n");
    let p = dir.join("ftguard.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Many accounts against one host: first and steady-state `ftguard sync` (wall, peak RSS,
/// requests) and an idle daemon, for 1, 20, 200 and 1,000 accounts of 205 jobs each.
async fn bench_accounts(out: &mut String) {
    out.push_str("\n## Many accounts on one host (205 jobs each, 20 of them active)\n\n| accounts | stored jobs | first `ftguard sync` | peak RSS | steady-state `ftguard sync` | peak RSS | requests | idle daemon RSS (peak) | `config check` |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let now = ftguard::model::time::now();
    let sim = Sim::start(sim_jobs(205, now)).await.unwrap();
    let base = sim.base_url();
    for n in [1usize, 20, 200, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = accounts_config(dir.path(), &base, n, "sync_schedule = \"0 0 * * * *\"");
        let c = cfg.clone();
        let (first, first_rss, _) = tokio::task::spawn_blocking(move || run_binary(&["sync"], &c))
            .await
            .unwrap();
        let before = sim.requests().len();
        let c = cfg.clone();
        let (steady, steady_rss, _) =
            tokio::task::spawn_blocking(move || run_binary(&["sync"], &c))
                .await
                .unwrap();
        let requests = sim.requests().len() - before;
        let c = cfg.clone();
        let (check, _, _) =
            tokio::task::spawn_blocking(move || run_binary(&["config", "check"], &c))
                .await
                .unwrap();
        // The daemon: its first pass (a steady sync of every account), then idle.
        let before = sim.requests().len();
        let mut child = spawn_daemon(&cfg);
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(120);
        while sim.requests().len() - before < requests && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (idle, hwm) = (proc_status(pid, "VmRSS:"), proc_status(pid, "VmHWM:"));
        let _ = child.kill();
        let _ = child.wait();
        let mb = |kib: i64| kib as f64 / 1024.0;
        out.push_str(&format!(
            "| {n} | {} | {:.2} s | {:.1} MB | {:.0} ms | {:.1} MB | {requests} | {:.1} MB ({:.1} MB) | {:.0} ms |\n",
            n * 205,
            first.as_secs_f64(),
            mb(first_rss),
            steady.as_secs_f64() * 1000.0,
            mb(steady_rss),
            mb(idle),
            mb(hwm),
            check.as_secs_f64() * 1000.0,
        ));
    }
}

/// `ftguard replay` over 90 days of 100,000 stored jobs (one every 78 s, 1 to 9 hours of
/// training each, a tenth watched queued -> running -> finished, a hundredth of those with
/// training metrics, the rest first seen finished) with every policy kind (eleven): in
/// process (`App::replay`) and as a process (wall, peak RSS).
async fn bench_replay(out: &mut String) {
    out.push_str("\n## `ftguard replay` over 90 days of stored history, every policy kind\n\n| stored jobs | watched (with status changes) | acted on | `App::replay` (median of 3) | `ftguard replay --json` | peak RSS |\n|---:|---:|---:|---:|---:|---:|\n");
    let now = ftguard::model::time::now();
    let n = 100_000usize;
    let span = 90 * 86_400;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ftguard.toml");
    let mut text = format!(
        "[daemon]\ndatabase = {:?}\n[[accounts]]\nname = \"prod\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
        dir.path().join("db").display().to_string()
    );
    for p in [
        "name='rt'\nkind='max_runtime'\nlimit='6h'\nexempt={metadata={team='team-3'}}",
        "name='q'\nkind='max_queue_time'\nlimit='5m'\ngrace='2m'",
        "name='models'\nkind='allowed_models'\nmodels=['gpt-4o*','gpt-4.1*']",
        "name='meta'\nkind='required_metadata'\nkeys=['team']",
        "name='deadline'\nkind='deadline'\nlimit='8h'",
        "name='epochs'\nkind='max_epochs'\nlimit=3",
        "name='cap'\nkind='max_job_cost'\nlimit_usd=8.0",
        "name='stall'\nkind='stalled'\nlimit='30m'",
        "name='budget'\nkind='budget'\nlimit_usd=15000.0\nperiod='month'\ngroup_by='metadata.team'",
        "name='early'\nkind='loss_plateau'\nmetric='train_loss'\npatience=200\nmin_delta=0.01",
        "name='diverging'\nkind='loss_divergence'\nmetric='train_loss'\npatience=30",
    ] {
        text.push_str(&format!("[[policies]]\n{p}\n"));
    }
    std::fs::write(&cfg, text).unwrap();
    let app = ftguard::app::App::build(ftguard::config::Config::load(Some(&cfg)).unwrap())
        .await
        .unwrap();
    let account = app.clients()[0].account().clone();
    let job = |i: usize, status: &str| -> Job {
        let created = now - span + (i as i64) * span / n as i64;
        let hours = (i % 9) as i64 + 1;
        let finished = created + hours * H;
        let terminal = matches!(status, "succeeded" | "failed" | "cancelled");
        let model = if i.is_multiple_of(50) {
            "babbage-002"
        } else if i.is_multiple_of(3) {
            "gpt-4o-2024-08-06"
        } else {
            "gpt-4o-mini-2024-07-18"
        };
        ftguard::provider::payload::parse_job(serde_json::json!({
            "id": format!("ftjob-{i:06}"), "model": model, "status": status, "created_at": created,
            "finished_at": terminal.then_some(finished),
            "trained_tokens": terminal.then_some(hours * H * 100),
            "estimated_finish": (status == "running").then_some(finished),
            "training_file": format!("file-{i}"),
            "metadata": if i.is_multiple_of(11) { serde_json::Value::Null } else { serde_json::json!({"team": format!("team-{}", i % 7)}) },
            "hyperparameters": {"n_epochs": if i.is_multiple_of(13) { 5 } else { 3 }}, "method": {"type": "supervised"}
        }))
        .unwrap()
    };
    let fate = |i: usize| -> &'static str {
        let created = now - span + (i as i64) * span / n as i64;
        if created + ((i % 9) as i64 + 1) * H > now {
            "running"
        } else if i.is_multiple_of(20) {
            "failed"
        } else if i % 20 == 1 {
            "cancelled"
        } else {
            "succeeded"
        }
    };
    let t = Instant::now();
    let history: Vec<Job> = (0..n)
        .filter(|i| !i.is_multiple_of(10))
        .map(|i| job(i, fate(i)))
        .collect();
    for chunk in history.chunks(500) {
        app.store().upsert_jobs(&account, chunk, now).await.unwrap();
    }
    let metrics_every: usize = std::env::var("FTGUARD_BENCH_METRICS_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // Watched jobs: seen queued at creation, running 10 minutes later, then as they ended.
    let mut watched = 0;
    for i in (0..n).step_by(10) {
        let created = now - span + (i as i64) * span / n as i64;
        app.store()
            .upsert_jobs(&account, &[job(i, "queued")], created)
            .await
            .unwrap();
        app.store()
            .upsert_jobs(&account, &[job(i, "running")], created + 600)
            .await
            .unwrap();
        let end = fate(i);
        if end != "running" {
            let j = job(i, end);
            let at = j.finished_at.unwrap_or(now).min(now);
            app.store().upsert_jobs(&account, &[j], at).await.unwrap();
        }
        watched += 1;
        // One watched job in a hundred has its training metrics stored (100 jobs, 180,000
        // steps): a step every 10 s of training (360 to 3,240 steps), its loss falling then
        // flat, every fifth blowing up. (`FTGUARD_BENCH_METRICS_EVERY=100`: one in ten.)
        if i % metrics_every == 0 {
            let steps = ((i % 9) as i64 + 1) * H / 10;
            let page: Vec<(ftguard::model::metrics::StepMetrics, i64)> = (1..=steps)
                .map(|s| {
                    let x = s as f64;
                    let mut loss = 0.6 + 2.0 * (-x / 200.0).exp();
                    if i % (5 * metrics_every) == 0 && s > steps / 2 {
                        loss *= 3.0;
                    }
                    let m = ftguard::model::metrics::StepMetrics {
                        step: s,
                        total_steps: Some(steps),
                        train_loss: Some(loss),
                        ..Default::default()
                    };
                    (m, created + 600 + s * 10)
                })
                .collect();
            let id = format!("ftjob-{i:06}");
            app.store().put_metrics("prod", &id, &page).await.unwrap();
            app.store()
                .set_metrics_cursor("prod", &id, "ftevent-last", now)
                .await
                .unwrap();
        }
    }
    eprintln!(
        "replay bench: stored {n} jobs in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let since = now - span;
    let mut runs = Vec::new();
    let mut acted = 0;
    for _ in 0..3 {
        let t = Instant::now();
        let r = app
            .replay(&app.config().policies, &app.config().prices, since, now)
            .await
            .unwrap();
        runs.push(t.elapsed());
        acted = r.policies.iter().map(|p| p.jobs.len()).sum::<usize>();
        assert_eq!(r.jobs, n);
    }
    app.store().close().await;
    let (wall, rss, stdout) = run_binary(&["replay", "--since", "91d", "--json"], &cfg);
    assert!(stdout.contains("saved_usd"), "{stdout}");
    out.push_str(&format!(
        "| {n} | {watched} | {acted} | {:.0} ms | {:.0} ms | {:.1} MB |\n",
        median(runs).as_secs_f64() * 1e3,
        wall.as_secs_f64() * 1e3,
        rss as f64 / 1024.0
    ));
}

/// Reading training metrics: 20 running jobs at 10 steps a second under a `loss_plateau`
/// policy, 30 minutes into training (18,000 steps each). `ftguard sync` as a process: the first
/// read of their whole history, then steady-state syncs 10 s and 60 s of training later
/// (100 and 600 new steps a job), against a sync of the same jobs with no such policy.
async fn bench_metrics(out: &mut String) {
    use ftguard::sim::CurveShape;
    out.push_str("\n## Reading training metrics: 20 running jobs at 10 steps a second\n\n| sync | new steps a job | requests | events requests | wall | peak RSS |\n|---|---:|---:|---:|---:|---:|\n");
    let now = ftguard::model::time::now();
    let jobs: Vec<SimJob> = (0..20)
        .map(|i| {
            SimJob::in_status(&format!("ftjob-curve-{i:02}"), "running", 1800, now).with_curve(
                CurveShape::Converging,
                60_000,
                10,
            )
        })
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    let base = sim.base_url();
    let policy = "[[policies]]\nname = \"early-stop\"\nkind = \"loss_plateau\"\nmetric = \"train_loss\"\npatience = 5000\n";
    for (label, extra) in [
        ("without a loss policy", ""),
        ("with `loss_plateau`", policy),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path(), &base, "");
        let text = std::fs::read_to_string(&cfg).unwrap();
        std::fs::write(&cfg, format!("{text}\n{extra}")).unwrap();
        for (what, advance) in [("first", 0), ("steady", 10), ("steady", 60)] {
            sim.advance(advance);
            sim.clear_requests();
            let c = cfg.clone();
            let (wall, rss, _) = tokio::task::spawn_blocking(move || run_binary(&["sync"], &c))
                .await
                .unwrap();
            let reqs = sim.requests();
            let events = reqs.iter().filter(|r| r.path.ends_with("/events")).count();
            let new = if what == "first" {
                "18,000".to_owned()
            } else {
                (advance * 10).to_string()
            };
            out.push_str(&format!(
                "| {what}, {label} | {new} | {} | {events} | {:.0} ms | {:.1} MB |\n",
                reqs.len(),
                wall.as_secs_f64() * 1e3,
                rss as f64 / 1024.0
            ));
        }
        // A whole pass as a process: sync, then every job's stored curve (18,700 steps) read
        // and judged.
        sim.advance(10);
        sim.clear_requests();
        let c = cfg.clone();
        let (wall, rss, _) =
            tokio::task::spawn_blocking(move || run_binary(&["run", "--once"], &c))
                .await
                .unwrap();
        let reqs = sim.requests();
        let events = reqs.iter().filter(|r| r.path.ends_with("/events")).count();
        out.push_str(&format!(
            "| `run --once` (sync and judge), {label} | 100 | {} | {events} | {:.0} ms | {:.1} MB |\n",
            reqs.len(),
            wall.as_secs_f64() * 1e3,
            rss as f64 / 1024.0
        ));
    }
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing useful: run quickly.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut out = String::new();
    out.push_str(&format!(
        "# ftguard benchmarks ({} cores, {})\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        std::env::consts::ARCH
    ));
    // `cargo bench --bench ftguard -- sync` runs one part (evaluate, decide, health, sync, daemon
    // accounts, replay or metrics),
    // e.g. for profiling; `sync` runs both sync tables.
    let only = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let run = |part: &str| only.is_empty() || only == part;
    if only != "evaluate" {
        // Built before any timed scenario starts its clock.
        eprintln!("measuring {}", shipped_binary().display());
    }
    if run("evaluate") {
        bench_evaluate(&mut out);
    }
    if run("decide") {
        rt.block_on(bench_decide(&mut out));
    }
    if run("health") {
        rt.block_on(bench_sync_runs(&mut out));
    }
    if run("sync") {
        rt.block_on(bench_sync(&mut out));
        rt.block_on(bench_sync_external(&mut out));
    }
    if run("daemon") {
        rt.block_on(bench_daemon(&mut out));
    }
    if run("accounts") {
        rt.block_on(bench_accounts(&mut out));
    }
    if run("replay") {
        rt.block_on(bench_replay(&mut out));
    }
    if run("metrics") {
        rt.block_on(bench_metrics(&mut out));
    }
    println!("{out}");
}
