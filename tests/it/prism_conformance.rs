//! Spec conformance against Prism (`@stoplight/prism-cli`) serving the OpenAI spec in dynamic
//! mode: random valid payloads, `has_more` at random, ids with spaces. Every pass terminates,
//! never panics, and stores what it parsed. The test installs Prism with npm on first run.

use crate::common::*;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_and_enforcement_against_random_valid_payloads() {
    let prism = npm_package("prism-5", "@stoplight/prism-cli@5").join(".bin/prism");
    let mut command = tokio::process::Command::new(prism);
    command
        .args(["mock", "-d", "-h", "127.0.0.1", "-p", "0"])
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/openai-fine-tuning.yaml"
        ))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let (mut server, port) = spawn_on_port_zero(command, "Prism", Duration::from_secs(60)).await;
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
            // The bound is the assertion: a command that does not end within it fails here.
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
