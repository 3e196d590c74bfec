//! Interop with the real Portkey gateway (`@portkey-ai/gateway@1.15.2` from npm, provider
//! `openai`, `x-portkey-custom-host` pointing at the simulator): list with paging, retrieve,
//! events, file content and cancel all pass through it. The test installs the gateway with npm
//! into the target directory on first run.

mod common;
use common::*;
use std::time::Duration;

const GATEWAY: &str = "@portkey-ai/gateway@1.15.2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_passes_through_the_portkey_gateway() {
    let pkg = npm_package("portkey-gateway-1.15.2", GATEWAY).join("@portkey-ai/gateway");
    let now = now();
    let mut jobs: Vec<SimJob> = (0..247)
        .map(|i| SimJob::in_status(&format!("ftjob-old-{i:03}"), "succeeded", 20 * H + i, now))
        .collect();
    jobs.push(SimJob::in_status("ftjob-runaway", "running", 7 * H, now));
    jobs.push(
        SimJob::in_status("ftjob-pricey", "queued", 120, now).with_model("gpt-4o-2024-08-06"),
    );
    jobs.push(SimJob::in_status("ftjob-fine", "running", H, now));
    let sim = Sim::start(jobs).await.unwrap();
    let words = vec!["hello"; 700].join(" ");
    let line = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{words}\"}},{{\"role\":\"assistant\",\"content\":\"hello\"}}]}}\n"
    );
    sim.add_file("file-ftjob-pricey", line.repeat(300).into_bytes());
    sim.add_file("file-ftjob-fine", line.clone().into_bytes());
    sim.require_header("authorization", "Bearer sk-through-portkey");
    // The cancel of the runaway gets a 502 first: ftguard then retrieves it through the gateway.
    sim.fault(Endpoint::Cancel, Fault::Status(502));

    let port = free_port();
    let fix = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/fetch-fix.mjs");
    let mut gateway = tokio::process::Command::new("node")
        .arg("--import")
        .arg(fix)
        .arg("build/start-server.js")
        .arg(format!("--port={port}"))
        .arg("--headless")
        .current_dir(&pkg)
        .env("NODE_ENV", "production")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_port(port, "the gateway", Duration::from_secs(30)).await;

    let env = Env::new();
    let token = env.dir.path().join("token");
    std::fs::write(&token, "sk-through-portkey\n").unwrap();
    env.write_config(
        "",
        &format!(
            r#"
[[accounts]]
name = "portkey"
base_url = "http://127.0.0.1:{port}/v1"
provider = "openai"
bearer_token = {{ file = "{}" }}
headers = {{ "x-portkey-custom-host" = "{}" }}
max_retry_after = "1s"

[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"

[[policies]]
name = "cap-10"
kind = "max_job_cost"
limit_usd = 10.0

[[policies]]
name = "stalled"
kind = "stalled"
limit = "30m"
"#,
            token.display(),
            sim.base_url()
        ),
    );
    let out = env.ok(&["sync"]).await;
    assert!(out.contains("250 jobs in 3 pages"), "{out}");
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled portkey ftjob-runaway"), "{out}");
    assert!(
        out.contains("cancelled portkey ftjob-pricey: projected $"),
        "{out}"
    );

    let reqs = sim.requests();
    let seen = |pred: &dyn Fn(&ftguard::sim::Request) -> bool| reqs.iter().any(pred);
    assert!(
        seen(&|r| r.path == "/fine_tuning/jobs" && r.query.contains("after=")),
        "paged list"
    );
    assert!(
        seen(&|r| r.method == "GET" && r.path == "/fine_tuning/jobs/ftjob-runaway"),
        "retrieve"
    );
    assert!(seen(&|r| r.path.ends_with("/events")), "events");
    assert!(
        seen(&|r| r.path == "/files/file-ftjob-pricey/content"),
        "file content"
    );
    assert_eq!(sim.status("ftjob-runaway").as_deref(), Some("cancelled"));
    assert_eq!(sim.status("ftjob-pricey").as_deref(), Some("cancelled"));
    assert_eq!(sim.cancel_requests("ftjob-fine"), 0);

    let actions = env.json(&["actions", "--json"]).await;
    let runaway = by_id(&actions, "job_id", "ftjob-runaway");
    let ok: Vec<_> = runaway
        .iter()
        .filter(|a| a["outcome"] == "succeeded")
        .collect();
    assert_eq!(ok.len(), 1, "{actions:#}");
    let api = sim.job_json("ftjob-runaway").unwrap();
    assert_eq!(ok[0]["response_trained_tokens"], api["trained_tokens"]);
    assert_eq!(ok[0]["response_finished_at"], api["finished_at"]);
    gateway.kill().await.ok();
}
