//! Output piped into a reader that stops early (`ftguard jobs | head -3`): ftguard stops
//! quietly, as other Unix tools do, instead of panicking (a crash with `panic = "abort"`).

use crate::common::*;

/// 2,000 finished jobs, synced: far more output than a pipe holds.
async fn synced_history() -> (Sim, Env) {
    let now = now();
    let jobs = (0..2_000)
        .map(|n| SimJob::in_status(&ftguard::sim::history_id(n), "succeeded", 2 * H, now))
        .collect();
    let (sim, env) = sim_env(jobs).await;
    env.ok(&["sync"]).await;
    (sim, env)
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_the_listing_quietly() {
    let (_sim, env) = synced_history().await;

    // 2,000 lines are far more than a pipe holds, so writing must meet the closed end even
    // if the first lines slipped in before the reader went away.
    for args in [&["jobs"][..], &["jobs", "--json"]] {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
            .arg("--config")
            .arg(env.config_path())
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().await.unwrap();
        let err = stderr(&out);
        assert!(
            out.status.success(),
            "ftguard {args:?}: {} {err}",
            out.status
        );
        assert!(!err.contains("panicked"), "ftguard {args:?}: {err}");
    }
}

/// Checkpoints the database with the sqlite3 CLI after a small write; true when no reader held
/// it back (`busy` = 0).
fn checkpoint_went_through(db: &std::path::Path) -> bool {
    sqlite3(
        db,
        "UPDATE jobs SET updated_at = updated_at + 1 WHERE seq = (SELECT MIN(seq) FROM jobs);
         PRAGMA wal_checkpoint(TRUNCATE);",
    )
    .starts_with("0|")
}

#[tokio::test]
async fn a_reader_that_pauses_does_not_hold_back_the_database() {
    let (_sim, env) = synced_history().await;
    assert!(checkpoint_went_through(&env.db()));

    // `ftguard jobs --json | less`, and nobody scrolls: ~2 MB of output stuck at a full pipe.
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .arg("--config")
        .arg(env.config_path())
        .args(["jobs", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    tokio::io::AsyncReadExt::read_exact(&mut stdout, &mut first)
        .await
        .unwrap();
    assert_eq!(&first, b"[");

    // While it waits for its reader, it must not hold a snapshot: the daemon's checkpoints
    // go on. (Tried for a while: between two of its reads it may briefly hold one.)
    let db = env.db();
    let mut through = false;
    for _ in 0..50 {
        if tokio::task::spawn_blocking({
            let db = db.clone();
            move || checkpoint_went_through(&db)
        })
        .await
        .unwrap()
        {
            through = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        child.try_wait().unwrap().is_none(),
        "the listing ended: the pipe never filled"
    );
    assert!(
        through,
        "a paused `ftguard jobs` kept the write-ahead log from being checkpointed"
    );

    // And the listing is still whole once read.
    let mut rest = Vec::new();
    tokio::io::AsyncReadExt::read_to_end(&mut stdout, &mut rest)
        .await
        .unwrap();
    assert!(child.wait().await.unwrap().success());
    let listed: serde_json::Value = serde_json::from_slice(&[&first[..], &rest].concat()).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2_000);
}
