//! Hostile and broken upstreams (RELIABILITY.md, "Hostile upstream"): an API or gateway that
//! redirects, answers too much or never stops, stalls a download, answers about another job,
//! or sends ids, counts and times no sane API sends. The real binary runs against a small
//! server of this file's own that misbehaves on purpose.

mod server;

use std::time::Duration;

use crate::common::*;
use server::{Reply, Server, json, redirect};

const RUNTIME_6H: &str =
    "[[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n";

fn job(id: &str, status: &str, created_at: i64) -> String {
    serde_json::json!({
        "object": "fine_tuning.job", "id": id, "model": "gpt-4o-mini-2024-07-18",
        "status": status, "created_at": created_at, "hyperparameters": {}
    })
    .to_string()
}

fn page(jobs: &[String]) -> String {
    format!(
        r#"{{"object":"list","data":[{}],"has_more":false}}"#,
        jobs.join(",")
    )
}

/// An account section: `name` at `base_url`, with test timeouts, plus `extra` lines.
/// `extra` may set any of the defaults again.
fn account(name: &str, base_url: &str, extra: &str) -> String {
    let mut out = format!("[[accounts]]\nname = \"{name}\"\nbase_url = \"{base_url}\"\n");
    for default in [
        "max_attempts = 3",
        "request_timeout = \"2s\"",
        "max_retry_after = \"2s\"",
    ] {
        let key = default.split(' ').next().unwrap_or_default();
        if !extra.contains(&format!("{key} =")) {
            out.push_str(default);
            out.push('\n');
        }
    }
    format!("{out}{extra}\n")
}

/// A fresh environment watching `account` with the 6-hour runtime policy.
fn runtime_6h_env(account: String) -> Env {
    let env = Env::new();
    env.write_config("", &format!("{account}{RUNTIME_6H}"));
    env
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

/// The actions recorded, as JSON.
async fn actions(env: &Env) -> Vec<serde_json::Value> {
    env.json(&["actions", "--json"])
        .await
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_redirect_is_not_followed_so_no_key_reaches_another_host() {
    let other = Server::start(|_| json(200, &page(&[]))).await;
    let to = format!(
        "http://localhost:{}/v1/fine_tuning/jobs?token=abc",
        other.port
    );
    let api = Server::start(move |_| redirect(302, &to)).await;
    let env = Env::new()
        .env("PK", "pk-secret")
        .env("VK", "vk-secret")
        .env("AZ", "az-secret")
        .env("AWS", "aws-secret");
    env.write_config(
        "",
        &account(
            "gw",
            &api.url("/v1"),
            "portkey_api_key = { env = \"PK\" }\nvirtual_key = { env = \"VK\" }\n\
             headers = { \"api-key\" = { env = \"AZ\" }, \"x-portkey-aws-secret-access-key\" = { env = \"AWS\" } }",
        ),
    );
    let out = env.run(&["sync"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    let said = text(&out);
    assert!(
        said.contains(&format!(
            "redirected to http://localhost:{}/v1/fine_tuning/jobs;",
            other.port
        )) && said.contains("does not follow redirects"),
        "{said}"
    );
    assert!(
        !said.contains("token=abc"),
        "a query may hold a token: {said}"
    );
    for r in api.requests() {
        assert_eq!(r.header("referer"), None, "{r:?}");
    }
}

#[tokio::test]
async fn a_redirected_cancel_is_not_sent_elsewhere_nor_recorded_as_done() {
    let now = now();
    let other = Server::start(|_| json(200, &job("ftjob-OTHER", "cancelled", 1_700_000_000))).await;
    let to = other.url("/v1/fine_tuning/jobs/ftjob-OTHER/cancel");
    let listed = page(&[job("ftjob-run", "running", now - 7 * H)]);
    let retrieved = job("ftjob-run", "running", now - 7 * H);
    let api = Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/v1/fine_tuning/jobs") => json(200, &listed),
        ("GET", _) => json(200, &retrieved),
        _ => redirect(307, &to),
    })
    .await;
    let env = runtime_6h_env(account("a", &api.url("/v1"), ""));
    let out = env.run(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    let acts = actions(&env).await;
    let cancel = acts.iter().find(|a| a["action"] == "cancel").unwrap();
    assert_eq!(cancel["outcome"], "failed", "{cancel:#}");
    let jobs = env.json(&["jobs", "--json"]).await;
    assert!(by_id(&jobs, "id", "ftjob-OTHER").is_empty(), "{jobs:#}");
}

#[tokio::test]
async fn a_redirecting_webhook_is_refused_without_following_it() {
    let other = Server::start(|_| json(200, "{}")).await;
    let to = other.url("/elsewhere");
    let hook = Server::start(move |_| redirect(302, &to)).await;
    let env = Env::new().env("HOOK", &hook.url("/services/T000/B000/secret"));
    env.write_config("", "[[notifiers]]\nurl = { env = \"HOOK\" }\n");
    let out = env.run(&["config", "check", "--test-notifiers"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(other.requests().is_empty(), "{:?}", other.requests());
    assert!(
        text(&out).contains("a redirect (not followed"),
        "{}",
        text(&out)
    );
    assert_eq!(hook.requests().len(), 1);
    assert_eq!(hook.requests()[0].header("referer"), None);
}

#[tokio::test]
async fn ids_that_are_not_one_path_segment_are_stored_said_once_and_never_acted_on() {
    let now = now();
    let odd = [".", "..", "%2e%2e", "%2E", "ftjob-a\nERROR forged line"];
    let mut jobs: Vec<String> = odd
        .iter()
        .map(|id| job(id, "running", now - 7 * H))
        .collect();
    jobs.push(job("ftjob-ok", "running", now - 7 * H));
    let listed = page(&jobs);
    let cancelled = job("ftjob-ok", "cancelled", now - 7 * H);
    let api = Server::start(move |r| match r.method.as_str() {
        "GET" => json(200, &listed),
        _ => json(200, &cancelled),
    })
    .await;
    let env = runtime_6h_env(account("a", &api.url("/v1"), ""));
    let first = env.run(&["run", "--once"]).await;
    let said = text(&first);
    let posts: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(posts, ["/v1/fine_tuning/jobs/ftjob-ok/cancel"], "{said}");
    // Once in the sync's summary (and once in the log).
    assert_eq!(
        stdout(&first).matches("cannot be sent to the API").count(),
        odd.len(),
        "{said}"
    );
    assert!(
        !said
            .lines()
            .any(|l| l.trim_start().starts_with("ERROR forged")),
        "a newline in an id forged a line: {said}"
    );
    let stored = env.json(&["jobs", "--json"]).await;
    for id in odd {
        assert_eq!(
            by_id(&stored, "id", id).len(),
            1,
            "{id:?} not stored: {stored:#}"
        );
    }
    // Said once: not again at the next pass, which still sends nothing for them.
    let second = env.run(&["run", "--once"]).await;
    assert!(
        !text(&second).contains("cannot be sent to the API"),
        "{}",
        text(&second)
    );
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn a_query_string_in_base_url_is_kept_on_every_request() {
    let now = now();
    let listed = page(&[job("ftjob-run", "running", now - 7 * H)]);
    let cancelled = job("ftjob-run", "cancelled", now - 7 * H);
    let api = Server::start(move |r| {
        if !r.target.contains("?tenant=t1&") && !r.target.ends_with("?tenant=t1") {
            return json(404, r#"{"error":{"message":"no tenant"}}"#);
        }
        match r.method.as_str() {
            "GET" => json(200, &listed),
            _ => json(200, &cancelled),
        }
    })
    .await;
    let env = runtime_6h_env(account("a", &api.url("/v1?tenant=t1"), ""));
    let out = env.run(&["run", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let targets: Vec<String> = api.requests().iter().map(|r| r.target.clone()).collect();
    assert!(
        targets.contains(&"/v1/fine_tuning/jobs?tenant=t1&limit=100".to_owned())
            && targets.contains(&"/v1/fine_tuning/jobs/ftjob-run/cancel?tenant=t1".to_owned()),
        "{targets:?}"
    );
}

#[tokio::test]
async fn config_check_warns_of_keys_sent_in_clear_text() {
    let env = Env::new().env("K", "sk-x");
    env.write_config(
        "",
        &format!(
            "{}{RUNTIME_6H}",
            account(
                "a",
                "http://10.1.2.3:8787/v1",
                "bearer_token = { env = \"K\" }"
            )
        ),
    );
    let out = env.run(&["config", "check"]).await;
    assert!(
        text(&out).contains("base_url is http:// to 10.1.2.3, not loopback: its keys cross the network in clear text"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn answers_too_large_or_never_ending_fail_their_request_naming_the_size() {
    // 9 MB declared and sent: over the default 8 MiB.
    let padding = "x".repeat(9 * 1024 * 1024);
    let big = format!(r#"{{"object":"list","data":[],"has_more":false,"pad":"{padding}"}}"#);
    let api = Server::start(move |_| json(200, &big)).await;
    let env = Env::new();
    env.write_config("", &account("a", &api.url("/v1"), ""));
    let out = env.run(&["sync"]).await;
    assert!(!out.status.success());
    assert!(
        text(&out).contains("answered more than 8388608 bytes (94")
            && text(&out).contains(" declared): not read"),
        "{}",
        text(&out)
    );
    assert_eq!(
        api.requests().len(),
        1,
        "the next answer would be as large: not retried"
    );

    // A chunked body that never ends: cut at the configured cap, long before the timeout.
    let endless = Server::start(|_| Reply::Endless).await;
    let env = Env::new();
    env.write_config(
        "",
        &account(
            "a",
            &endless.url("/v1"),
            "max_response_bytes = 1048576\nrequest_timeout = \"60s\"",
        ),
    );
    let out = tokio::time::timeout(Duration::from_secs(30), env.run(&["sync"]))
        .await
        .expect("an endless answer must not hold the sync for its whole timeout");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("answered more than 1048576 bytes"),
        "{}",
        text(&out)
    );
}

/// An API listing a runaway (8h) and a young job whose training file's download stalls after
/// one line; a cancel answers the runaway cancelled.
async fn stalled_file_api(now: i64) -> Server {
    let mut costly: serde_json::Value =
        serde_json::from_str(&job("ftjob-young", "running", now - 600)).unwrap();
    costly["training_file"] = "file-stall".into();
    let listed = page(&[
        job("ftjob-runaway", "running", now - 8 * H),
        costly.to_string(),
    ]);
    let cancelled = job("ftjob-runaway", "cancelled", now - 8 * H);
    Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/v1/files/file-stall/content") => {
            Reply::Stall(b"{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}\n".to_vec())
        }
        ("GET", _) => json(200, &listed),
        _ => json(200, &cancelled),
    })
    .await
}

#[tokio::test]
async fn a_stalled_training_file_never_holds_up_a_runtime_cancel() {
    let now = now();
    let api = stalled_file_api(now).await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}{RUNTIME_6H}[[policies]]\nname = \"cap\"\nkind = \"max_job_cost\"\nlimit_usd = 50.0\n",
            account("a", &api.url("/v1"), "")
        ),
    );
    let out = tokio::time::timeout(Duration::from_secs(60), env.run(&["run", "--once"]))
        .await
        .expect("a stalled download must end at its idle timeout");
    let said = text(&out);
    let reqs = api.requests();
    let at = |path: &str| reqs.iter().position(|r| r.path() == path);
    let cancel = at("/v1/fine_tuning/jobs/ftjob-runaway/cancel").expect(&said);
    let download = at("/v1/files/file-stall/content").expect(&said);
    assert!(
        cancel < download,
        "the cancel waited on the download: {said}"
    );
    assert!(said.contains("the download stalled"), "{said}");
}

#[tokio::test]
async fn one_accounts_hanging_cancels_do_not_hold_up_anothers() {
    let now = now();
    let slow_jobs = page(&[
        job("ftjob-a1", "running", now - 9 * H),
        job("ftjob-a2", "running", now - 9 * H - 1),
        job("ftjob-a3", "running", now - 9 * H - 2),
    ]);
    // Older than a's: evaluated after them (newest first), as in the report that found this.
    let fast_jobs = page(&[job("ftjob-b1", "running", now - 10 * H)]);
    let b_cancelled = job("ftjob-b1", "cancelled", now - 10 * H);
    let api = Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/a/v1/fine_tuning/jobs") => json(200, &slow_jobs),
        ("GET", "/b/v1/fine_tuning/jobs") => json(200, &fast_jobs),
        ("POST", p) if p.starts_with("/a/") => Reply::Hang,
        ("POST", _) => json(200, &b_cancelled),
        _ => Reply::Hang,
    })
    .await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}{}{RUNTIME_6H}",
            account("a", &api.url("/a/v1"), "max_attempts = 1"),
            account("b", &api.url("/b/v1"), "max_attempts = 1")
        ),
    );
    let out = env.run(&["run", "--once"]).await;
    let reqs = api.requests();
    let first_post = reqs
        .iter()
        .find(|r| r.method == "POST")
        .unwrap_or_else(|| panic!("no cancel sent: {}", text(&out)))
        .at;
    let b = reqs
        .iter()
        .find(|r| r.path() == "/b/v1/fine_tuning/jobs/ftjob-b1/cancel")
        .unwrap_or_else(|| panic!("b's cancel never sent: {}", text(&out)));
    // Serially, b's cancel waited for a's three (each a 2s timeout at least).
    assert!(
        b.at.duration_since(first_post) < Duration::from_secs(2),
        "b's cancel waited {:?} for a's",
        b.at.duration_since(first_post)
    );
}

/// One job running 7 hours; every POST (cancel, pause) answered 429 with `Retry-After: secs`.
async fn rate_limiting_every_post(secs: u32) -> Server {
    let now = now();
    let listed = page(&[job("ftjob-run", "running", now - 7 * H)]);
    let running = job("ftjob-run", "running", now - 7 * H);
    Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/v1/fine_tuning/jobs") => json(200, &listed),
        ("GET", _) => json(200, &running),
        _ => Reply::Full(
            429,
            vec![("retry-after".into(), secs.to_string())],
            br#"{"error":{"message":"slow down"}}"#.to_vec(),
        ),
    })
    .await
}

#[tokio::test]
async fn a_cancel_rate_limited_on_every_try_stops_at_the_jobs_budget_for_the_pass() {
    let api = rate_limiting_every_post(1).await;
    let env = runtime_6h_env(account("a", &api.url("/v1"), ""));
    let out = env.run(&["run", "--once"]).await;
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    // Without a budget: 4 rounds of 3 tries (12 POSTs); within twice request_timeout (4s),
    // at most two rounds.
    assert!((1..=6).contains(&posts), "{posts} POSTs: {}", text(&out));
    let acts = actions(&env).await;
    let cancel = acts.iter().find(|a| a["action"] == "cancel").unwrap();
    assert_eq!(cancel["outcome"], "failed");
    assert!(
        cancel["error"]
            .as_str()
            .unwrap_or("")
            .contains("twice request_timeout"),
        "{cancel:#}"
    );
}

#[tokio::test]
async fn api_error_text_is_cut_and_cannot_forge_log_lines() {
    let huge = format!(
        r#"{{"error":{{"message":"bad gateway\nERROR forged: cancelled everything\n{}"}}}}"#,
        "x".repeat(40_000)
    );
    let api = Server::start(move |_| json(500, &huge)).await;
    let env = Env::new();
    env.write_config("", &account("a", &api.url("/v1"), "max_attempts = 1"));
    let out = env.run(&["sync"]).await;
    let said = text(&out);
    assert!(!out.status.success());
    assert!(
        !said
            .lines()
            .any(|l| l.trim_start().starts_with("ERROR forged")),
        "{said}"
    );
    assert!(said.contains("bad gateway\\nERROR forged"), "{said}");
    assert!(said.contains("(cut: "), "{said}");
    assert!(said.len() < 20_000, "{} bytes written", said.len());
    let stored = sqlite3(&env.db(), "SELECT length(error) FROM sync_runs");
    assert!(stored.parse::<usize>().unwrap() < 3_000, "{stored}");
}

#[tokio::test]
async fn answers_about_another_job_are_not_this_jobs_cancel() {
    let now = now();
    // 200 with another job; a retrieve answering another job too.
    let listed = page(&[
        job("ftjob-one", "running", now - 7 * H),
        job("ftjob-two", "running", now - 7 * H - 1),
    ]);
    let other = job("ftjob-OTHER", "cancelled", now - 9 * H);
    let still = job("ftjob-two", "running", now - 7 * H - 1);
    let api = Server::start(move |r| match (r.method.as_str(), r.path()) {
        ("GET", "/v1/fine_tuning/jobs") => json(200, &listed),
        ("POST", "/v1/fine_tuning/jobs/ftjob-two/cancel") => json(200, &still),
        _ => json(200, &other),
    })
    .await;
    let env = runtime_6h_env(account("a", &api.url("/v1"), "max_attempts = 1"));
    let out = env.run(&["run", "--once"]).await;
    let said = text(&out);
    assert!(
        said.contains("answered about another job (\"ftjob-OTHER\")"),
        "{said}"
    );
    let acts = actions(&env).await;
    let of = |id: &str| {
        acts.iter()
            .find(|a| a["job_id"] == id && a["action"] == "cancel")
            .cloned()
            .unwrap_or_else(|| panic!("no cancel of {id}: {said}"))
    };
    assert_eq!(of("ftjob-one")["outcome"], "failed", "{said}");
    // A 200 whose job still runs: accepted, not a finished cancel.
    assert_eq!(of("ftjob-two")["outcome"], "accepted", "{said}");
    assert!(said.contains("cancel accepted a ftjob-two"), "{said}");
    let jobs = env.json(&["jobs", "--json"]).await;
    assert!(
        by_id(&jobs, "id", "ftjob-OTHER").is_empty(),
        "phantom job stored: {jobs:#}"
    );
    // Never sent again while it stays accepted.
    let before = api
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("ftjob-two/cancel"))
        .count();
    env.run(&["run", "--once"]).await;
    let after = api
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("ftjob-two/cancel"))
        .count();
    assert_eq!(before, after);
}

#[tokio::test]
async fn negative_and_huge_counts_are_no_refund_and_said_once() {
    let now = now();
    let finished = |id: &str, tokens: i64| {
        let mut j: serde_json::Value =
            serde_json::from_str(&job(id, "succeeded", now - 3 * H)).unwrap();
        j["trained_tokens"] = tokens.into();
        j["finished_at"] = (now - H).into();
        j.to_string()
    };
    let listed = page(&[
        finished("ftjob-neg", -1000),
        finished("ftjob-ok", 1_000_000),
    ]);
    let api = Server::start(move |_| json(200, &listed)).await;
    let env = Env::new();
    env.write_config("", &account("a", &api.url("/v1"), ""));
    let first = env.run(&["sync"]).await;
    assert_eq!(
        stdout(&first)
            .matches("trained_tokens -1000, which is no count")
            .count(),
        1,
        "{}",
        text(&first)
    );
    let second = env.run(&["sync"]).await;
    assert!(
        !text(&second).contains("which is no count"),
        "said twice: {}",
        text(&second)
    );
    let spend = env.json(&["spend", "--json"]).await;
    let spent = spend.to_string();
    // gpt-4o-mini at $3 per million: the good job's $3, not $3 less a refund.
    assert!(!spent.contains('-'), "negative spend: {spent}");
    assert!(
        spent.contains("3000000") || spent.contains("3.0"),
        "{spent}"
    );
}

#[tokio::test]
async fn times_in_any_unit_are_read_and_implausible_ones_said_and_judged_from_first_sight() {
    let now = now();
    let mut micros: serde_json::Value =
        serde_json::from_str(&job("ftjob-micros", "running", 0)).unwrap();
    micros["created_at"] = ((now - 7 * H) * 1_000_000).into();
    let mut nanos: serde_json::Value =
        serde_json::from_str(&job("ftjob-nanos", "running", 0)).unwrap();
    nanos["created_at"] = serde_json::json!((now - 7 * H) * 1_000_000_000);
    let listed = page(&[
        micros.to_string(),
        nanos.to_string(),
        job("ftjob-1970", "running", 1000),
        job("ftjob-min", "running", i64::MIN),
    ]);
    let api = Server::start(move |r| match r.method.as_str() {
        "GET" => json(200, &listed),
        _ => {
            let id = r.path().split('/').nth(4).unwrap_or("").to_owned();
            json(200, &job(&id, "cancelled", now - 7 * H))
        }
    })
    .await;
    let env = runtime_6h_env(account("a", &api.url("/v1"), ""));
    let out = env.run(&["run", "--once"]).await;
    let said = text(&out);
    let mut posts: Vec<String> = api
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path().to_owned())
        .collect();
    posts.sort();
    assert_eq!(
        posts,
        [
            "/v1/fine_tuning/jobs/ftjob-micros/cancel",
            "/v1/fine_tuning/jobs/ftjob-nanos/cancel"
        ],
        "{said}"
    );
    assert!(!said.contains("panicked"), "{said}");
    assert_eq!(
        stdout(&out).matches("before 2015 or in the future").count(),
        2,
        "{said}"
    );
    let again = env.run(&["run", "--once"]).await;
    assert!(
        !text(&again).contains("before 2015 or in the future"),
        "{}",
        text(&again)
    );
    // Judged from when ftguard first saw them: their runtime counts from now, never exempt.
    let jobs = env.json(&["jobs", "--json"]).await;
    for id in ["ftjob-1970", "ftjob-min"] {
        let created = by_id(&jobs, "id", id)[0]["created_at"].as_i64().unwrap();
        assert!((now - 5..=now + 60).contains(&created), "{id}: {created}");
    }
}

#[tokio::test]
async fn run_once_fails_when_no_account_could_be_synced() {
    let api = Server::start(|_| json(401, r#"{"error":{"message":"bad key"}}"#)).await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}{}{RUNTIME_6H}",
            account("a", &api.url("/v1"), ""),
            account("b", &api.url("/v1"), "")
        ),
    );
    let out = env.run(&["run", "--once"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[tokio::test]
async fn out_of_range_values_in_config_and_arguments_are_clear_errors() {
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}[[policies]]\nname = \"forever\"\nkind = \"max_runtime\"\nlimit = \"292471208679y\"\n",
            account("a", "http://127.0.0.1:9/v1", "")
        ),
    );
    let out = env.run(&["config", "check"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("policies[0] (\"forever\")")
            && stderr(&out).contains("is out of range: at most 100 years"),
        "{}",
        stderr(&out)
    );
    let out = env.run(&["plan", "--offline"]).await;
    assert!(
        !out.status.success(),
        "plan must refuse it too: {}",
        text(&out)
    );

    let out = env.run(&["sim", "--jobs", "1000000000"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--jobs"), "{}", stderr(&out));

    env.write_config(
        "sync_schedule = \"0 0 0 29 2 *\"",
        &format!("{}{RUNTIME_6H}", account("a", "http://127.0.0.1:9/v1", "")),
    );
    let out = env.run(&["config", "check"]).await;
    assert!(
        text(&out).contains("next runs at 2028-02-29"),
        "{}",
        text(&out)
    );
}

#[tokio::test]
async fn a_second_daemon_through_a_symlink_to_the_database_is_refused() {
    let api = Server::start(|_| json(200, &page(&[]))).await;
    let env = Env::new();
    env.write_config("", &account("a", &api.url("/v1"), ""));
    let mut daemon = env.daemon();
    // Up once it has synced.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while api.requests().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the daemon did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let other = Env::new();
    let link = other.dir.path().join("same.db");
    std::os::unix::fs::symlink(env.db(), &link).unwrap();
    std::fs::write(
        other.config_path(),
        format!(
            "[daemon]\ndatabase = {:?}\n\n{}",
            link.display().to_string(),
            account("a", &api.url("/v1"), "")
        ),
    )
    .unwrap();
    let second = tokio::time::timeout(Duration::from_secs(20), other.run(&["run"])).await;
    let _ = daemon.kill().await;
    let second = second.expect("a second daemon ran on the same database");
    assert!(!second.status.success(), "{}", text(&second));
    assert!(
        stderr(&second).contains("already running"),
        "{}",
        stderr(&second)
    );
}

#[tokio::test]
async fn a_pause_rate_limited_on_every_try_stops_at_the_jobs_budget_for_the_pass() {
    let api = rate_limiting_every_post(2).await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}[[policies]]\nname = \"pause-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\naction = \"pause\"\n",
            account("a", &api.url("/v1"), "max_attempts = 6")
        ),
    );
    let out = env.run(&["run", "--once"]).await;
    let posts = api.requests().iter().filter(|r| r.method == "POST").count();
    // Six tries two seconds apart take ten seconds; the budget is four.
    assert!((1..=3).contains(&posts), "{posts} POSTs: {}", text(&out));
    let acts = actions(&env).await;
    let pause = acts.iter().find(|a| a["action"] == "pause").unwrap();
    assert!(
        pause["error"]
            .as_str()
            .unwrap_or("")
            .contains("twice request_timeout"),
        "{pause:#}"
    );
}

/// In the daemon, training files are counted in a task of their own: while a download stalls,
/// syncs and passes go on at their schedule, and the runaway is cancelled.
#[tokio::test]
async fn in_the_daemon_a_stalled_download_holds_up_no_sync() {
    let now = now();
    let api = stalled_file_api(now).await;
    let env = Env::new();
    // The stall lasts a minute (no byte for request_timeout); syncs come every second.
    env.write_config(
        "sync_schedule = \"* * * * * *\"",
        &format!(
            "{}{RUNTIME_6H}[[policies]]\nname = \"cap\"\nkind = \"max_job_cost\"\nlimit_usd = 50.0\n",
            account("a", &api.url("/v1"), "request_timeout = \"60s\"")
        ),
    );
    let mut daemon = env.daemon();
    let lists = || {
        api.requests()
            .iter()
            .filter(|r| r.path() == "/v1/fine_tuning/jobs")
            .count()
    };
    let at_download = wait_until(Duration::from_secs(15), "the download to start", || {
        api.requests()
            .iter()
            .any(|r| r.path() == "/v1/files/file-stall/content")
            .then(lists)
    })
    .await;
    wait_until(
        Duration::from_secs(15),
        "three more syncs while it stalls",
        || (lists() >= at_download + 3).then_some(()),
    )
    .await;
    let _ = daemon.kill().await;
    assert!(
        api.requests()
            .iter()
            .any(|r| r.path() == "/v1/fine_tuning/jobs/ftjob-runaway/cancel"),
        "the runaway was not cancelled"
    );
}

#[tokio::test]
async fn hostile_training_metrics_are_sanitised_and_a_page_that_never_ends_stops() {
    // Metrics events with steps that are no count, losses that are no number, and a listing
    // that says there is always more while repeating the same page.
    let now = now();
    let events = serde_json::json!({"object": "list", "has_more": true, "data": [
        {"id": "ev-4", "created_at": now, "type": "metrics", "data": {"step": 1e30, "train_loss": 0.5}},
        {"id": "ev-3", "created_at": now, "type": "metrics", "data": {"step": 3, "train_loss": "NaN", "valid_loss": 0.9}},
        {"id": "ev-2", "created_at": now, "type": "metrics", "data": {"step": 2.5, "train_loss": 0.7}},
        {"id": "ev-1", "created_at": now, "type": "metrics", "data": {"step": -1, "train_loss": 0.8}},
        {"id": "ev-0", "created_at": now, "type": "message", "message": "hello"},
    ]})
    .to_string();
    let listed = page(&[job("ftjob-odd", "running", now - 3600)]);
    let server = Server::start(move |r| match r.path() {
        "/v1/fine_tuning/jobs" => json(200, &listed),
        p if p.ends_with("/events") => json(200, &events),
        _ => json(404, r#"{"error":{"message":"no"}}"#),
    })
    .await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "{}[[policies]]\nname = \"early\"\nkind = \"loss_plateau\"\nmetric = \"train_loss\"\npatience = 1\nwindow = 1\n",
            account("h", &server.url("/v1"), "")
        ),
    );
    let out = env.run(&["run", "--once"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let pages = server
        .requests()
        .iter()
        .filter(|r| r.path().ends_with("/events"))
        .count();
    assert_eq!(pages, 2, "the repeated page ends the read");
    let shown = env.json(&["show", "ftjob-odd", "--json"]).await;
    let steps: Vec<(i64, serde_json::Value)> = shown["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["step"].as_i64().unwrap(), m["train_loss"].clone()))
        .collect();
    // Step 3 kept with no training loss; 2.5 and -1 are no steps; 1e30 saturates.
    assert_eq!(
        steps,
        [
            (3, serde_json::Value::Null),
            (i64::MAX, serde_json::json!(0.5))
        ]
    );
    // Judged on what is left, without a panic: a plateau of one value at an absurd step.
    let text_out = env.ok(&["show", "ftjob-odd"]).await;
    assert!(text_out.contains("training"), "{text_out}");
}
