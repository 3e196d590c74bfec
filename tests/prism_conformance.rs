//! Spec conformance against Prism (`@stoplight/prism-cli`) serving the OpenAI spec in dynamic
//! mode: random valid payloads, `has_more` at random, ids with spaces. Every pass terminates,
//! never panics, and stores what it parsed. The test installs Prism with npm on first run.

mod common;
use common::*;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn install_prism() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prism-5");
    let bin = dir.join("node_modules/.bin/prism");
    if !bin.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(&dir)
            .arg("@stoplight/prism-cli@5")
            .output()
            .expect("npm (Node.js 20) is needed to fetch Prism");
        assert!(
            out.status.success(),
            "npm install prism failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    bin
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_enforcement_against_random_valid_payloads() {
    let prism = install_prism();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = tokio::process::Command::new(prism)
        .args(["mock", "-d", "-h", "127.0.0.1", "-p", &port.to_string()])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/openai-fine-tuning.yaml"
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "prism did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let env = Env::new();
    let token = env.dir.path().join("token");
    std::fs::write(&token, "sk-prism").unwrap();
    env.write_config(
        "",
        &format!(
            r#"
[[accounts]]
name = "prism"
base_url = "http://127.0.0.1:{port}"
bearer_token = {{ file = "{}" }}
max_pages = 25
max_attempts = 2
request_timeout = "10s"

[[policies]]
name = "rt"
kind = "max_runtime"
limit = "6h"

[[policies]]
name = "cap"
kind = "max_job_cost"
limit_usd = 10.0

[[policies]]
name = "stalled"
kind = "stalled"
limit = "1h"

[[policies]]
name = "budget"
kind = "budget"
limit_usd = 100.0
group_by = "model"
"#,
            token.display()
        ),
    );
    let mut stored_max = 0;
    for round in 0..3 {
        for args in [&["sync"][..], &["run", "--once"][..]] {
            let started = Instant::now();
            let out = tokio::time::timeout(Duration::from_secs(240), env.run(args))
                .await
                .unwrap_or_else(|_| panic!("{args:?} did not terminate"));
            let err = stderr(&out);
            assert!(!err.contains("panicked"), "round {round} {args:?}: {err}");
            assert!(
                matches!(out.status.code(), Some(0..=2)),
                "round {round} {args:?}: {}\n{err}",
                out.status
            );
            assert!(started.elapsed() < Duration::from_secs(240));
        }
        let jobs = env.json(&["jobs", "--json"]).await;
        stored_max = stored_max.max(jobs.as_array().unwrap().len());
        // Everything stored reads back, and actions are well-formed.
        env.json(&["actions", "--json"]).await;
        env.json(&["spend", "--json", "--by", "model"]).await;
    }
    assert!(stored_max > 0, "nothing parsed from Prism's payloads");
    server.kill().await.ok();
}
