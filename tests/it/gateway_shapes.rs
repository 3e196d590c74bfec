//! Jobs in the shapes Portkey's gateway gives fine-tunes of other providers, against the real
//! binary: its Bedrock, Vertex AI and Fireworks mappings send `created_at` and `finished_at` in
//! milliseconds (`Date.getTime()`), which ftguard must read as such, or no time limit is ever
//! reached for those jobs; and Vertex AI's token counts come as strings of digits. Azure
//! OpenAI's jobs (passed on as they are) wait in its queue as `pending`.

use crate::common::{Env, H, now, stderr};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// A tuning job as Portkey maps Vertex AI's: numeric id, `object: "finetune"`, times in ms.
fn vertex_job(id: &str, status: &str, created_ms: i64, finished_ms: Option<i64>) -> Value {
    json!({
        "id": id, "object": "finetune", "status": status,
        "created_at": created_ms, "finished_at": finished_ms, "error": null,
        "fine_tuned_model": null, "model": "gemini-2.0-flash-001", "trained_tokens": null,
        "training_file": "gs%3A%2F%2Fbucket%2Ftrain.jsonl",
        "hyperparameters": {"batch_size": null, "learning_rate_multiplier": 1.0, "n_epochs": 3}
    })
}

/// An account at `server` (through the gateway, as ftguard sees it) and a 6-hour runtime limit.
fn runtime_6h(server: &MockServer) -> Env {
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"gw\"\nbase_url = \"{}/v1\"\nmax_attempts = 2\n\n\
             [[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
            server.uri()
        ),
    );
    env
}

#[tokio::test]
async fn a_job_timed_in_milliseconds_is_cancelled_at_its_limit() {
    let server = MockServer::start().await;
    let started_ms = (now() - 7 * H) * 1000 + 123;
    let done_ms = (now() - 28 * H) * 1000;
    let running = vertex_job("6112", "running", started_ms, None);
    let finished = vertex_job("5007", "succeeded", done_ms - 2 * H * 1000, Some(done_ms));
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [running, finished], "has_more": false}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/6112"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&running))
        .mount(&server)
        .await;
    let cancelled_ms = now() * 1000 + 456;
    let mut cancelled = vertex_job("6112", "cancelled", started_ms, Some(cancelled_ms));
    // Google writes 64-bit integers as strings, and Portkey passes Vertex AI's token count on.
    cancelled["trained_tokens"] = json!("1234");
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/6112/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&cancelled))
        .expect(1)
        .mount(&server)
        .await;

    let env = runtime_6h(&server);
    let plan = env.json(&["plan", "--json"]).await;
    let decided: Vec<_> = plan
        .as_array()
        .unwrap()
        .iter()
        .map(|d| (d["job_id"].as_str(), d["action"].as_str()))
        .collect();
    assert_eq!(decided, [(Some("6112"), Some("cancel"))], "{plan:#}");
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("6112"), "{out}");

    let jobs = env.json(&["jobs", "--json"]).await;
    let job = |id: &str| {
        jobs.as_array()
            .unwrap()
            .iter()
            .find(|j| j["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not listed: {jobs:#}"))
    };
    let j = job("6112");
    assert_eq!(j["status"], "cancelled");
    assert_eq!(j["created_at"], json!(started_ms / 1000));
    assert_eq!(j["finished_at"], json!(cancelled_ms / 1000));
    assert_eq!(j["trained_tokens"], json!(1234));
    assert_eq!(job("5007")["finished_at"], json!(done_ms / 1000));
    // `show --json` keeps the payload as it came.
    let shown = env.json(&["show", "6112", "--json"]).await;
    assert_eq!(shown["raw"]["created_at"], json!(started_ms));
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions.as_array().map(Vec::len), Some(1), "{actions:#}");
    assert_eq!(actions[0]["policy"], "runtime-6h");
    assert_eq!(
        actions[0]["response_trained_tokens"],
        json!(1234),
        "{actions:#}"
    );
}

/// Vertex AI's and Bedrock's cancel answer nothing (`{}`, or no body) and Portkey passes that on:
/// the cancel is confirmed by one retrieve, recorded once as succeeded, and never sent again.
#[tokio::test]
async fn a_cancel_answered_with_an_empty_body_is_confirmed_by_a_retrieve() {
    let server = MockServer::start().await;
    let started_ms = (now() - 7 * H) * 1000;
    for (body, id) in [("{}", "vertex-1"), ("", "bedrock-1")] {
        Mock::given(method("GET"))
            .and(path(format!("/v1/fine_tuning/jobs/{id}")))
            .respond_with(ResponseTemplate::new(200).set_body_json(vertex_job(
                id,
                "cancelled",
                started_ms,
                Some(now() * 1000),
            )))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/v1/fine_tuning/jobs/{id}/cancel")))
            .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
            .expect(1)
            .mount(&server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list",
            "data": [vertex_job("vertex-1", "running", started_ms, None),
                     vertex_job("bedrock-1", "running", started_ms - 1000, None)],
            "has_more": false})),
        )
        .mount(&server)
        .await;
    let env = runtime_6h(&server);
    env.ok(&["run", "--once"]).await;
    env.ok(&["run", "--once"]).await;
    let actions = env.json(&["actions", "--json"]).await;
    let recorded: Vec<_> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["job_id"].as_str().unwrap_or_default(),
                a["outcome"].as_str().unwrap_or_default(),
                a["response_status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        recorded,
        [
            ("vertex-1", "succeeded", "cancelled"),
            ("bedrock-1", "succeeded", "cancelled")
        ],
        "{actions:#}"
    );
}

/// Portkey gives a Bedrock job the id `encodeURIComponent(jobArn)` and builds Bedrock's URL from
/// the path as it arrives: ftguard must send that id as it is. Encoded a second time
/// (`arn%253Aaws…`), the cancel would name no job at Bedrock.
#[tokio::test]
async fn an_id_with_escapes_is_sent_as_it_came() {
    let server = MockServer::start().await;
    let id = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Amodel-customization-job%2Fabc";
    let created_ms = (now() - 7 * H) * 1000;
    let job = |status: &str| {
        // Portkey's Bedrock mapping: no `model`, `error: {}`, times in ms, NaN times as null.
        json!({"id": id, "job_name": "abc", "object": "finetune", "status": status,
               "created_at": created_ms, "finished_at": null, "error": {},
               "hyperparameters": {"learning_rate_multiplier": null, "batch_size": null, "n_epochs": null},
               "training_file": "s3%3A%2F%2Fbucket%2Ftrain.jsonl", "validation_file": ""})
    };
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(
                json!({"object": "list", "data": [job("running")], "total_count": 1}),
            ),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v1/fine_tuning/jobs/{id}/cancel")))
        .respond_with(ResponseTemplate::new(200).set_body_raw("", "application/json"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v1/fine_tuning/jobs/{id}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("cancelled")))
        .expect(1)
        .mount(&server)
        .await;
    let env = runtime_6h(&server);
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains(&format!("cancelled gw {id}")), "{out}");
    // `error: {}` on every job of the mapping is no error.
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions[0]["response_error"], json!(null), "{actions:#}");
    let paths: Vec<String> = server
        .received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect();
    assert!(
        paths.iter().all(|p| !p.contains("%25")),
        "an escape encoded twice: {paths:?}"
    );
}

/// Portkey hands ftguard's cursor (the last job's id) to Vertex AI as its page token, which
/// Vertex AI did not issue. A second page refused as a bad request keeps what the first listed
/// and says why; the account's sync does not fail (it would at every sync, for good). The
/// listing counts as complete: the next sync is one request with no warning, not a full
/// listing refused again every minute.
#[tokio::test]
async fn a_later_page_refused_keeps_what_was_listed() {
    use wiremock::matchers::{query_param, query_param_is_missing};
    let server = MockServer::start().await;
    let created_ms = (now() - 7 * H) * 1000;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .and(query_param_is_missing("after"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"object": "list",
            "data": [vertex_job("6112", "running", created_ms, None),
                     vertex_job("6111", "succeeded", created_ms - 1000, Some(created_ms))],
            "has_more": true, "last_id": "6111"})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .and(query_param("after", "6111"))
        .respond_with(
            ResponseTemplate::new(400).set_body_json(
                json!({"error": {"message": "Page token is not valid", "code": 400}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let env = runtime_6h(&server);
    let out = env.run(&["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = &summary[0];
    assert_eq!(account["ok"], true, "{summary:#}");
    assert_eq!(account["summary"]["new"], 2, "{summary:#}");
    let warnings = account["summary"]["warnings"].to_string();
    assert!(
        warnings.contains("refused page 2") && warnings.contains("Page token is not valid"),
        "{summary:#}"
    );

    // The next sync stops at the boundary (the running job) on the first page.
    let out = env.run(&["sync", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let account = &summary[0]["summary"];
    assert_eq!(account["full"], false, "{summary:#}");
    assert_eq!(account["pages"], 1, "{summary:#}");
    assert_eq!(account["warnings"], json!([]), "{summary:#}");
    // The mocks' expected counts (two first pages, one refused second) are checked on drop.
}

/// Azure OpenAI's API (direct, or through Portkey's `azure-openai`, which passes it on) says
/// `pending` for a job waiting in its queue, where OpenAI's says `queued`; such a job past
/// `max_queue_time` is cancelled before it trains, like a queued one.
#[tokio::test]
async fn a_job_pending_in_azures_queue_is_cancelled_at_the_queue_limit() {
    let server = MockServer::start().await;
    let created = now() - 3 * H;
    let azure_job = |status: &str| {
        json!({"id": "ftjob-0a1b2c", "object": "fine_tuning.job", "status": status,
               "model": "gpt-4o-mini-2024-07-18", "created_at": created, "finished_at": null,
               "fine_tuned_model": null, "trained_tokens": null, "estimated_finish": null,
               "training_file": "file-9f8e7d", "hyperparameters": {"n_epochs": -1}})
    };
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [azure_job("pending")], "has_more": false}),
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-0a1b2c"))
        .respond_with(ResponseTemplate::new(200).set_body_json(azure_job("pending")))
        .mount(&server)
        .await;
    let mut cancelled = azure_job("cancelled");
    cancelled["finished_at"] = json!(now());
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/ftjob-0a1b2c/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&cancelled))
        .expect(1)
        .mount(&server)
        .await;
    let env = Env::new();
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"azure\"\nbase_url = \"{}/v1\"\nmax_attempts = 2\n\n\
             [[policies]]\nname = \"queue-2h\"\nkind = \"max_queue_time\"\nlimit = \"2h\"\n",
            server.uri()
        ),
    );
    let plan = env.json(&["plan", "--json"]).await;
    assert_eq!(plan[0]["job_id"], "ftjob-0a1b2c", "{plan:#}");
    assert_eq!(plan[0]["action"], "cancel", "{plan:#}");
    let reason = plan[0]["reason"].as_str().unwrap_or_default();
    assert!(reason.starts_with("pending for 3h"), "{plan:#}");
    env.ok(&["run", "--once"]).await;
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions[0]["policy"], "queue-2h", "{actions:#}");
    assert_eq!(actions[0]["outcome"], "succeeded", "{actions:#}");
}
