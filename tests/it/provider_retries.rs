//! The client against wiremock: retries on 429 (honouring Retry-After) and 5xx, bounded
//! attempts, typed errors, and cancel retried only when it provably was not applied.

use std::time::{Duration, Instant};

use ftguard::config::{Config, RawConfig};
use ftguard::provider::{Client, ProviderError};
use serde_json::json;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, ResponseTemplate};

fn client(server: &MockServer, max_attempts: u32) -> Client {
    client_capped(server, max_attempts, "3s")
}

fn client_capped(server: &MockServer, max_attempts: u32, max_retry_after: &str) -> Client {
    let raw: RawConfig = toml::from_str(&format!(
        "[[accounts]]\nname = \"w\"\nbase_url = \"{}/v1\"\nmax_attempts = {max_attempts}\nrequest_timeout = \"1s\"\nmax_retry_after = \"{max_retry_after}\"\n",
        server.uri()
    ))
    .unwrap();
    let cfg = Config::from_raw(raw, None).unwrap();
    Client::new(cfg.accounts[0].clone()).unwrap()
}

fn job(id: &str, status: &str) -> serde_json::Value {
    json!({"object": "fine_tuning.job", "id": id, "model": "gpt-4o-mini-2024-07-18", "created_at": 1_700_000_000, "status": status,
           "finished_at": null, "trained_tokens": null, "training_file": "file-1", "hyperparameters": {"n_epochs": "auto"}})
}

#[tokio::test]
async fn retries_429_honouring_retry_after_then_succeeds() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "1")
                .set_body_json(json!({"error": {"message": "Rate limit reached"}})),
        )
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "running")))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let j = client(&server, 5).retrieve("ftjob-1").await.unwrap();
    assert_eq!(j.status.as_str(), "running");
    // Two waits of Retry-After: 1s each; backoff alone would have been well under that.
    assert!(
        started.elapsed() >= Duration::from_millis(1900),
        "{:?}",
        started.elapsed()
    );
}

/// A 429 answered twice: first asking for an absurd wait (a panic converting it used to stop
/// the daemon), then in milliseconds (`retry-after-ms`, as OpenAI and Azure send it).
#[tokio::test]
async fn any_retry_after_is_capped_and_retry_after_ms_is_read() {
    let server = MockServer::start().await;
    let limited = |header: &'static str, value: &'static str| {
        ResponseTemplate::new(429)
            .insert_header(header, value)
            .set_body_json(json!({"error": {"message": "Rate limit reached"}}))
    };
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(limited("retry-after", "1e300"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(limited("retry-after-ms", "1200"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "running")))
        .expect(1)
        .mount(&server)
        .await;
    let started = Instant::now();
    let j = client_capped(&server, 5, "1s")
        .retrieve("ftjob-1")
        .await
        .unwrap();
    assert_eq!(j.status.as_str(), "running");
    // 1 s (the cap, not 1e300 s) and then 1 s again (1,200 ms capped); the backoff alone would
    // have waited 0.25-0.375 s and 0.5-0.75 s.
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1950) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

#[tokio::test]
async fn retries_5xx_and_gives_up_after_max_attempts_with_a_typed_error() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>"))
        .expect(3)
        .mount(&server)
        .await;
    let err = client(&server, 3).list_jobs_page(None).await.err().unwrap();
    assert!(
        matches!(&err, ProviderError::Status { status: 502, account, .. } if account == "w"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("GET /fine_tuning/jobs") && text.contains("Bad Gateway"),
        "{text}"
    );
}

#[tokio::test]
async fn a_4xx_other_than_429_is_not_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path_regex("^/v1/fine_tuning/jobs/.*"))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(
                json!({"error": {"message": "Could not find fine-tune job: ftjob-x"}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let err = client(&server, 5).retrieve("ftjob-x").await.err().unwrap();
    assert_eq!(err.status(), Some(404));
    assert!(
        err.to_string().contains("GET /fine_tuning/jobs/{id}"),
        "{err}"
    );
}

#[tokio::test]
async fn a_stalled_answer_times_out_and_is_retried() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(job("ftjob-1", "running"))
                .set_delay(Duration::from_secs(5)),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-1"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-1", "queued")))
        .mount(&server)
        .await;
    let j = client(&server, 3).retrieve("ftjob-1").await.unwrap();
    assert_eq!(j.status.as_str(), "queued");
}

#[tokio::test]
async fn a_non_json_200_is_a_decode_error_naming_the_endpoint() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>maintenance</html>"))
        .expect(2)
        .mount(&server)
        .await;
    let err = client(&server, 2).list_jobs_page(None).await.err().unwrap();
    assert!(matches!(err, ProviderError::Decode { .. }), "{err:?}");
    assert!(err.to_string().contains("GET /fine_tuning/jobs"), "{err}");
}

#[tokio::test]
async fn cancel_is_retried_on_429_but_not_on_502() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/ftjob-a/cancel"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/ftjob-a/cancel"))
        .respond_with(ResponseTemplate::new(200).set_body_json(job("ftjob-a", "cancelled")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/fine_tuning/jobs/ftjob-b/cancel"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let c = client(&server, 5);
    assert_eq!(
        c.cancel("ftjob-a").await.unwrap().status.as_str(),
        "cancelled"
    );
    assert_eq!(c.cancel("ftjob-b").await.err().unwrap().status(), Some(502));
}

#[tokio::test]
async fn pages_follow_the_after_cursor() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .and(wiremock::matchers::query_param("after", "ftjob-2"))
        .respond_with(ResponseTemplate::new(200).set_body_json(
            json!({"object": "list", "data": [job("ftjob-3", "queued")], "has_more": false}),
        ))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs"))
        .and(wiremock::matchers::query_param("limit", "100"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"object": "list", "data": [job("ftjob-1", "running"), job("ftjob-2", "queued")], "has_more": true})))
        .mount(&server)
        .await;
    let c = client(&server, 1);
    let first = c.list_jobs_page(None).await.unwrap();
    assert!(first.has_more);
    assert_eq!(first.last_id.as_deref(), Some("ftjob-2"));
    let second = c.list_jobs_page(first.last_id.as_deref()).await.unwrap();
    assert_eq!(second.jobs[0].id.as_str(), "ftjob-3");
    assert!(!second.has_more);
}

#[tokio::test]
async fn an_error_made_by_the_portkey_gateway_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-gw"))
        .respond_with(
            ResponseTemplate::new(400)
                .insert_header("x-portkey-gateway-exception", "true")
                .set_body_json(json!({"status": "failure", "message": "Invalid provider passed"})),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v1/fine_tuning/jobs/ftjob-up"))
        .respond_with(
            ResponseTemplate::new(400)
                .set_body_json(json!({"error": {"message": "Invalid job id"}})),
        )
        .mount(&server)
        .await;
    let c = client(&server, 1);
    let err = c.retrieve("ftjob-gw").await.err().unwrap().to_string();
    assert!(
        err.ends_with(
            "returned 400: Invalid provider passed (said by the Portkey gateway, not the provider)"
        ),
        "{err}"
    );
    let err = c.retrieve("ftjob-up").await.err().unwrap().to_string();
    assert!(err.ends_with("returned 400: Invalid job id"), "{err}");
}

#[tokio::test]
async fn a_404_from_the_job_list_names_the_url_without_user_or_query() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(404).set_body_string("not here"))
        .mount(&server)
        .await;
    // (Passwords and keys in base_url are refused by the configuration; a user name and a
    // query are allowed, and left out of the message anyway.)
    let base = server.uri().replace("http://", "http://someuser@");
    let raw: RawConfig = toml::from_str(&format!(
        "[[accounts]]\nname = \"w\"\nbase_url = \"{base}/openai?api-version=2024-10-21\"\nmax_attempts = 1\n"
    ))
    .unwrap();
    let cfg = Config::from_raw(raw, None).unwrap();
    let client = Client::new(cfg.accounts[0].clone()).unwrap();
    let err = client.list_jobs_page(None).await.err().unwrap().to_string();
    assert!(
        err.contains(&format!(
            "(no fine-tuning API at {}/openai/fine_tuning/jobs: check base_url",
            server.uri()
        )),
        "{err}"
    );
    assert!(
        !err.contains("pa55word") && !err.contains("s3cret"),
        "{err}"
    );
}
