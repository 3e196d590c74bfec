//! Interop with the real Portkey gateway (`@portkey-ai/gateway@1.15.2` from npm): with provider
//! `openai` and `x-portkey-custom-host` pointing at the simulator, list with paging, retrieve,
//! events, file content and cancel all pass through it; with providers `vertex-ai` and
//! `bedrock` in front of stand-ins for them, the gateway's own mappings of their jobs are read
//! right and their runaways cancelled. The tests install the gateway with npm into the target
//! directory on first run.

use crate::common::*;
use std::time::Duration;

const GATEWAY: &str = "@portkey-ai/gateway@1.15.2";

fn gateway_package() -> std::path::PathBuf {
    npm_package("portkey-gateway-1.15.2", GATEWAY).join("@portkey-ai/gateway")
}

/// Starts the gateway from its package folder on a port of its own; killed when dropped.
async fn start_gateway(pkg: &std::path::Path) -> (tokio::process::Child, u16) {
    let fix = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/fetch-fix.mjs");
    let mut gateway = tokio::process::Command::new("node");
    gateway
        .arg("--import")
        .arg(fix)
        .arg("build/start-server.js")
        .arg("--port=0")
        .arg("--headless")
        .current_dir(pkg)
        .env("NODE_ENV", "production")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    spawn_on_port_zero(gateway, "the gateway", Duration::from_secs(30)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_passes_through_the_portkey_gateway() {
    let pkg = gateway_package();
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

    let (mut gateway, port) = start_gateway(&pkg).await;

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

/// A Vertex AI tuning job through the real gateway (provider `vertex-ai`, a wiremock standing in
/// for Vertex AI behind `x-portkey-custom-host`): the gateway's own mapping turns Google's
/// RFC 3339 times into milliseconds and passes its 64-bit counts on as strings. The runaway is
/// cancelled at its limit (Vertex AI answers a cancel with `{}`: confirmed by a retrieve) and
/// the finished job is stored with its times in seconds and its trained tokens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vertex_ai_job_through_the_gateway_is_timed_and_cancelled() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let pkg = gateway_package();
    let vertex = MockServer::start().await;
    let jobs = "/v1/projects/ft-project/locations/us-central1/tuningJobs";
    let rfc3339 = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let now = now();
    let tuning_job = |id: &str, state: &str, created: i64, ended: Option<i64>| {
        let mut j = json!({
            "name": format!("projects/ft-project/locations/us-central1/tuningJobs/{id}"),
            "state": state, "createTime": rfc3339(created), "baseModel": "gemini-2.0-flash-001",
            "supervisedTuningSpec": {"trainingDatasetUri": "gs://ft-bucket/train.jsonl",
                "hyperParameters": {"epochCount": "3", "learningRateMultiplier": 1.0}}
        });
        if let Some(e) = ended {
            j["endTime"] = json!(rfc3339(e));
            j["tuningDataStats"] =
                json!({"supervisedTuningDataStats": {"totalBillableTokenCount": "99000"}});
        }
        j
    };
    Mock::given(method("GET"))
        .and(path(jobs))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"tuningJobs": [
                tuning_job("6112", "JOB_STATE_RUNNING", now - 7 * H, None),
                tuning_job("6113", "JOB_STATE_RUNNING", now - 2 * H, None),
                tuning_job("5007", "JOB_STATE_SUCCEEDED", now - 30 * H, Some(now - 28 * H)),
            ]})),
        )
        .mount(&vertex)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("{jobs}/6112:cancel")))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(1)
        .mount(&vertex)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("{jobs}/6112")))
        .respond_with(ResponseTemplate::new(200).set_body_json(tuning_job(
            "6112",
            "JOB_STATE_CANCELLING",
            now - 7 * H,
            None,
        )))
        .mount(&vertex)
        .await;

    let (mut gateway, port) = start_gateway(&pkg).await;
    let env = Env::new();
    let token = env.dir.path().join("token");
    std::fs::write(&token, "ya29.google-access-token\n").unwrap();
    env.write_config(
        "",
        &format!(
            r#"
[[accounts]]
name = "vertex"
base_url = "http://127.0.0.1:{port}/v1"
provider = "vertex-ai"
bearer_token = {{ file = "{}" }}
headers = {{ "x-portkey-custom-host" = "{}", "x-portkey-vertex-project-id" = "ft-project", "x-portkey-vertex-region" = "us-central1" }}

[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"

[[policies]]
name = "stalled-45m"
kind = "stalled"
limit = "45m"
"#,
            token.display(),
            vertex.uri()
        ),
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled vertex 6112"), "{out}");

    let listed = env.json(&["jobs", "--json"]).await;
    let job = |id: &str| by_id(&listed, "id", id)[0].clone();
    assert_eq!(job("6112")["status"], "cancelled", "{listed:#}");
    assert_eq!(job("6112")["created_at"], now - 7 * H, "{listed:#}");
    assert_eq!(job("5007")["status"], "succeeded");
    assert_eq!(job("5007")["finished_at"], now - 28 * H);
    assert_eq!(job("5007")["trained_tokens"], 99_000);
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions.as_array().map(Vec::len), Some(1), "{actions:#}");
    assert_eq!(actions[0]["outcome"], "succeeded", "{actions:#}");
    // The gateway asked Vertex AI with the access token ftguard was given.
    let asked = vertex.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| r
            .headers
            .get("authorization")
            .is_some_and(|v| v == "Bearer ya29.google-access-token")),
        "{asked:?}"
    );
    // The gateway does not route a Vertex AI job's `/events` (its own 500 "Something went
    // wrong" here; 404 "Unknown request URL" without credentials): the `stalled` policy does
    // not judge 6113 on no evidence, and its events, refused once, are not asked for (nor
    // warned about) at the next sync.
    assert_eq!(job("6113")["status"], "running");
    let again = env.json(&["sync", "--json"]).await;
    assert_eq!(again[0]["summary"]["warnings"], json!([]), "{again:#}");
    assert_eq!(again[0]["summary"]["events_checked"], 0, "{again:#}");
    let refused = sqlite3(&env.db(), "SELECT job_id FROM events_failures");
    assert!(refused.lines().any(|l| l == "6113"), "{refused}");
    gateway.kill().await.ok();
}

/// A Bedrock customization job through the real gateway (provider `bedrock`, a wiremock standing
/// in for Bedrock): the gateway names the job `encodeURIComponent(jobArn)` and builds Bedrock's
/// URL from the path as it arrives, so the cancel reaches Bedrock's `stop` of that job only if
/// ftguard sends the id as it came; its times come in milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bedrock_job_through_the_gateway_is_cancelled_by_its_arn() {
    use serde_json::json;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    let pkg = gateway_package();
    let bedrock = MockServer::start().await;
    let arn = "arn:aws:bedrock:us-east-1:123456789012:model-customization-job/amazon.titan-text-lite-v1:0:4k/abc123";
    let id = arn.replace(':', "%3A").replace('/', "%2F");
    let now = now();
    let created = chrono::DateTime::from_timestamp(now - 7 * H, 0)
        .unwrap()
        .to_rfc3339();
    let job = |status: &str| {
        json!({"jobArn": arn, "jobName": "runaway", "status": status, "creationTime": created,
               "baseModelArn": "arn:aws:bedrock:us-east-1::foundation-model/amazon.titan-text-lite-v1:0:4k",
               "customModelName": "titan-runaway", "customizationType": "FINE_TUNING",
               "hyperParameters": {"epochCount": "2", "batchSize": "1", "learningRate": "0.00001"}})
    };
    Mock::given(method("GET"))
        .and(path("/model-customization-jobs"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"modelCustomizationJobSummaries": [job("InProgress")]})),
        )
        .mount(&bedrock)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/model-customization-jobs/{id}/stop")))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&bedrock)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/model-customization-jobs/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("Stopping")))
        .mount(&bedrock)
        .await;

    let (mut gateway, port) = start_gateway(&pkg).await;
    // The AWS keys the gateway signs with, by reference like every secret.
    let env = Env::new()
        .env("FT_TEST_AWS_KEY_ID", "AKIDEXAMPLE")
        .env("FT_TEST_AWS_SECRET", "not-a-real-secret");
    env.write_config(
        "",
        &format!(
            r#"
[[accounts]]
name = "bedrock"
base_url = "http://127.0.0.1:{port}/v1"
provider = "bedrock"

[accounts.headers]
x-portkey-custom-host = "{}"
x-portkey-aws-region = "us-east-1"
x-portkey-aws-access-key-id = {{ env = "FT_TEST_AWS_KEY_ID" }}
x-portkey-aws-secret-access-key = {{ env = "FT_TEST_AWS_SECRET" }}

[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"
"#,
            bedrock.uri()
        ),
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains(&format!("cancelled bedrock {id}")), "{out}");
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions.as_array().map(Vec::len), Some(1), "{actions:#}");
    assert_eq!(actions[0]["outcome"], "succeeded", "{actions:#}");
    let listed = env.json(&["jobs", "--json"]).await;
    assert_eq!(listed[0]["created_at"], now - 7 * H, "{listed:#}");
    // The gateway signed Bedrock's requests with the key it was given.
    let asked = bedrock.received_requests().await.unwrap();
    assert!(
        asked.iter().all(|r| r
            .headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("Credential=AKIDEXAMPLE/"))),
        "{asked:?}"
    );
    gateway.kill().await.ok();
}

/// Training-quality policies through the gateway (OpenAI route): events paged with `after`
/// and checkpoints pass through; the plateau and the divergence are cancelled once each with
/// the right checkpoint named, the converging job left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loss_policies_work_through_the_portkey_gateway() {
    let pkg = gateway_package();
    let sim = Sim::start(crate::training::curve_jobs(now()))
        .await
        .unwrap();
    sim.require_header("authorization", "Bearer sk-through-portkey");
    let (mut gateway, port) = start_gateway(&pkg).await;
    let env = Env::new();
    let token = env.dir.path().join("token");
    std::fs::write(&token, "sk-through-portkey\n").unwrap();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"portkey\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\nprovider = \"openai\"\nbearer_token = {{ file = \"{}\" }}\nheaders = {{ \"x-portkey-custom-host\" = \"{}\" }}\n{}",
            token.display(),
            sim.base_url(),
            crate::training::POLICIES
        ),
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("best checkpoint ft:gpt-4o-mini-2024-07-18:sim::ftjob-plateau:ckpt-step-1000"),
        "{out}"
    );
    assert!(
        out.contains("best checkpoint ft:gpt-4o-mini-2024-07-18:sim::ftjob-diverge:ckpt-step-1000"),
        "{out}"
    );
    assert_eq!(sim.cancel_requests("ftjob-plateau"), 1);
    assert_eq!(sim.cancel_requests("ftjob-diverge"), 1);
    assert_eq!(sim.cancel_requests("ftjob-converge"), 0);
    let reqs = sim.requests();
    assert!(
        reqs.iter()
            .any(|r| r.path.ends_with("/events") && r.query.contains("after=ftevent-")),
        "events paged through the gateway"
    );
    assert!(
        reqs.iter().any(|r| r.path.ends_with("/checkpoints")),
        "checkpoints through the gateway"
    );
    // Steady state through the gateway: one events request for the job still running.
    sim.clear_requests();
    sim.advance(2);
    env.ok(&["run", "--once"]).await;
    let events: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].path.contains("ftjob-converge"));
    gateway.kill().await.ok();
}
