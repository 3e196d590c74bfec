//! `run --once`, `plan` and dry-run as a user runs them: exactly the offending jobs are
//! cancelled, once, and the API's answer is recorded.

use crate::common::*;

const POLICIES: &str = r#"
[[policies]]
name = "runtime-6h"
kind = "max_runtime"
limit = "6h"
match = { models = ["gpt-4o-mini*"] }
exempt = { metadata = { ftguard = "exempt" } }

[[policies]]
name = "queue-2h"
kind = "max_queue_time"
limit = "2h"
"#;

fn scenario(now: i64) -> Vec<SimJob> {
    vec![
        SimJob::in_status("ftjob-over-runtime", "running", 7 * H, now),
        SimJob::in_status("ftjob-stuck-queue", "queued", 3 * H, now),
        SimJob::in_status("ftjob-finished", "succeeded", 9 * H, now),
        SimJob::in_status("ftjob-exempt", "running", 9 * H, now).with_metadata("ftguard", "exempt"),
        SimJob::in_status("ftjob-other-model", "running", 9 * H, now)
            .with_model("gpt-4.1-2025-04-14"),
        SimJob::in_status("ftjob-young", "running", H, now),
    ]
}

#[tokio::test]
async fn cancels_exactly_the_offenders_once_and_records_the_answer() {
    let sim = Sim::start(scenario(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);

    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("cancelled sim ftjob-over-runtime"), "{out}");
    assert!(out.contains("cancelled sim ftjob-stuck-queue"), "{out}");
    for id in ["ftjob-over-runtime", "ftjob-stuck-queue"] {
        assert_eq!(sim.cancel_requests(id), 1, "{id}");
        assert_eq!(sim.status(id).as_deref(), Some("cancelled"));
    }
    for id in [
        "ftjob-finished",
        "ftjob-exempt",
        "ftjob-other-model",
        "ftjob-young",
    ] {
        assert_eq!(sim.cancel_requests(id), 0, "{id} must not be touched");
    }

    // A second pass sends nothing.
    env.ok(&["run", "--once"]).await;
    let cancels = sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/cancel"))
        .count();
    assert_eq!(cancels, 2);

    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions.as_array().unwrap().len(), 2, "{actions:#}");
    let jobs = env.json(&["jobs", "--json"]).await;
    for id in ["ftjob-over-runtime", "ftjob-stuck-queue"] {
        let a = by_id(&actions, "job_id", id)[0];
        let j = by_id(&jobs, "id", id)[0];
        assert_eq!(a["outcome"], "succeeded");
        assert_eq!(a["action"], "cancel");
        assert_eq!(a["http_status"], 200);
        assert_eq!(a["attempts"], 1);
        assert_eq!(a["response_status"], "cancelled");
        assert!(a["response_finished_at"].is_i64(), "{a}");
        assert_eq!(a["response_trained_tokens"], j["trained_tokens"]);
        assert_eq!(a["response_finished_at"], j["finished_at"]);
        assert_eq!(j["status"], "cancelled");
        for key in [
            "id",
            "account",
            "policy",
            "reason",
            "requested_at",
            "completed_at",
            "response_trained_tokens",
            "error",
        ] {
            assert!(a.get(key).is_some(), "actions --json lacks {key}");
        }
    }
    let runaway = by_id(&actions, "job_id", "ftjob-over-runtime")[0];
    assert_eq!(runaway["policy"], "runtime-6h");
    assert!(
        runaway["reason"].as_str().unwrap().starts_with("ran 7h"),
        "{runaway}"
    );
    assert!(runaway["response_trained_tokens"].as_i64().unwrap() > 0);
    let queued = by_id(&actions, "job_id", "ftjob-stuck-queue")[0];
    assert_eq!(
        queued["response_trained_tokens"], 0,
        "cancelled before it trained"
    );
}

#[tokio::test]
async fn plan_and_dry_run_send_nothing() {
    let sim = Sim::start(scenario(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);

    let plan = env.json(&["plan", "--json"]).await;
    let ids: Vec<&str> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["job_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{plan:#}");
    assert!(ids.contains(&"ftjob-over-runtime") && ids.contains(&"ftjob-stuck-queue"));
    let text = env.ok(&["plan", "--offline"]).await;
    assert!(
        text.contains("would cancel") && text.contains("ran 7h"),
        "{text}"
    );

    env.sim_config(&sim, "dry_run = true", POLICIES);
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("would cancel"), "{out}");
    env.ok(&["run", "--once"]).await;
    assert_eq!(
        sim.requests().iter().filter(|r| r.method == "POST").count(),
        0
    );
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(
        actions.as_array().unwrap().len(),
        2,
        "dry-run recorded once per job: {actions:#}"
    );
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["outcome"] == "dry_run")
    );

    // Per-policy dry_run too.
    let env2 = Env::new();
    env2.sim_config(
        &sim,
        "",
        &POLICIES
            .replace("limit = \"6h\"", "limit = \"6h\"\ndry_run = true")
            .replace("limit = \"2h\"", "limit = \"2h\"\ndry_run = true"),
    );
    env2.ok(&["run", "--once"]).await;
    assert_eq!(
        sim.requests().iter().filter(|r| r.method == "POST").count(),
        0
    );
}

#[tokio::test]
async fn manual_cancel_goes_through_the_same_path() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-m", "running", 60, now())])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    env.ok(&["sync"]).await;
    let out = env
        .ok(&["cancel", "ftjob-m", "--reason", "wrong dataset"])
        .await;
    assert!(out.contains("cancelled"), "{out}");
    let a = env.json(&["actions", "--json", "--job", "ftjob-m"]).await;
    assert_eq!(a[0]["policy"], "manual");
    assert_eq!(a[0]["reason"], "wrong dataset");
    assert_eq!(a[0]["response_status"], "cancelled");
    // Again: refused by the store, nothing sent.
    let out = env.ok(&["cancel", "ftjob-m", "--reason", "again"]).await;
    assert!(out.contains("nothing sent"), "{out}");
    // For scripts: the same, as JSON naming the cancel that stands.
    let v = env
        .json(&["cancel", "ftjob-m", "--reason", "again", "--json"])
        .await;
    assert_eq!(v["sent"], false, "{v:#}");
    assert_eq!(v["action"]["id"], a[0]["id"], "{v:#}");
    assert_eq!(v["action"]["outcome"], "succeeded", "{v:#}");
    assert_eq!(sim.cancel_requests("ftjob-m"), 1);

    // The provider lists the job running again, eleven minutes after it accepted the cancel:
    // a cancel by hand says the first did not take (exit 1), and sends nothing.
    sim.set_status("ftjob-m", "running");
    env.ok(&["sync"]).await;
    sqlite3(
        &env.db(),
        "UPDATE actions SET requested_at = requested_at - 660, completed_at = completed_at - 660",
    );
    let out = env
        .run(&["cancel", "ftjob-m", "--reason", "still going", "--json"])
        .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["sent"], false, "{v:#}");
    assert_eq!(v["action"]["outcome"], "notified", "{v:#}");
    let reason = v["action"]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("still active 11m"), "{v:#}");
    assert_eq!(sim.cancel_requests("ftjob-m"), 1);

    // A cancel sent with --json reports the action it recorded, with the API's answer.
    let sim2 = Sim::start(vec![SimJob::in_status("ftjob-j", "running", 60, now())])
        .await
        .unwrap();
    let env2 = Env::new();
    env2.sim_config(&sim2, "", "");
    let v = env2
        .json(&["cancel", "ftjob-j", "--reason", "scripted", "--json"])
        .await;
    assert_eq!(v["sent"], true, "{v:#}");
    assert_eq!(v["action"]["job_id"], "ftjob-j");
    assert_eq!(v["action"]["reason"], "scripted");
    assert_eq!(v["action"]["response_status"], "cancelled");
    assert_eq!(sim2.cancel_requests("ftjob-j"), 1);
    let bad = env
        .run(&["cancel", "ftjob-m", "--account", "nope", "--reason", "x"])
        .await;
    assert!(
        !bad.status.success() && stderr(&bad).contains("unknown account \"nope\""),
        "{}",
        stderr(&bad)
    );
}

#[tokio::test]
async fn run_once_evaluates_scheduled_policies_too() {
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-m", "queued", 60, now()).with_model("gpt-4.1-2025-04-14"),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o*\"]\nschedule = \"0 0 3 * * *\"\n");
    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("cancelled sim ftjob-m: model gpt-4.1-2025-04-14 is not in [gpt-4o*]"),
        "{out}"
    );
}

#[tokio::test]
async fn run_once_json_reports_the_syncs_and_what_was_done() {
    let sim = Sim::start(scenario(now())).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    let out = env.json(&["run", "--once", "--json"]).await;
    assert_eq!(out["syncs"][0]["account"], "sim", "{out:#}");
    assert_eq!(out["syncs"][0]["ok"], true);
    assert_eq!(out["syncs"][0]["summary"]["new"], 6);
    assert_eq!(out["cancelled"], 2, "{out:#}");
    assert_eq!(out["failed"], 0);
    let lines = out["lines"].as_array().unwrap();
    assert_eq!(lines.len(), 2, "{out:#}");
    assert!(
        lines.iter().any(|l| l
            .as_str()
            .unwrap()
            .contains("cancelled sim ftjob-stuck-queue")),
        "{out:#}"
    );
    // --json is for --once: the daemon prints nothing to parse.
    let bad = env.run(&["run", "--json"]).await;
    assert!(!bad.status.success() && stderr(&bad).contains("--once"));
}

/// A job the provider lists as running after it accepted the cancel: `plan` says the cancel was
/// accepted and is not sent again, instead of "would cancel"; `run --once` says it did not take
/// once ten minutes have passed, and sends nothing.
#[tokio::test]
async fn plan_and_run_name_a_cancel_that_did_not_take() {
    let sim = Sim::start(vec![SimJob::in_status(
        "ftjob-over-runtime",
        "running",
        7 * H,
        now(),
    )])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", POLICIES);
    env.ok(&["run", "--once"]).await;
    sim.set_status("ftjob-over-runtime", "running");

    let plan = env.json(&["plan", "--json"]).await;
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(plan[0]["action"], "cancel", "{plan:#}");
    assert_eq!(
        plan[0]["already_done"]["action_id"], actions[0]["id"],
        "{plan:#}"
    );
    let out = env.ok(&["plan", "--offline"]).await;
    assert!(
        out.contains("not sent again") && !out.contains("would cancel"),
        "{out}"
    );

    let out = env.ok(&["run", "--once"]).await;
    assert!(!out.contains("did not take"), "too soon: {out}");
    sqlite3(
        &env.db(),
        "UPDATE actions SET requested_at = requested_at - 660, completed_at = completed_at - 660",
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("cancel did not take sim ftjob-over-runtime"),
        "{out}"
    );
    assert_eq!(sim.cancel_requests("ftjob-over-runtime"), 1);
}

/// A pause the API refused, with `fallback = "notify"`: notified once, never sent again, and
/// `plan` says so instead of "would pause".
#[tokio::test]
async fn a_refused_pause_is_notified_once_and_plan_says_so() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-q", "queued", 3 * H, now())])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"q\"\nkind = \"max_queue_time\"\nlimit = \"1h\"\naction = \"pause\"\nfallback = \"notify\"\n",
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("pause refused"), "{out}");
    let plan = env.json(&["plan", "--json"]).await;
    assert_eq!(plan[0]["action"], "pause", "{plan:#}");
    let what = plan[0]["already_done"]["what"].as_str().unwrap_or_default();
    assert!(what.contains("pause was refused"), "{plan:#}");
    let out = env.ok(&["plan", "--offline"]).await;
    assert!(
        out.contains("pause was refused") && !out.contains("would pause"),
        "{out}"
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(!out.contains("pause refused"), "{out}");
    let posts = sim.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
}
