//! A database written by an earlier ftguard (schema 3: jobs clustered by id, history keyed by
//! account and id) is upgraded in place by the real binary: nothing recorded is lost, and the
//! history keeps growing afterwards.

use crate::common::*;

/// Builds a schema-3 database with the first three migrations exactly as they shipped.
async fn schema3_database(path: &std::path::Path) -> sqlx::SqlitePool {
    database_up_to(path, 3).await
}

/// A database with the migrations up to number `last` only, as an earlier ftguard left it.
async fn database_up_to(path: &std::path::Path, last: u32) -> sqlx::SqlitePool {
    let old = tempfile::tempdir().unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let number: u32 = name[..4].parse().unwrap();
        if number <= last {
            std::fs::copy(dir.join(&name), old.path().join(&name)).unwrap();
        }
    }
    let opts = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
    sqlx::migrate::Migrator::new(old.path())
        .await
        .unwrap()
        .run(&pool)
        .await
        .unwrap();
    pool
}

#[tokio::test]
async fn schema3_database_is_upgraded_without_losing_history() {
    let now = now();
    let (sim, env) = sim_env(vec![
        SimJob::in_status("ftjob-upgraded", "running", 2 * H, now),
        SimJob::in_status("ftjob-brand-new", "queued", 60, now),
    ])
    .await;

    // What an earlier ftguard recorded: the job while it was queued, its history, an action.
    let pool = schema3_database(&env.db()).await;
    let mut queued = sim.job_json("ftjob-upgraded").unwrap();
    queued["status"] = "queued".into();
    sqlx::query(
        "INSERT INTO jobs (account, id, model, status, created_at, raw, first_seen_at, updated_at)
         VALUES ('sim', 'ftjob-upgraded', ?, 'queued', ?, ?, ?, ?)",
    )
    .bind(queued["model"].as_str().unwrap())
    .bind(now - 2 * H)
    .bind(queued.to_string())
    .bind(now - 2 * H)
    .bind(now - H)
    .execute(&pool)
    .await
    .unwrap();
    for (from, to, at) in [
        (None, "validating_files", now - 2 * H),
        (Some("validating_files"), "queued", now - H),
    ] {
        sqlx::query("INSERT INTO status_transitions (account, job_id, from_status, to_status, observed_at) VALUES ('sim', 'ftjob-upgraded', ?, ?, ?)")
            .bind(from)
            .bind(to)
            .bind(at)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query("INSERT INTO actions (account, job_id, policy, action, reason, outcome, requested_at) VALUES ('sim', 'ftjob-upgraded', 'q', 'notify', 'queued too long', 'succeeded', ?)")
        .bind(now - H)
        .execute(&pool)
        .await
        .unwrap();
    // A budget threshold, recorded then as an action with a made-up account and job id.
    sqlx::query("INSERT INTO actions (account, job_id, policy, action, reason, outcome, requested_at) VALUES ('budget', 'team-a@example.com@1793491200:80%', 'monthly', 'notify', 'group team-a@example.com reached 80%', 'notified', ?)")
        .bind(now - H)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    // The upgraded file shows everything that was there.
    let shown = env.json(&["show", "ftjob-upgraded", "--json"]).await;
    assert_eq!(shown["status"], "queued");
    let history = shown["status_history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{shown}");
    assert_eq!(history[1]["from"], "validating_files");
    assert_eq!(history[1]["to"], "queued");
    assert_eq!(shown["actions"][0]["reason"], "queued too long");
    // The threshold is a budget notice now, no longer among the actions on jobs.
    let actions = env.json(&["actions", "--json"]).await;
    assert_eq!(actions.as_array().unwrap().len(), 1, "{actions:#}");
    assert_eq!(
        sqlite3(
            &env.db(),
            "SELECT policy, grp, period_start, percent, reached_at FROM budget_notices"
        )
        .trim(),
        format!("monthly|team-a@example.com|1793491200|80|{}", now - H)
    );

    // A sync appends to that history (queued -> running) and records the new job's first sight.
    let summary = env.json(&["sync", "--json"]).await;
    let account = &summary[0]["summary"];
    assert_eq!(account["new"], 1, "{summary}");
    assert_eq!(account["changed"], 1, "{summary}");
    let shown = env.json(&["show", "ftjob-upgraded", "--json"]).await;
    let history = shown["status_history"].as_array().unwrap();
    assert_eq!(history.len(), 3, "{shown}");
    assert_eq!(history[2]["from"], "queued");
    assert_eq!(history[2]["to"], "running");
    let fresh = env.json(&["show", "ftjob-brand-new", "--json"]).await;
    assert_eq!(fresh["status_history"].as_array().unwrap().len(), 1);
    assert!(fresh["status_history"][0]["from"].is_null());

    // Jobs are found by (created_at, account, id): no index keyed by the random ids is left
    // (migration 0011), the two indexes that only ordered listings are gone (0014), and the
    // rebuilt file is sound.
    let indexes = sqlite3(
        &env.db(),
        "SELECT name || ':' || sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'jobs' ORDER BY name",
    );
    assert!(
        indexes.contains(
            "jobs_identity:CREATE UNIQUE INDEX jobs_identity ON jobs (created_at, account, id)"
        ),
        "{indexes}"
    );
    assert!(!indexes.contains("jobs_by_account"), "{indexes}");
    assert!(!indexes.contains("jobs_by_created"), "{indexes}");
    assert!(!indexes.contains("sqlite_autoindex"), "{indexes}");
    assert_eq!(sqlite3(&env.db(), "PRAGMA integrity_check").trim(), "ok");

    // A sync that changes nothing adds no history.
    let again = env.json(&["sync", "--json"]).await;
    assert_eq!(again[0]["summary"]["new"], 0, "{again}");
    assert_eq!(again[0]["summary"]["changed"], 0, "{again}");
    let shown = env.json(&["show", "ftjob-upgraded", "--json"]).await;
    assert_eq!(shown["status_history"].as_array().unwrap().len(), 3);
}

/// Rows an earlier ftguard stored with a gateway's millisecond times (read as seconds then) are
/// converted at the upgrade (migration 0012), and the job is then within reach of its limits.
#[tokio::test]
async fn millisecond_times_stored_before_are_converted() {
    let now = now();
    let env = Env::new();
    env.write_config(
        "",
        "[[accounts]]\nname = \"vertex\"\nbase_url = \"http://127.0.0.1:9/v1\"\n\n\
         [[policies]]\nname = \"runtime-6h\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    let pool = database_up_to(&env.db(), 11).await;
    let created_ms = (now - 7 * H) * 1000 + 5;
    let raw = serde_json::json!({"id": "6112", "object": "finetune", "status": "running",
        "model": "gemini-2.0-flash-001", "created_at": created_ms, "finished_at": null});
    sqlx::query(
        "INSERT INTO jobs (account, id, model, status, created_at, estimated_finish, last_step_at, raw, first_seen_at, updated_at)
         VALUES ('vertex', '6112', 'gemini-2.0-flash-001', 'running', ?1, ?2, ?3, ?4, ?5, ?5)",
    )
    .bind(created_ms)
    .bind((now + H) * 1000)
    .bind((now - 60) * 1000)
    .bind(raw.to_string())
    .bind(now - 7 * H)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO actions (account, job_id, policy, action, reason, outcome, requested_at, response_finished_at) VALUES ('vertex', '5007', 'p', 'cancel', 'r', 'succeeded', ?1, ?2)")
        .bind(now - H)
        .bind((now - H) * 1000 + 999)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let plan = env.json(&["plan", "--offline", "--json"]).await;
    assert_eq!(plan[0]["job_id"], "6112", "{plan:#}");
    assert_eq!(plan[0]["action"], "cancel", "{plan:#}");
    assert_eq!(
        sqlite3(
            &env.db(),
            "SELECT created_at, estimated_finish, last_step_at FROM jobs; SELECT response_finished_at FROM actions"
        )
        .trim(),
        format!("{}|{}|{}\n{}", now - 7 * H, now + H, now - 60, now - H)
    );
}

/// Rows stored before migration 0016 are given their `detail` from their payload: each reads
/// back exactly as the API client parses that payload (the store no longer parses it), and a
/// row edited into something that is not JSON stops neither the upgrade nor the other rows.
#[tokio::test]
async fn job_detail_written_at_the_upgrade_reads_as_the_payload_parses() {
    use ftguard::provider::payload::parse_job_str;
    let base = serde_json::json!({"object": "fine_tuning.job", "model": "gpt-4o-mini-2024-07-18",
        "created_at": 1_700_000_000, "status": "running", "training_file": "file-1"});
    let variants = [
        serde_json::json!({"hyperparameters": {"n_epochs": "auto"}}),
        serde_json::json!({"hyperparameters": {"n_epochs": 3}, "fine_tuned_model": "ft:m:o::x",
            "validation_file": "file-v", "user_provided_suffix": "run-7"}),
        serde_json::json!({"hyperparameters": {"n_epochs": "auto"},
            "method": {"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 4}}}}),
        serde_json::json!({"hyperparameters": {"n_epochs": "auto"},
            "method": {"type": "dpo", "dpo": {"hyperparameters": {"n_epochs": "auto"}}}}),
        serde_json::json!({"method": {"type": "reinforcement",
            "supervised": {"hyperparameters": {"n_epochs": null}},
            "reinforcement": {"hyperparameters": {"n_epochs": "2"}}}}),
        serde_json::json!({"hyperparameters": {"n_epochs": null}, "method": {"type": "dpo"}}),
        serde_json::json!({"hyperparameters": {"n_epochs": 2.5}}),
        serde_json::json!({"metadata": {"team": "search", "n": 3, "ok": true, "none": null,
            "nested": {"a": [1, 2]}, "x": 1.5}}),
        serde_json::json!({"metadata": null, "error": {}}),
        serde_json::json!({"error": ""}),
        serde_json::json!({"error": {"code": "invalid_training_file", "message": "bad line 3"},
            "status": "failed", "trained_tokens": 120}),
        serde_json::json!({"error": "quota"}),
        serde_json::json!({"error": null, "fine_tuned_model": null}),
    ];
    let env = Env::new();
    let pool = database_up_to(&env.db(), 15).await;
    let mut wanted = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        let mut payload = base.clone();
        payload["id"] = format!("ftjob-{i}").into();
        for (k, v) in variant.as_object().unwrap() {
            payload[k] = v.clone();
        }
        let text = payload.to_string();
        let job = parse_job_str(&text).unwrap();
        sqlx::query(
            "INSERT INTO jobs (account, id, model, status, created_at, finished_at, trained_tokens, training_file, raw, first_seen_at, updated_at)
             VALUES ('a', ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?4, ?4)",
        )
        .bind(job.id.as_str())
        .bind(&job.model)
        .bind(job.status.as_str())
        .bind(job.created_at)
        .bind(job.finished_at)
        .bind(job.trained_tokens)
        .bind(&job.training_file)
        .bind(&text)
        .execute(&pool)
        .await
        .unwrap();
        wanted.push(job);
    }
    sqlx::query(
        "INSERT INTO jobs (account, id, model, status, created_at, raw, first_seen_at, updated_at)
         VALUES ('a', 'ftjob-edited', 'm', 'running', 1700000000, 'not json {', 1700000000, 1700000000)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;

    let store = ftguard::store::Store::open(&env.db()).await.unwrap();
    for want in &wanted {
        let got = store.job(Some("a"), want.id.as_str()).await.unwrap();
        assert_eq!(got.len(), 1, "{}", want.id);
        assert_eq!(&got[0].job, want, "{}", want.raw);
    }
    assert!(
        store
            .job(Some("a"), "ftjob-edited")
            .await
            .unwrap()
            .is_empty(),
        "an unreadable row is skipped"
    );
}
