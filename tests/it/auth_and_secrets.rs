//! Every auth header combination reaches the API; secret references resolve from env, file
//! and credential; their errors name the account and the reference, never a value.

use crate::common::*;

fn header<'a>(r: &'a ftguard::sim::Request, name: &str) -> Option<&'a str> {
    r.headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn each_account_sends_exactly_its_configured_headers() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 60, now())])
        .await
        .unwrap();
    let env = Env::new()
        .env("FT_TEST_PK", "pk-secret-env-1")
        .env("CREDENTIALS_DIRECTORY", "");
    let vk = env.dir.path().join("vk");
    std::fs::write(&vk, "vk-secret-file-2\n").unwrap();
    let creds = env.dir.path().join("creds");
    std::fs::create_dir(&creds).unwrap();
    std::fs::write(creds.join("openai"), "sk-secret-cred-3").unwrap();
    let env = env.env("CREDENTIALS_DIRECTORY", creds.to_str().unwrap());
    let base = sim.base_url();
    env.write_config(
        "",
        &format!(
            r#"
[[accounts]]
name = "portkey"
base_url = "{base}"
portkey_api_key = {{ env = "FT_TEST_PK" }}
virtual_key = {{ file = "{vk}" }}
provider = "@openai-prod"
portkey_config = "pc-123"
headers = {{ "x-portkey-custom-host" = "http://upstream/v1" }}

[[accounts]]
name = "direct"
base_url = "{base}"
bearer_token = {{ credential = "openai" }}
"#,
            vk = vk.display()
        ),
    );
    env.ok(&["sync"]).await;
    let reqs = sim.requests();
    let portkey: Vec<_> = reqs
        .iter()
        .filter(|r| header(r, "x-portkey-api-key").is_some())
        .collect();
    let direct: Vec<_> = reqs
        .iter()
        .filter(|r| header(r, "authorization").is_some())
        .collect();
    assert!(!portkey.is_empty() && !direct.is_empty());
    assert_eq!(
        portkey.len() + direct.len(),
        reqs.len(),
        "every request is from one account"
    );
    for r in &portkey {
        assert_eq!(header(r, "x-portkey-api-key"), Some("pk-secret-env-1"));
        assert_eq!(
            header(r, "x-portkey-virtual-key"),
            Some("vk-secret-file-2"),
            "file secret, newline trimmed"
        );
        assert_eq!(header(r, "x-portkey-provider"), Some("@openai-prod"));
        assert_eq!(header(r, "x-portkey-config"), Some("pc-123"));
        assert_eq!(
            header(r, "x-portkey-custom-host"),
            Some("http://upstream/v1")
        );
        assert_eq!(
            header(r, "authorization"),
            None,
            "no leakage from the other account"
        );
    }
    for r in &direct {
        assert_eq!(header(r, "authorization"), Some("Bearer sk-secret-cred-3"));
        for h in [
            "x-portkey-api-key",
            "x-portkey-virtual-key",
            "x-portkey-provider",
            "x-portkey-config",
            "x-portkey-custom-host",
        ] {
            assert_eq!(header(r, h), None, "{h} leaked into the direct account");
        }
    }

    // config check shows references, never values.
    let out = env.ok(&["config", "check"]).await;
    for secret in ["pk-secret-env-1", "vk-secret-file-2", "sk-secret-cred-3"] {
        assert!(!out.contains(secret), "config check leaked {secret}");
    }
    assert!(
        out.contains("FT_TEST_PK") && out.contains("openai"),
        "{out}"
    );
    // Nor the database.
    let db = std::fs::read(env.db()).unwrap();
    let db = String::from_utf8_lossy(&db);
    for secret in ["pk-secret-env-1", "vk-secret-file-2", "sk-secret-cred-3"] {
        assert!(!db.contains(secret), "database holds {secret}");
    }
}

#[tokio::test]
async fn wrong_key_is_a_clear_error_without_the_key() {
    let sim = Sim::start(vec![]).await.unwrap();
    sim.require_header("authorization", "Bearer right");
    let env = Env::new().env("FT_TEST_WRONG", "sk-wrong-value-xyz");
    env.write_config("", &format!("[[accounts]]\nname = \"prod\"\nbase_url = \"{}\"\nbearer_token = {{ env = \"FT_TEST_WRONG\" }}\n", sim.base_url()));
    let out = env.run(&["sync"]).await;
    assert!(!out.status.success());
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        text.contains("\"prod\"") && text.contains("401") && text.contains("Incorrect API key"),
        "{text}"
    );
    // What was sent is named by its reference, so the operator knows what to check.
    assert!(
        text.contains("(sent bearer_token from env FT_TEST_WRONG)"),
        "{text}"
    );
    assert!(!text.contains("sk-wrong-value-xyz"), "{text}");

    // An account with no credentials at all is told so, not left guessing.
    env.write_config(
        "",
        &format!(
            "[[accounts]]\nname = \"prod\"\nbase_url = \"{}\"\n",
            sim.base_url()
        ),
    );
    let out = env.run(&["sync"]).await;
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("this account sends no credentials"), "{text}");
}

#[tokio::test]
async fn secret_reference_errors_name_account_and_reference() {
    let env = Env::new().env("CREDENTIALS_DIRECTORY", "/nonexistent-creds");
    for (reference, expect) in [
        (
            "{ env = \"FT_TEST_DEFINITELY_UNSET\" }",
            "FT_TEST_DEFINITELY_UNSET",
        ),
        (
            "{ file = \"/nonexistent/ftguard-secret\" }",
            "/nonexistent/ftguard-secret",
        ),
        ("{ credential = \"missing-cred\" }", "missing-cred"),
        ("\"sk-inline-literal\"", "cannot be written inline"),
        ("{ env = \"A\", file = \"/b\" }", "exactly one"),
    ] {
        env.write_config(
            "",
            &format!("[[accounts]]\nname = \"team-a\"\nbearer_token = {reference}\n"),
        );
        let out = env.run(&["config", "check"]).await;
        assert!(!out.status.success(), "{reference}");
        let err = stderr(&out);
        assert!(err.contains(expect), "{reference}: {err}");
        assert!(
            err.contains("team-a") || err.contains("accounts"),
            "{reference}: {err}"
        );
        assert!(!err.contains("sk-inline-literal"), "{err}");
    }
}

#[tokio::test]
async fn config_errors_name_the_key_and_the_file() {
    let env = Env::new();
    for (daemon, rest, expect) in [
        (
            "sync_shedule = \"0 * * * * *\"",
            "",
            "ftguard.toml: daemon.sync_shedule: unknown key `sync_shedule` (did you mean `sync_schedule`?)",
        ),
        (
            "max_cancels_per_pass = \"ten\"",
            "",
            "daemon.max_cancels_per_pass: expected a whole number (0 or more), found the string \"ten\"",
        ),
        (
            "",
            "[[accounts]]\nname = \"x\"\napi_key = { env = \"K\" }",
            "accounts[0].api_key: unknown key `api_key` (an account's key is `bearer_token",
        ),
        (
            "sync_schedule = \"every minute\"",
            "",
            "daemon.sync_schedule",
        ),
        (
            "",
            "[[accounts]]\nname = \"x\"\ntimeout = \"5s\"",
            "accounts[0].timeout: unknown key `timeout`; known keys here: name, base_url,",
        ),
        (
            "",
            "[[accounts]]\nname = \"x\"\nrequest_timeout = \"5 parsecs\"",
            "request_timeout",
        ),
        (
            "",
            "[[policies]]\nname = \"p\"\nkind = \"max_runtme\"\nlimit = \"1h\"",
            "max_runtme",
        ),
        (
            "",
            "[[policies]]\nname = \"p\"\nkind = \"max_runtime\"\nlimit = \"1h\"\n[[policies]]\nname = \"p\"\nkind = \"max_runtime\"\nlimit = \"2h\"",
            "duplicate policy name",
        ),
        (
            "",
            "[[policies]]\nname = \"p\"\nkind = \"max_runtime\"\nlimit = \"1h\"\nmatch = { accounts = [\"ghost\"] }",
            "ghost",
        ),
    ] {
        env.write_config(daemon, rest);
        let out = env.run(&["config", "check"]).await;
        assert!(!out.status.success(), "{expect}");
        let err = stderr(&out);
        assert!(err.contains(expect), "{expect}: {err}");
        assert!(err.contains("ftguard.toml"), "names the file: {err}");
    }
    // A missing --config file is an error, not silently the defaults.
    let out = env
        .run(&["--config", "/nonexistent/ftguard.toml", "config", "check"])
        .await;
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_bad_environment_override_names_the_variable() {
    let env = Env::new().env("FTGUARD_DAEMON__DRY_RUN", "maybe");
    env.write_config("", "");
    let out = env.run(&["config", "check"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains(
            "environment variable FTGUARD_DAEMON__DRY_RUN: expected a boolean, found the string \"maybe\""
        ),
        "{err}"
    );
}

#[tokio::test]
async fn environment_overrides_the_file() {
    let env = Env::new()
        .env("FTGUARD_DAEMON__DRY_RUN", "true")
        .env("FTGUARD_DAEMON__MAX_CANCELS_PER_PASS", "3");
    env.write_config("", "");
    let out = env.ok(&["config", "check"]).await;
    assert!(
        out.contains("dry_run = true") && out.contains("max_cancels_per_pass = 3"),
        "{out}"
    );
    // Valid, but it will do nothing: said, without failing.
    assert!(
        out.contains("# warning: no [[accounts]]: there is nothing to watch"),
        "{out}"
    );
}

#[tokio::test]
async fn reading_the_database_needs_no_credentials() {
    let now = now();
    let sim = Sim::start(vec![SimJob::in_status(
        "ftjob-read",
        "running",
        3 * 3600,
        now,
    )])
    .await
    .unwrap();
    sim.require_header("authorization", "Bearer sk-service-only");
    let rest = |base: &str| {
        format!(
            "[[accounts]]\nname = \"prod\"\nbase_url = \"{base}\"\nbearer_token = {{ env = \"FT_SERVICE_KEY\" }}\n\n\
             [[notifiers]]\nkind = \"webhook\"\nurl = {{ env = \"FT_SERVICE_HOOK\" }}\n\n\
             [[policies]]\nname = \"runtime-1h\"\nkind = \"max_runtime\"\nlimit = \"1h\"\n"
        )
    };
    let service = Env::new()
        .env("FT_SERVICE_KEY", "sk-service-only")
        .env("FT_SERVICE_HOOK", "http://127.0.0.1:9/hook");
    service.write_config("", &rest(&sim.base_url()));
    service.ok(&["sync"]).await;

    // The operator beside the service has neither variable.
    let operator = Env {
        dir: service.dir,
        envs: Vec::new(),
    };
    let jobs = operator.ok(&["jobs"]).await;
    assert!(jobs.contains("ftjob-read"), "{jobs}");
    let show = operator.ok(&["show", "ftjob-read"]).await;
    assert!(show.contains("running"), "{show}");
    assert!(
        show.contains("  n_epochs        auto\n"),
        "unquoted: {show}"
    );
    // No cost policy: the projection is missing for good, and `show` says why.
    assert!(
        show.contains("cost            ? (training files are counted only while a max_job_cost"),
        "{show}"
    );
    operator.ok(&["actions"]).await;
    operator.ok(&["spend"]).await;
    let plan = operator.ok(&["plan", "--offline"]).await;
    assert!(
        plan.contains("would cancel") && plan.contains("ftjob-read"),
        "{plan}"
    );

    // What talks to the API still needs its key, and says which.
    for args in [
        &["sync"][..],
        &["plan"],
        &["run", "--once"],
        &["config", "check"],
    ] {
        let out = operator.run(args).await;
        assert!(!out.status.success(), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains("FT_SERVICE_KEY"), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn config_check_online_asks_each_account_once_and_names_what_failed() {
    let sim = Sim::start(vec![SimJob::in_status(
        "ftjob-newest",
        "running",
        60,
        now(),
    )])
    .await
    .unwrap();
    sim.require_header("authorization", "Bearer right");
    // A web server that is not a fine-tuning API: what a wrong base_url reaches.
    let web = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(404).set_body_raw(
            "<html><head><title>Not Found</title></head><body>nothing here</body></html>",
            "text/html",
        ))
        .mount(&web)
        .await;
    let env = Env::new()
        .env("FT_TEST_RIGHT", "right")
        .env("FT_TEST_WRONG", "sk-wrong-value-xyz");
    let base = sim.base_url();
    let good = format!(
        "[[accounts]]\nname = \"good\"\nbase_url = \"{base}\"\nbearer_token = {{ env = \"FT_TEST_RIGHT\" }}\n"
    );
    env.write_config(
        "",
        &format!(
            "{good}[[accounts]]\nname = \"wrong-key\"\nbase_url = \"{base}\"\nbearer_token = {{ env = \"FT_TEST_WRONG\" }}\n[[accounts]]\nname = \"no-api\"\nbase_url = \"{}/\"\n",
            web.uri()
        ),
    );
    let out = env.run(&["config", "check", "--online"]).await;
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}{}", stderr(&out));
    assert!(
        text.contains("#   good: OK, newest job ftjob-newest (running"),
        "{text}"
    );
    assert!(
        text.contains(
            "#   wrong-key: FAILED: account \"wrong-key\": GET /fine_tuning/jobs returned 401"
        ) && text.contains("(sent bearer_token from env FT_TEST_WRONG)"),
        "{text}"
    );
    assert!(
        text.contains("#   no-api: FAILED:")
            && text.contains("an HTML page titled \"Not Found\", not an API answer")
            && text.contains("check base_url"),
        "{text}"
    );
    assert!(!text.contains("sk-wrong-value-xyz"), "{text}");
    // One request each, no retries, and nothing stored.
    assert_eq!(hits(&sim, "/fine_tuning/jobs"), 2);
    assert_eq!(web.received_requests().await.unwrap().len(), 1);
    assert!(
        !env.db().exists(),
        "config check must not create the database"
    );

    // Every account answering: success, and without --online no request at all.
    env.write_config("", &good);
    let out = env.run(&["config", "check", "--online"]).await;
    assert!(out.status.success(), "{}", stdout(&out));
    env.ok(&["config", "check"]).await;
    assert_eq!(hits(&sim, "/fine_tuning/jobs"), 3);
}

/// Behind some gateways a wrong or missing key is a 400 or 422, not a 401: the credentials sent
/// are named as for a 401 when the message speaks of them, and not for other bad requests.
#[tokio::test]
async fn a_bad_key_answered_400_or_422_names_the_credentials_sent() {
    let server = wiremock::MockServer::start().await;
    for (status, message, hinted) in [
        (400, "Invalid API key provided", true),
        (
            422,
            "x-portkey-api-key header is required for authentication",
            true,
        ),
        (400, "limit must be at most 100", false),
    ] {
        server.reset().await;
        wiremock::Mock::given(wiremock::matchers::method("GET"))
            .respond_with(
                wiremock::ResponseTemplate::new(status)
                    .set_body_json(serde_json::json!({"error": {"message": message}})),
            )
            .mount(&server)
            .await;
        let env = Env::new().env("FT_TEST_KEY", "sk-some-key");
        env.write_config(
            "",
            &format!(
                "[[accounts]]\nname = \"gw\"\nbase_url = \"{}/v1\"\nmax_attempts = 1\nbearer_token = {{ env = \"FT_TEST_KEY\" }}\n",
                server.uri()
            ),
        );
        let out = env.run(&["sync"]).await;
        let text = format!("{}{}", stdout(&out), stderr(&out));
        assert!(!out.status.success(), "{text}");
        assert_eq!(
            text.contains("(sent bearer_token from env FT_TEST_KEY)"),
            hinted,
            "{status} {message}: {text}"
        );
    }
}
