//! Output piped into a reader that stops early (`ftguard jobs | head -3`): ftguard stops
//! quietly, as other Unix tools do, instead of panicking (a crash with `panic = "abort"`).

mod common;

use common::*;

#[tokio::test]
async fn a_reader_that_stops_early_ends_the_listing_quietly() {
    let now = now();
    let jobs = (0..2_000)
        .map(|n| SimJob::in_status(&ftguard::sim::history_id(n), "succeeded", 2 * H, now))
        .collect();
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    env.ok(&["sync"]).await;

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
