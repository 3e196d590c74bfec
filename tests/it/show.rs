//! `ftguard show` and `ftguard plan --upcoming` answer a job owner's question — when will
//! ftguard act on my job, and why — from the same rules the passes and the deadline timer use.

use crate::common::*;

#[tokio::test]
async fn show_says_where_a_job_stands_with_each_policy() {
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-young", "running", 5 * H, now),
        SimJob::in_status("ftjob-old", "running", 7 * H, now),
        SimJob::in_status("ftjob-vip", "running", 7 * H, now).with_metadata("ftguard", "exempt"),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\ngrace = \"15m\"\n\
         exempt = { metadata = { ftguard = \"exempt\" } }\n\n\
         [[policies]]\nname = \"big-models\"\nkind = \"max_runtime\"\nlimit = \"1h\"\n\
         match = { models = [\"gpt-4.1*\"] }\n\n\
         [[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 100.0\n",
    );
    env.ok(&["sync"]).await;

    // Compliant now: the moment the limit is reached, and what follows.
    let young = env.json(&["show", "ftjob-young", "--json"]).await;
    let created = young["created_at"].as_i64().unwrap();
    let rt = &young["policies"][0];
    assert_eq!(
        (
            rt["policy"].as_str(),
            rt["standing"].as_str(),
            rt["at"].as_i64()
        ),
        (Some("rt"), Some("due"), Some(created + 6 * H + 1)),
        "{young}"
    );
    assert_eq!(young["policies"][1]["standing"], "not_matched");
    assert_eq!(young["policies"][2]["standing"], "group");
    let text = env.ok(&["show", "ftjob-young"]).await;
    assert!(
        squeeze(&text).contains(" rt reaches the limit at ")
            // 5h in: an hour to go (and the second a limit is crossed after), give or take
            // the test's own second.
            && (text.contains("(in 1h00m)") || text.contains("(in 59m"))
            && text.contains("then warn, cancel 15m later if still over"),
        "{text}"
    );

    // Over the limit: warned at the next pass, then in grace until a known time.
    let text = env.ok(&["show", "ftjob-old"]).await;
    assert!(
        squeeze(&text).contains(
            " rt breaks it: ran 7h00m > 6h — warn at the next pass, cancel 15m later if still over"
        ),
        "{text}"
    );
    env.ok(&["run", "--once"]).await;
    let old = env.json(&["show", "ftjob-old", "--json"]).await;
    let rt = &old["policies"][0];
    assert_eq!(rt["standing"], "in_grace", "{old}");
    let warned_at = old["actions"][0]["requested_at"].as_i64().unwrap();
    assert_eq!(rt["until"].as_i64(), Some(warned_at + 15 * 60), "{old}");

    // Exempt, and nothing for a finished job.
    let vip = env.json(&["show", "ftjob-vip", "--json"]).await;
    assert_eq!(vip["policies"][0]["standing"], "exempt", "{vip}");
    sim.set_status("ftjob-young", "succeeded");
    env.ok(&["sync"]).await;
    let done = env.json(&["show", "ftjob-young", "--json"]).await;
    assert_eq!(done["policies"], serde_json::json!([]), "{done}");
    assert!(
        env.ok(&["show", "ftjob-young"])
            .await
            .contains("none act on a finished job")
    );
}

#[tokio::test]
async fn plan_upcoming_lists_what_comes_due_within_the_horizon() {
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-soon", "running", 5 * H, now),
        SimJob::in_status("ftjob-later", "running", H, now),
        SimJob::in_status("ftjob-over", "running", 7 * H, now),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n\
         [[policies]]\nname = \"nightly\"\nkind = \"max_runtime\"\nlimit = \"5h30m\"\n\
         schedule = \"0 0 2 * * *\"\n",
    );
    env.ok(&["sync"]).await;
    let plan = env
        .json(&["plan", "--offline", "--upcoming", "2h", "--json"])
        .await;
    let entries = plan.as_array().unwrap();
    let upcoming: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["action"] == "upcoming" && e["policy"] == "rt")
        .collect();
    assert_eq!(upcoming.len(), 1, "{plan}");
    // A policy on its own cron acts at its next run after the limit: the entry says which.
    let nightly: Vec<&serde_json::Value> = entries
        .iter()
        .filter(|e| e["action"] == "upcoming" && e["policy"] == "nightly")
        .collect();
    assert_eq!(nightly.len(), 1, "{plan}");
    assert_eq!(nightly[0]["job_id"], "ftjob-soon");
    assert_eq!(nightly[0]["schedule"], "0 0 2 * * *");
    assert_eq!(upcoming[0]["schedule"], serde_json::Value::Null);
    let soon = env.json(&["show", "ftjob-soon", "--json"]).await;
    assert_eq!(upcoming[0]["job_id"], "ftjob-soon");
    assert_eq!(upcoming[0]["then"], "cancel");
    assert_eq!(
        upcoming[0]["at"].as_i64(),
        Some(soon["created_at"].as_i64().unwrap() + 6 * H + 1)
    );
    // The job over its limit is a decision now, not something coming up.
    assert!(
        entries
            .iter()
            .any(|e| e["job_id"] == "ftjob-over" && e["action"] == "cancel"),
        "{plan}"
    );
    // A longer horizon takes in the later job; without the flag, nothing of the kind.
    let text = env.ok(&["plan", "--offline", "--upcoming", "6h"]).await;
    assert!(
        text.contains("coming up within 6h (if nothing changes):"),
        "{text}"
    );
    assert!(
        squeeze(&text).contains("[nightly] then cancel, at its next scheduled pass (0 0 2 * * *)"),
        "{text}"
    );
    let soon_at = text.find("ftjob-soon").unwrap();
    let later_at = text.find("ftjob-later").unwrap();
    assert!(soon_at < later_at, "soonest first:\n{text}");
    let plain = env.json(&["plan", "--offline", "--json"]).await;
    assert!(
        plain
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["action"] != "upcoming"),
        "{plain}"
    );
}

/// A job still breaking policies already acted on: `show` names the action that stands for
/// each instead of promising another at the next pass — a notify policy notified once, a
/// pause policy's job paused already, a job whose cancel the API accepted.
#[tokio::test]
async fn show_names_what_already_stands_for_a_policy_a_job_breaks() {
    let sim = Sim::start(vec![SimJob::in_status(
        "ftjob-old",
        "running",
        7 * H,
        now(),
    )])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"tell\"\nkind = \"max_runtime\"\nlimit = \"2h\"\naction = \"notify\"\n\n\
         [[policies]]\nname = \"hold\"\nkind = \"max_runtime\"\nlimit = \"6h\"\naction = \"pause\"\n\n\
         [[policies]]\nname = \"stop\"\nkind = \"max_runtime\"\nlimit = \"12h\"\n",
    );
    env.ok(&["run", "--once"]).await;
    let shown = env.json(&["show", "ftjob-old", "--json"]).await;
    let actions = shown["actions"].as_array().unwrap();
    let notified = actions.iter().find(|a| a["policy"] == "tell").unwrap();
    let tell = &shown["policies"][0];
    assert_eq!(tell["standing"], "breaks", "{shown:#}");
    assert_eq!(
        tell["already_done"]["action_id"], notified["id"],
        "{shown:#}"
    );
    assert_eq!(shown["policies"][1]["standing"], "paused", "{shown:#}");
    assert!(
        shown["policies"][1].get("already_done").is_none(),
        "{shown:#}"
    );
    let text = env.ok(&["show", "ftjob-old"]).await;
    assert!(text.contains("notified already: said once"), "{text}");
    assert!(!text.contains("notify at the next pass"), "{text}");
    // `plan` agrees: nothing more would be done.
    let plan = env.json(&["plan", "--offline", "--json"]).await;
    let tell: Vec<_> = plan
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["policy"] == "tell")
        .collect();
    assert_eq!(tell.len(), 1, "{plan:#}");
    assert_eq!(
        tell[0]["already_done"]["action_id"], notified["id"],
        "{plan:#}"
    );
    let text = env.ok(&["plan", "--offline"]).await;
    assert!(!text.contains("would notify"), "{text}");

    // Cancelled by hand; the provider lists it running again: a cancel policy it breaks does
    // not cancel it again.
    env.ok(&["cancel", "ftjob-old", "--reason", "test"]).await;
    sim.set_status("ftjob-old", "running");
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"stop\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    env.ok(&["sync"]).await;
    let text = env.ok(&["show", "ftjob-old"]).await;
    assert!(
        text.contains("the API accepted its cancel: not sent again (#3)"),
        "{text}"
    );
}
