//! Bad input never panics and always names the culprit: property tests over the configuration
//! and payload parsers, and databases that cannot be used.

use crate::common::*;
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, .. ProptestConfig::default() })]

    /// Arbitrary TOML-ish text: an error (never a panic), or a valid configuration.
    #[test]
    fn config_parser_never_panics(text in "(\\[\\[?(daemon|accounts|policies|notifiers|pricing)\\]\\]?\n|[a-z_]{1,12} = (\"[a-z0-9 *./:-]{0,12}\"|[0-9]{1,4}|true|\\{ env = \"X\" \\}|\\[\"a\"\\])\n){0,12}") {
        let parsed: Result<ftguard::config::RawConfig, _> = figment::Figment::new()
            .merge(<figment::providers::Toml as figment::providers::Format>::string(&text))
            .extract();
        if let Ok(raw) = parsed {
            let _ = ftguard::config::Config::from_raw(raw, None);
        }
        // Read from a file as users do: any error names that file.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ftguard.toml");
        std::fs::write(&path, &text).unwrap();
        if let Err(e) = ftguard::config::Config::load(Some(&path)) {
            let message = e.to_string();
            prop_assert!(message.contains(&path.display().to_string()), "{text}\n-> {message}");
        }
    }

    /// Arbitrary JSON values as job payloads and pages: parsed or rejected, never a panic.
    #[test]
    fn payload_parser_never_panics(v in arb_json()) {
        let _ = ftguard::provider::payload::parse_job(v.clone());
        let _ = ftguard::provider::payload::parse_job_page(serde_json::json!({"data": [v.clone()], "has_more": true}));
        let _ = ftguard::provider::payload::parse_job_page(v.clone());
        let _ = ftguard::provider::payload::parse_events(&v);
    }

    /// Job-shaped objects with fields of the wrong type are rejected with the field's name.
    #[test]
    fn wrong_typed_fields_are_named(field in prop::sample::select(vec!["id", "created_at", "finished_at", "trained_tokens", "estimated_finish"])) {
        let mut job = serde_json::json!({"id": "ftjob-1", "model": "m", "status": "running", "created_at": 1});
        job[field] = serde_json::json!({"nested": [1, 2]});
        let err = ftguard::provider::payload::parse_job(job).unwrap_err();
        prop_assert!(err.0.contains("invalid type") || err.0.contains(field), "{}", err);
    }
}

fn arb_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(serde_json::Value::from),
        prop::sample::select(vec![
            "ftjob-1",
            "running",
            "auto",
            "",
            "cancelled",
            "gpt-4o"
        ])
        .prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "id",
                    "status",
                    "created_at",
                    "model",
                    "data",
                    "has_more",
                    "hyperparameters",
                    "n_epochs",
                    "metadata",
                    "method",
                    "type",
                    "supervised",
                    "finished_at",
                    "trained_tokens",
                    "error"
                ]),
                inner,
                0..6
            )
            .prop_map(|m| serde_json::Value::Object(
                m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

#[tokio::test]
async fn a_database_in_a_read_only_directory_is_a_clear_error() {
    // /proc refuses new files to every user, root included (directory permissions do not
    // stop root, so a chmod-ed temp directory would prove nothing under CI).
    let env = Env::new();
    std::fs::write(
        env.config_path(),
        "[daemon]\ndatabase = \"/proc/ftguard-test.db\"\n",
    )
    .unwrap();
    for cmd in [&["jobs"][..], &["run", "--once"][..]] {
        let out = env.run(cmd).await;
        assert!(!out.status.success(), "{cmd:?}");
        let err = stderr(&out);
        assert!(
            err.contains("/proc/ftguard-test.db") && !err.contains("panicked"),
            "{cmd:?}: {err}"
        );
    }
}

#[tokio::test]
async fn missing_directory_and_corrupt_file_are_clear_errors_that_touch_nothing() {
    let env = Env::new();
    std::fs::write(
        env.config_path(),
        "[daemon]\ndatabase = \"/nonexistent-ftguard-dir/x.db\"\n",
    )
    .unwrap();
    let out = env.run(&["jobs"]).await;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("/nonexistent-ftguard-dir"),
        "{}",
        stderr(&out)
    );

    let corrupt = env.dir.path().join("corrupt.db");
    let junk: Vec<u8> = (0..20_000u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&corrupt, &junk).unwrap();
    std::fs::write(
        env.config_path(),
        format!("[daemon]\ndatabase = {:?}\n", corrupt.display().to_string()),
    )
    .unwrap();
    for cmd in [&["jobs"][..], &["run", "--once"][..], &["sync"][..]] {
        let out = env.run(cmd).await;
        assert!(!out.status.success(), "{cmd:?}");
        assert!(
            stderr(&out).contains("corrupt.db") && stderr(&out).contains("not an SQLite database"),
            "{cmd:?}: {}",
            stderr(&out)
        );
        assert!(!stderr(&out).contains("panicked"));
    }
    assert_eq!(
        std::fs::read(&corrupt).unwrap(),
        junk,
        "nothing overwritten"
    );

    // An ftguard database damaged on disk: said so, with how to recover it, and left as is.
    let damaged = env.dir.path().join("damaged.db");
    std::fs::write(
        env.config_path(),
        format!("[daemon]\ndatabase = {:?}\n", damaged.display().to_string()),
    )
    .unwrap();
    env.app().await.store().close().await; // creates and migrates
    // Into the main file, where damage on disk would be.
    sqlite3(&damaged, "PRAGMA wal_checkpoint(TRUNCATE);");
    let mut bytes = std::fs::read(&damaged).unwrap();
    bytes[4096..4 * 4096].fill(0xff);
    std::fs::write(&damaged, &bytes).unwrap();
    for cmd in [&["jobs"][..], &["status"][..], &["sync"][..]] {
        let out = env.run(cmd).await;
        assert!(!out.status.success(), "{cmd:?}");
        assert!(
            stderr(&out).contains("damaged.db")
                && stderr(&out).contains("the file is damaged")
                && stderr(&out).contains(".recover"),
            "{cmd:?}: {}",
            stderr(&out)
        );
    }
    assert_eq!(
        std::fs::read(&damaged).unwrap(),
        bytes,
        "nothing overwritten"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_ftguard_is_refused_untouched() {
    let env = Env::new();
    env.write_config("", "");
    env.app().await.store().close().await; // creates and migrates
    // A newer ftguard applied a migration this one does not know.
    let db = env.db();
    sqlite3(
        &db,
        "INSERT INTO _sqlx_migrations (version, description, installed_on, success, checksum, execution_time) VALUES (99990101000000, 'from the future', CURRENT_TIMESTAMP, 1, x'00', 0);",
    );
    let before = std::fs::read(&db).unwrap();
    let out = env.run(&["jobs"]).await;
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("newer ftguard") && err.contains("ftguard.db"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(&db).unwrap(),
        before,
        "the file was left untouched"
    );
}

#[tokio::test]
async fn cli_arguments_are_checked() {
    let env = Env::new();
    env.write_config("", "");
    // Commands that only read do not create the database: a missing one is named.
    for args in [
        &["jobs"][..],
        &["show", "ftjob-x"][..],
        &["actions"][..],
        &["spend"][..],
        &["status"][..],
        &["plan", "--offline"][..],
    ] {
        let out = env.run(args).await;
        assert!(
            !out.status.success() && stderr(&out).contains("ftguard.db does not exist yet"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    assert!(!env.db().exists());
    env.app().await.store().close().await;
    for (args, expect) in [
        (&["show", "ftjob-nope"][..], "ftjob-nope"),
        (
            &["cancel", "ftjob-x", "--reason", "r", "--account", "ghost"][..],
            "ghost",
        ),
        (&["spend", "--period", "fortnight"][..], "fortnight"),
        (&["jobs", "--colour"][..], "--colour"),
        (&["cancel", "ftjob-x"][..], "--reason"),
        (
            &["plan", "--offline", "--upcoming", "soon"][..],
            "not a duration (expected number at 0); examples: 12h",
        ),
        (
            &["actions", "--outcome", "cancelled"][..],
            "possible values: pending, succeeded",
        ),
        (&["resume", "ftjob-nope", "--account", "ghost"][..], "ghost"),
    ] {
        let out = env.run(args).await;
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(expect), "{args:?}: {}", stderr(&out));
    }
}

#[tokio::test]
async fn a_filter_matching_nothing_says_what_is_stored() {
    let now = now();
    let (_sim, env) = sim_env(vec![
        SimJob::in_status("ftjob-run", "running", H, now),
        SimJob::in_status("ftjob-done", "succeeded", 3 * H, now),
    ])
    .await;
    env.app().await.store().close().await;
    let empty = env.ok(&["jobs"]).await;
    assert!(empty.contains("no jobs stored yet"), "{empty}");

    env.ok(&["sync"]).await;
    // A mistyped status is not "nothing stored": the answer names what is.
    let out = env.ok(&["jobs", "--status", "runing"]).await;
    assert!(
        out.contains("no stored job matches --status runing"),
        "{out}"
    );
    assert!(out.contains("stored statuses: running, succeeded"), "{out}");
    assert!(out.contains("stored accounts: sim"), "{out}");
    let listed = env.ok(&["jobs", "--status", "running"]).await;
    assert!(
        listed.contains("ftjob-run") && !listed.contains("ftjob-done"),
        "{listed}"
    );
}

#[tokio::test]
async fn jobs_and_actions_take_since_and_limit() {
    let now = now();
    let (_sim, env) = sim_env(vec![
        SimJob::in_status("ftjob-hour", "running", H, now),
        SimJob::in_status("ftjob-2d", "succeeded", 48 * H, now)
            .with_model("gpt-4.1-mini-2025-04-14"),
        SimJob::in_status("ftjob-10d", "succeeded", 240 * H, now)
            .with_model("gpt-4.1-mini-2025-04-14"),
    ])
    .await;
    env.ok(&["sync"]).await;
    let ids = |v: serde_json::Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|j| j["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        ids(env.json(&["jobs", "--since", "3d", "--json"]).await),
        ["ftjob-hour", "ftjob-2d"]
    );
    assert_eq!(
        ids(env.json(&["jobs", "--limit", "2", "--json"]).await),
        ["ftjob-hour", "ftjob-2d"]
    );
    assert_eq!(
        ids(env
            .json(&["jobs", "--since", "3d", "--limit", "1", "--json"])
            .await),
        ["ftjob-hour"]
    );
    let day = chrono::DateTime::from_timestamp(now - 5 * 24 * H, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        ids(env.json(&["jobs", "--since", &day, "--json"]).await).len(),
        2
    );
    let none = env.ok(&["jobs", "--since", "30m"]).await;
    assert!(none.contains("no stored job matches --since "), "{none}");
    // --model takes a policy's globs; --limit counts the jobs that match.
    assert_eq!(
        ids(env
            .json(&["jobs", "--model", "gpt-4.1-mini*", "--limit", "1", "--json"])
            .await),
        ["ftjob-2d"]
    );
    assert_eq!(
        ids(env
            .json(&["jobs", "--model", "gpt-4o-mini*", "--json"])
            .await),
        ["ftjob-hour"]
    );
    let none = env.ok(&["jobs", "--model", "davinci*"]).await;
    assert!(
        none.contains("no stored job matches --model davinci*"),
        "{none}"
    );

    let zero = env.run(&["jobs", "--limit", "0"]).await;
    assert!(!zero.status.success() && stderr(&zero).contains("--limit"));

    let bad = env.run(&["jobs", "--since", "yesterday"]).await;
    assert!(!bad.status.success());
    let err = stderr(&bad);
    assert!(
        err.contains("--since") && err.contains("\"yesterday\""),
        "{err}"
    );

    env.ok(&["cancel", "ftjob-hour", "--reason", "test"]).await;
    assert_eq!(
        env.json(&["actions", "--since", "1h", "--json"])
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let future = chrono::DateTime::from_timestamp(now + 2 * 24 * H, 0)
        .unwrap()
        .format("%Y-%m-%d")
        .to_string();
    assert_eq!(
        env.json(&["actions", "--since", &future, "--json"]).await,
        serde_json::json!([])
    );
}
