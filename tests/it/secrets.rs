//! Secrets never leak: recognisable secret values go through every command and the daemon,
//! through failures, at trace level and in JSON logs; no output, metric or database byte holds them.

use crate::common::*;
use std::time::{Duration, Instant};

const PK: &str = "pk-SECRET-portkey-4242";
const VK: &str = "vk-SECRET-virtual-4343";
const BEARER: &str = "sk-SECRET-bearer-4444";
const HOOK: &str = "hook-SECRET-path-4545";
/// A header a gateway needs for another provider (Bedrock's AWS secret key), by reference.
const HEADER: &str = "aws-SECRET-header-4646";

fn assert_clean(what: &str, text: &str) {
    for s in [PK, VK, BEARER, HOOK, HEADER] {
        assert!(!text.contains(s), "{what} leaked {s}:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_command_log_metric_or_database_holds_a_secret() {
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-1", "running", 7 * H, now()),
        SimJob::in_status("ftjob-2", "queued", 60, now()),
    ])
    .await
    .unwrap();
    // Failures on the way: a 500 page, a rate limit, an error page on cancel.
    sim.fault(Endpoint::List, Fault::Status(500));
    sim.fault(Endpoint::List, Fault::RateLimited(0));
    sim.fault(Endpoint::Cancel, Fault::Html(502));
    let env = Env::new()
        .env("FT_TEST_PK", PK)
        .env("FT_TEST_HEADER", HEADER)
        .env("FTGUARD_LOG", "trace");
    let vk = env.dir.path().join("vk");
    std::fs::write(&vk, VK).unwrap();
    let creds = env.dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("bearer"), BEARER).unwrap();
    std::fs::write(creds.join("hook"), format!("http://127.0.0.1:9/{HOOK}")).unwrap();
    let env = env.env("CREDENTIALS_DIRECTORY", creds.to_str().unwrap());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.write_config(
        &format!("listen = \"127.0.0.1:{port}\"\nsync_schedule = \"*/1 * * * * *\""),
        &format!(
            r#"
[[accounts]]
name = "sim"
base_url = "{}"
portkey_api_key = {{ env = "FT_TEST_PK" }}
virtual_key = {{ file = "{}" }}
bearer_token = {{ credential = "bearer" }}
headers = {{ "x-portkey-aws-secret-access-key" = {{ env = "FT_TEST_HEADER" }} }}
max_attempts = 3
max_retry_after = "1s"

[[accounts]]
name = "unreachable"
base_url = "http://127.0.0.1:9/v1"
bearer_token = {{ credential = "bearer" }}
max_attempts = 1

[[policies]]
name = "rt"
kind = "max_runtime"
limit = "6h"

[[notifiers]]
url = {{ credential = "hook" }}
"#,
            sim.base_url(),
            vk.display()
        ),
    );
    let mut outputs = Vec::new();
    for args in [
        &["config", "check"][..],
        &["sync"][..],
        &["sync", "--json"][..],
        &["--log-format", "json", "run", "--once"][..],
        &["plan"][..],
        &["plan", "--json", "--offline"][..],
        &["jobs", "--json"][..],
        &["show", "ftjob-1", "--json"][..],
        &["actions", "--json"][..],
        &["spend", "--json"][..],
        &["cancel", "ftjob-2", "--reason", "test"][..],
        &["config", "check", "--test-notifiers"][..],
        &["status", "--json"][..],
        &["show", "ftjob-1"][..],
        &["plan", "--offline", "--upcoming", "12h", "--json"][..],
        &["resume", "ftjob-1", "--json"][..],
        &["actions", "--outcome", "failed"][..],
    ] {
        let out = env.run(args).await;
        outputs.push((
            format!("{args:?}"),
            format!("{}{}", stdout(&out), stderr(&out)),
        ));
    }
    // The daemon, its logs and its metrics.
    let log = env.dir.path().join("daemon.log");
    let mut daemon = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .args(["--config", env.config_path().to_str().unwrap(), "run"])
        .env("FT_TEST_PK", PK)
        .env("FT_TEST_HEADER", HEADER)
        .env("CREDENTIALS_DIRECTORY", &creds)
        .env("FTGUARD_LOG", "trace")
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/metrics")).await {
            metrics = r.text().await.unwrap_or_default();
            if metrics.contains("ftguard_jobs") {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(metrics.contains("ftguard_jobs"), "{metrics}");
    let health = reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    daemon.start_kill().unwrap();
    daemon.wait().await.unwrap();

    assert!(
        outputs
            .iter()
            .any(|(_, o)| o.contains("TRACE") || o.contains("\"level\":\"TRACE\"")),
        "trace logging was on"
    );
    for (what, text) in &outputs {
        assert_clean(what, text);
    }
    assert_clean("daemon log", &std::fs::read_to_string(&log).unwrap());
    assert_clean("/metrics", &metrics);
    assert_clean("/healthz", &health);
    for f in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = f.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("ftguard.db")
        {
            assert_clean(
                &p.display().to_string(),
                &String::from_utf8_lossy(&std::fs::read(&p).unwrap()),
            );
        }
    }
    // The API did receive them: the test would prove nothing otherwise.
    let sent = sim.requests();
    assert!(sent.iter().any(|r| r.headers.iter().any(|(_, v)| v == PK)));
    assert!(
        sent.iter()
            .any(|r| r.headers.iter().any(|(_, v)| v == HEADER))
    );
}

#[tokio::test]
async fn files_ftguard_creates_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 60, now())])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    env.ok(&["run", "--once"]).await;
    for f in std::fs::read_dir(env.dir.path()).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("ftguard.db") {
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{name} is {mode:o}");
        }
    }
}
