//! Fault injection: every endpoint ftguard calls meets every kind of failure once. Whatever
//! happens, nothing panics, retries stay bounded, the offending job ends cancelled exactly once
//! with the API's final state recorded, and the job that breaks no policy is never touched.

use crate::common::*;
use std::time::Duration;

const POLICIES: &str = r#"
[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"

[[policies]]
name = "cap"
kind = "max_job_cost"
limit_usd = 1000.0

[[policies]]
name = "stalled"
kind = "stalled"
limit = "30m"
"#;

fn faults() -> Vec<(&'static str, Fault)> {
    vec![
        ("500", Fault::Status(500)),
        ("502", Fault::Status(502)),
        ("429", Fault::RateLimited(1)),
        ("reset", Fault::Reset),
        ("stall", Fault::Delay(Duration::from_secs(3))),
        ("truncated", Fault::Truncated),
        ("html", Fault::Html(502)),
        ("404", Fault::Status(404)),
    ]
}

async fn case(endpoint: Endpoint, name: &'static str, fault: Fault) -> Result<(), String> {
    let label = format!("{endpoint:?}/{name}");
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-offender", "running", 7 * H, now),
        SimJob::in_status("ftjob-fine", "running", H, now),
    ])
    .await
    .map_err(|e| e.to_string())?;
    sim.add_file(
        "file-ftjob-fine",
        b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n".to_vec(),
    );
    sim.fault(endpoint, fault);
    if endpoint == Endpoint::Retrieve {
        // A retrieve happens when a cancel got no usable answer: make one.
        sim.fault(Endpoint::Cancel, Fault::Status(502));
    }
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    for pass in 0..2 {
        let out = env.run(&["run", "--once"]).await;
        let err = stderr(&out);
        if err.contains("panicked") {
            return Err(format!("{label}: panic in pass {pass}: {err}"));
        }
        if out.status.code().is_none_or(|c| c > 2) {
            return Err(format!("{label}: pass {pass} exited {}: {err}", out.status));
        }
    }
    let reqs = sim.requests();
    // A fault on an endpoint nobody called would prove nothing.
    let called = reqs.iter().any(|r| {
        let p = r.path.as_str();
        match endpoint {
            Endpoint::List => p == "/fine_tuning/jobs",
            Endpoint::Retrieve => {
                r.method == "GET"
                    && p.starts_with("/fine_tuning/jobs/")
                    && p.matches('/').count() == 3
            }
            Endpoint::Events => p.ends_with("/events"),
            Endpoint::FileContent => p.ends_with("/content"),
            Endpoint::Cancel => p.ends_with("/cancel"),
            _ => true,
        }
    });
    if !called {
        return Err(format!("{label}: the faulted endpoint was never called"));
    }
    if reqs.len() > 60 {
        return Err(format!(
            "{label}: {} requests: retries are not bounded",
            reqs.len()
        ));
    }
    if sim.cancel_requests("ftjob-fine") != 0
        || sim.status("ftjob-fine").as_deref() != Some("running")
    {
        return Err(format!("{label}: the compliant job was touched"));
    }
    if sim.status("ftjob-offender").as_deref() != Some("cancelled") {
        return Err(format!(
            "{label}: the offender is {:?}",
            sim.status("ftjob-offender")
        ));
    }
    let actions = env
        .json(&["actions", "--json", "--job", "ftjob-offender"])
        .await;
    let ok: Vec<_> = actions
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["outcome"] == "succeeded")
        .collect();
    if ok.len() != 1 {
        return Err(format!(
            "{label}: {} successful cancels: {actions:#}",
            ok.len()
        ));
    }
    let jobs = env.json(&["jobs", "--json"]).await;
    let stored = by_id(&jobs, "id", "ftjob-offender")[0];
    let api = sim.job_json("ftjob-offender").ok_or("offender vanished")?;
    for f in ["status", "trained_tokens", "finished_at"] {
        if stored[f] != api[f] || ok[0][format!("response_{f}")] != api[f] {
            return Err(format!(
                "{label}: {f} recorded {} / {}, API says {}",
                stored[f],
                ok[0][format!("response_{f}")],
                api[f]
            ));
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_survives_every_fault() {
    let mut cases = Vec::new();
    for endpoint in [
        Endpoint::List,
        Endpoint::Retrieve,
        Endpoint::Events,
        Endpoint::FileContent,
        Endpoint::Cancel,
    ] {
        for (name, fault) in faults() {
            cases.push(case(endpoint, name, fault));
        }
    }
    let failures: Vec<String> = futures_util::future::join_all(cases)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[tokio::test]
async fn cancel_applied_but_answer_lost_is_recorded_once() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())])
        .await
        .unwrap();
    sim.fault(
        Endpoint::Cancel,
        Fault::ApplyThenDelay(Duration::from_secs(4)),
    );
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    env.ok(&["run", "--once"]).await;
    assert_eq!(
        sim.cancel_requests("ftjob-1"),
        1,
        "recognised as applied from the job's state; not sent again"
    );
    let a = env.json(&["actions", "--json"]).await;
    assert_eq!(a[0]["outcome"], "succeeded");
    assert_eq!(a[0]["response_status"], "cancelled");
}

#[tokio::test]
async fn one_account_failing_leaves_the_others_enforcing() {
    let now = now();
    let good = Sim::start(vec![SimJob::in_status("ftjob-g", "running", 7 * H, now)])
        .await
        .unwrap();
    let bad = Sim::start(vec![SimJob::in_status("ftjob-b", "running", 7 * H, now)])
        .await
        .unwrap();
    for _ in 0..10 {
        bad.fault(Endpoint::List, Fault::Status(503));
    }
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"good\"\nbase_url = \"{}\"\n\n[[accounts]]\nname = \"bad\"\nbase_url = \"{}\"\nmax_attempts = 2\n\n{POLICIES}",
            good.base_url(),
            bad.base_url()
        ),
    );
    let out = env.run(&["run", "--once"]).await;
    assert!(!stderr(&out).contains("panicked"));
    assert_eq!(good.status("ftjob-g").as_deref(), Some("cancelled"));
    assert_eq!(bad.cancel_requests("ftjob-b"), 0);
    assert!(
        stdout(&out).contains("bad: FAILED") && stdout(&out).contains("503"),
        "{}",
        stdout(&out)
    );
}
