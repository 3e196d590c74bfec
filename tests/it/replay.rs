//! `ftguard replay`: the real binary over a history synced from the simulator, then read with
//! no credentials and no API.

use crate::common::*;

/// Two finished jobs created 30 h ago, one that trained 2 h and one 8 h (100 tokens a second:
/// 720,000 and 2,880,000 gpt-4o-mini tokens, $2.16 and $8.64), and one running on a model the
/// allow-list leaves out. Synced once; then the account's key is a reference to nothing and the
/// simulator is told to refuse everything: replay needs neither.
async fn history() -> (Sim, Env, i64) {
    let now = now();
    let sim = Sim::start(vec![
        SimJob::timeline("ftjob-two", 30 * H, now, 0, 0, 2 * H),
        SimJob::timeline("ftjob-eight", 30 * H, now, 0, 0, 8 * H),
        SimJob::in_status("ftjob-odd", "running", H, now).with_model("babbage-002"),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    env.ok(&["sync"]).await;
    let created = now - 30 * H;
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"sim\"\nbase_url = \"{}\"\nbearer_token = {{ env = \"FTGUARD_TEST_NO_SUCH_KEY\" }}\n\n{POLICIES}",
            sim.base_url()
        ),
    );
    sim.clear_requests();
    (sim, env, created)
}

const POLICIES: &str = "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o*\"]\n\n[[policies]]\nname = \"stall\"\nkind = \"stalled\"\nlimit = \"30m\"\n";

fn policy<'a>(r: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    r["policies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no policy {name} in {r:#}"))
}

fn stops(p: &serde_json::Value) -> Vec<(String, i64, f64)> {
    p["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["job_id"].as_str().unwrap().to_owned(),
                j["at"].as_i64().unwrap(),
                j["saved_usd"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn replay_says_what_the_policies_would_have_stopped_and_saved_from_the_database_alone() {
    let (sim, env, created) = history().await;
    let r = env.json(&["replay", "--since", "7d", "--json"]).await;
    assert_eq!(r["jobs"], 3);
    // 6 h limit: the 8 h job, crossed 6 h + 1 s after creation; it trained from its creation
    // (first seen finished), so (8h - 6h - 1s) / 8h of its $8.64 is saved: $2.1597.
    let rt = policy(&r, "rt");
    assert_eq!(
        stops(rt),
        [("ftjob-eight".to_owned(), created + 6 * H + 1, 2.1597)]
    );
    assert_eq!(rt["jobs"][0]["reason"], "ran 6h00m > 6h");
    assert_eq!(rt["jobs"][0]["actual_status"], "succeeded");
    assert_eq!(rt["jobs"][0]["actual_cost_usd"], 8.64);
    assert_eq!(rt["kind"], "max_runtime");
    assert_eq!(rt["action"], "cancel");
    // The model outside the list: at its creation. Still running, cost not known yet.
    let models = policy(&r, "models");
    assert_eq!(models["jobs_count"], 1);
    assert_eq!(models["jobs"][0]["job_id"], "ftjob-odd");
    assert_eq!(
        models["jobs"][0]["actual_cost_usd"],
        serde_json::Value::Null
    );
    // Step times are not stored along a job's life: not judged, and said so.
    let stall = policy(&r, "stall");
    assert_eq!(stall["jobs_count"], 0);
    assert_eq!(stall["not_judged"][0]["jobs"], 3);
    assert_eq!(r["saved_usd"], 2.1597);
    // The readable report: the saving, the job, the total.
    let text = env.ok(&["replay", "--since", "7d"]).await;
    assert!(
        text.contains("[rt] max_runtime, cancel: would have acted on 1 job, saved $2.16"),
        "{text}"
    );
    assert!(text.contains("ftjob-eight"), "{text}");
    assert!(text.contains("not judged: 3 jobs"), "{text}");
    assert!(
        text.contains("total: the policies would have acted on 2 jobs and saved $2.16"),
        "{text}"
    );
    // Nothing sent, nothing recorded.
    assert!(sim.requests().is_empty(), "{:?}", sim.requests());
    assert_eq!(
        sqlite3(&env.db(), "SELECT COUNT(*) FROM actions").trim(),
        "0"
    );
    // A window that starts after the jobs: nothing to replay.
    let r = env.json(&["replay", "--since", "30m", "--json"]).await;
    assert_eq!(r["jobs"], 0);
    assert_eq!(r["saved_usd"], 0.0);
}

#[tokio::test]
async fn a_candidate_policies_file_is_replayed_instead_of_the_configuration() {
    let (_sim, env, created) = history().await;
    let candidate = env.dir.path().join("candidate.toml");
    std::fs::write(
        &candidate,
        "[[policies]]\nname = \"tight\"\nkind = \"max_runtime\"\nlimit = \"1h\"\n",
    )
    .unwrap();
    let r = env
        .json(&[
            "replay",
            "--policies",
            candidate.to_str().unwrap(),
            "--json",
        ])
        .await;
    let names: Vec<&str> = r["policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["tight"], "only the candidate's policies");
    // 1 h + 1 s into 2 h and 8 h of training: $2.16 x 3599/7200 and $8.64 x 25199/28800.
    // (The running job, an hour old, may have crossed by now: checked below.)
    let mut got = stops(policy(&r, "tight"));
    got.retain(|s| s.0 != "ftjob-odd");
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        [
            ("ftjob-eight".to_owned(), created + H + 1, 7.5597),
            ("ftjob-two".to_owned(), created + H + 1, 1.0797),
        ]
    );
    // The running job: an hour old, crossed just now or not yet (never a saving it has not
    // earned: its cost is unknown).
    assert!(
        policy(&r, "tight")["jobs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["job_id"] != "ftjob-odd" || j["saved_usd"] == 0.0)
    );
}

#[tokio::test]
async fn a_bad_policies_file_is_named_like_config_check_names_it() {
    let (_sim, env, _) = history().await;
    let bad = env.dir.path().join("bad.toml");
    for (text, expect) in [
        (
            "[[policies]]\nname = \"x\"\nkind = \"max_runtim\"\nlimit = \"1h\"\n",
            vec![
                "bad.toml",
                "policies[0] (\"x\")",
                "unknown kind \"max_runtim\"",
            ],
        ),
        (
            "[[policies]]\nname = \"x\"\nkind = \"max_runtime\"\nlimt = \"1h\"\n",
            vec!["bad.toml", "limt"],
        ),
        ("[[accounts]]\nname = \"y\"\n", vec!["bad.toml", "accounts"]),
        ("# nothing\n", vec!["bad.toml", "no [[policies]] to replay"]),
    ] {
        std::fs::write(&bad, text).unwrap();
        let out = env
            .run(&["replay", "--policies", bad.to_str().unwrap()])
            .await;
        assert!(!out.status.success(), "{text}");
        let err = stderr(&out);
        for e in expect {
            assert!(err.contains(e), "{text}: {e:?} not in {err}");
        }
    }
    let out = env.run(&["replay", "--policies", "nowhere.toml"]).await;
    assert!(stderr(&out).contains("nowhere.toml"), "{}", stderr(&out));
    let out = env.run(&["replay", "--since", "last tuesday"]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--since"), "{}", stderr(&out));
}

#[tokio::test]
async fn plan_and_replay_give_the_same_reason_for_the_same_job() {
    let (_sim, env, _) = history().await;
    let plan = env.json(&["plan", "--offline", "--json"]).await;
    let planned = by_id(&plan, "job_id", "ftjob-odd");
    let planned: Vec<&serde_json::Value> = planned
        .into_iter()
        .filter(|d| d["policy"] == "models")
        .collect();
    assert_eq!(planned.len(), 1, "{plan:#}");
    let r = env.json(&["replay", "--json"]).await;
    let replayed = &policy(&r, "models")["jobs"][0];
    assert_eq!(replayed["job_id"], "ftjob-odd");
    assert_eq!(replayed["reason"], planned[0]["reason"]);
}
