//! Cost guardrails end to end: training files streamed and counted, projected costs, a per-job
//! cap that cancels before training, and a monthly budget that cancels newest first.

use crate::common::*;

/// A chat JSONL file whose billed tokens are known by construction: "hello" and " hello"
/// are one token each in o200k_base, so an example of a user message of `u` words and an
/// assistant message of `a` words bills (3 + 1 + u) + (3 + 1 + a) + 3 = 11 + u + a tokens.
fn training_file(examples: usize, u: usize, a: usize) -> (Vec<u8>, u64) {
    let words = |n: usize| vec!["hello"; n].join(" ");
    let line = format!(
        "{{\"messages\":[{{\"role\":\"user\",\"content\":\"{}\"}},{{\"role\":\"assistant\",\"content\":\"{}\"}}]}}\n",
        words(u),
        words(a)
    );
    (
        line.repeat(examples).into_bytes(),
        (examples * (11 + u + a)) as u64,
    )
}

fn dollars(v: &serde_json::Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[tokio::test]
async fn a_queued_job_over_its_cap_is_cancelled_before_it_trains() {
    let now = now();
    // gpt-4o-mini at $3/1M; 2000 examples -> auto epochs 3; 1000 tokens each: 6M tokens, $18.
    let (big, big_tokens) = training_file(2000, 700, 289);
    // 40 examples -> 3 epochs; 278 tokens each: 33,360 tokens, ~$0.10.
    let (small, small_tokens) = training_file(40, 200, 67);
    assert!(
        big.len() > 10_000_000,
        "a multi-megabyte file: {}",
        big.len()
    );
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-big", "queued", 120, now),
        SimJob::in_status("ftjob-small", "queued", 60, now),
    ])
    .await
    .unwrap();
    sim.add_file("file-ftjob-big", big);
    sim.add_file("file-ftjob-small", small);
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"cap-10\"\nkind = \"max_job_cost\"\nlimit_usd = 10.0\n",
    );

    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("cancelled sim ftjob-big: projected $18."),
        "{out}"
    );
    assert_eq!(sim.cancel_requests("ftjob-big"), 1);
    assert_eq!(sim.cancel_requests("ftjob-small"), 0);

    let actions = env.json(&["actions", "--json"]).await;
    let a = by_id(&actions, "job_id", "ftjob-big")[0];
    assert_eq!(
        a["response_trained_tokens"], 0,
        "cancelled before it trained"
    );
    assert!(
        a["reason"].as_str().unwrap().contains("> cap $10.00"),
        "{a}"
    );

    let jobs = env.json(&["jobs", "--json"]).await;
    let true_big = big_tokens as f64 * 3.0 * 3.0 / 1e6;
    let true_small = small_tokens as f64 * 3.0 * 3.0 / 1e6;
    let small = by_id(&jobs, "id", "ftjob-small")[0];
    let p_small = dollars(&small["projected_cost_usd"]);
    assert!(
        (p_small - true_small).abs() <= 0.1 * true_small,
        "{p_small} vs {true_small}"
    );
    assert!(small["cost_usd"].is_null(), "nothing trained yet");
    let big = by_id(&jobs, "id", "ftjob-big")[0];
    assert_eq!(big["status"], "cancelled");
    assert_eq!(
        dollars(&big["cost_usd"]),
        0.0,
        "cancelled while queued: nothing billed"
    );
    // The count is cached: a second pass downloads nothing.
    let downloads = |sim: &Sim| {
        sim.requests()
            .iter()
            .filter(|r| r.path.ends_with("/content"))
            .count()
    };
    let before = downloads(&sim);
    env.ok(&["run", "--once"]).await;
    assert_eq!(downloads(&sim), before);
    assert!((true_big - 18.0).abs() < 0.01);
}

#[tokio::test]
async fn counting_a_multi_megabyte_file_holds_one_line_at_a_time() {
    let (file, tokens) = training_file(3000, 700, 289);
    let sim = Sim::start(vec![]).await.unwrap();
    sim.add_file("file-x", file.clone());
    let env = Env::new();
    env.sim_config(&sim, "", "");
    let app = env.app().await;
    let report = ftguard::sync::training_files::count_file_report(
        &app.clients()[0],
        "file-x",
        ftguard::cost::tokens::Encoding::O200k,
        &mut ftguard::cost::tokens::Tokenizers::default(),
    )
    .await
    .unwrap();
    assert_eq!(report.tokens.examples, 3000);
    assert_eq!(report.tokens.tokens, tokens);
    assert_eq!(report.bytes, file.len() as u64);
    let line = file.iter().position(|b| *b == b'\n').unwrap();
    assert!(
        report.peak_buffer <= line,
        "buffered {} bytes; a line is {line}",
        report.peak_buffer
    );
}

#[tokio::test]
async fn a_monthly_budget_cancels_the_newest_job_only() {
    let now = now();
    // $90 spent this month: a finished gpt-4o-mini job that trained 30M tokens in 5 seconds.
    let mut spent = SimJob::in_status("ftjob-spent", "succeeded", 5, now);
    spent.tokens_per_sec = 6_000_000;
    let (small, _) = training_file(40, 200, 67);
    let (big, _) = training_file(2000, 700, 289);
    let sim = Sim::start(vec![
        spent,
        SimJob::in_status("ftjob-older-small", "running", 4, now),
        SimJob::in_status("ftjob-newer-big", "queued", 1, now),
    ])
    .await
    .unwrap();
    sim.add_file("file-ftjob-older-small", small);
    sim.add_file("file-ftjob-newer-big", big);
    let env = Env::new();
    env.sim_config(&sim, "", "[[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 100.0\nperiod = \"month\"\nwarn_at = [0.8]\n");

    let plan = env.ok(&["plan"]).await;
    assert!(
        squeeze(&plan).contains("would notify budget group all [monthly] group all reached 80%"),
        "{plan}"
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(
        out.contains("cancelled sim ftjob-newer-big: budget: $108."),
        "{out}"
    );
    assert_eq!(sim.cancel_requests("ftjob-newer-big"), 1);
    assert_eq!(sim.cancel_requests("ftjob-older-small"), 0);
    // The 80% threshold is a notice about the group, not an action on a job.
    let actions = env.json(&["actions", "--json"]).await;
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["account"] == "sim"),
        "{actions:#}"
    );
    let notices = || {
        sqlite3(
            &env.db(),
            "SELECT policy, grp, percent, reason FROM budget_notices",
        )
    };
    let first = notices();
    assert_eq!(first.lines().count(), 1, "{first}");
    assert!(
        first.starts_with("monthly|all|80|group all reached 80% of its $100.00 budget this month"),
        "{first}"
    );
    let plan = env.ok(&["plan", "--offline"]).await;
    assert!(!plan.contains("budget group"), "already notified: {plan}");
    env.ok(&["run", "--once"]).await;
    assert_eq!(notices(), first, "not again");

    let spend = env.json(&["spend", "--json"]).await;
    let g = &spend[0];
    assert_eq!(g["group"], "all");
    assert!((dollars(&g["spent_usd"]) - 90.0).abs() < 0.01, "{g}");
    assert!((dollars(&g["limit_usd"]) - 100.0).abs() < 1e-9);
    assert!(
        dollars(&g["remaining_usd"]) > 9.0 && dollars(&g["remaining_usd"]) < 10.0,
        "{g}"
    );
    assert_eq!(g["notified_percent"], serde_json::json!([80]), "{g}");
    let text = env.ok(&["spend"]).await;
    assert!(text.contains("  notified at 80%"), "{text}");
    let text = env.ok(&["spend", "--by", "account"]).await;
    assert!(text.contains("sim") && text.contains("$90."), "{text}");
    let bad = env.run(&["spend", "--by", "user"]).await;
    assert!(!bad.status.success() && stderr(&bad).contains("user"));
}

#[tokio::test]
async fn a_budget_blown_by_finished_jobs_is_said_once() {
    // $90 spent this month by a finished job; nothing active, so nothing to cancel.
    let mut spent = SimJob::in_status("ftjob-spent", "succeeded", 5, now());
    spent.tokens_per_sec = 6_000_000;
    let sim = Sim::start(vec![spent]).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "[[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 50.0\nperiod = \"month\"\n");
    let plan = env.ok(&["plan"]).await;
    assert!(
        squeeze(&plan).contains("[monthly] group all is over its $50.00 budget this month: $90.")
            && plan.contains("with no active job to act on"),
        "{plan}"
    );
    env.ok(&["run", "--once"]).await;
    env.ok(&["run", "--once"]).await;
    let notices = sqlite3(&env.db(), "SELECT policy, grp, percent FROM budget_notices");
    assert_eq!(notices.trim(), "monthly|all|100", "once per period");
    assert_eq!(
        sim.requests().iter().filter(|r| r.method == "POST").count(),
        0
    );
    let text = env.ok(&["spend"]).await;
    assert!(text.contains("  notified at 100%"), "{text}");
}

/// A finished gpt-4o-mini job ($3 per 1M trained tokens) created a second ago.
fn finished_job(id: &str, trained_tokens: i64) -> ftguard::model::Job {
    job_in(id, "succeeded", Some(trained_tokens))
}

fn job_in(id: &str, status: &str, trained_tokens: Option<i64>) -> ftguard::model::Job {
    let now = now();
    ftguard::provider::payload::parse_job(serde_json::json!({
        "object": "fine_tuning.job", "id": id, "model": "gpt-4o-mini-2024-07-18",
        "created_at": now - 1, "finished_at": trained_tokens.map(|_| now), "status": status,
        "trained_tokens": trained_tokens, "hyperparameters": {"n_epochs": 1}
    }))
    .unwrap()
}

fn total(spend: &std::collections::HashMap<String, ftguard::policy::GroupSpend>) -> f64 {
    spend["monthly"]
        .values()
        .map(|s| s.total().as_dollars())
        .sum()
}

#[tokio::test]
async fn finished_spend_is_kept_and_only_jobs_that_finished_since_are_added() {
    let sim = Sim::start(vec![]).await.unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 100.0\nperiod = \"month\"\n",
    );
    let app = env.app().await;
    let account = app.clients()[0].account().clone();
    let store = |job: ftguard::model::Job| {
        let (app, account) = (app.clone(), account.clone());
        async move {
            app.store()
                .upsert_jobs(&account, &[job], now())
                .await
                .unwrap()
        }
    };
    let spent = || {
        let app = app.clone();
        async move { total(&app.budget_spend(now()).await.unwrap()) }
    };
    store(finished_job("ftjob-a", 20_000_000)).await;
    assert!((spent().await - 60.0).abs() < 0.01);
    // A newer job (running: no cost known yet), so ftjob-a is not the newest row.
    store(job_in("ftjob-r", "running", None)).await;
    assert!((spent().await - 60.0).abs() < 0.01);

    // Deleted behind ftguard's back (no status transition, not the newest row): the kept
    // spend is still used, which shows passes and scrapes do not re-read finished jobs while
    // nothing changed.
    sqlite3(&env.db(), "DELETE FROM jobs WHERE id = 'ftjob-a'");
    assert!((spent().await - 60.0).abs() < 0.01);

    // Jobs stored finished, or finishing, are read and added on their own: the deleted
    // ftjob-a still counts because the period was not read again.
    store(finished_job("ftjob-b", 10_000_000)).await;
    assert!((spent().await - 90.0).abs() < 0.01);
    store(job_in("ftjob-c", "running", None)).await;
    assert!(
        (spent().await - 90.0).abs() < 0.01,
        "no cost known while running"
    );
    store(finished_job("ftjob-c", 5_000_000)).await;
    assert!((spent().await - 105.0).abs() < 0.01);

    // A finished job rewritten without a status change (trained tokens known late) counts the
    // period again: ftjob-b's $36 and ftjob-c's $15, and no more ftjob-a.
    store(finished_job("ftjob-b", 12_000_000)).await;
    assert!((spent().await - 51.0).abs() < 0.01);
    // So does a job leaving a finished status: ftjob-c's $15 is gone.
    store(job_in("ftjob-c", "running", None)).await;
    let spend = spent().await;
    assert!((spend - 36.0).abs() < 0.01, "{spend}");
    // And a fresh process agrees.
    assert!((total(&env.app().await.budget_spend(now()).await.unwrap()) - spend).abs() < 1e-9);
}
