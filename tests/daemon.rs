//! The real daemon as a process: sd_notify READY/WATCHDOG/STATUS, SIGHUP reloads (a broken
//! file keeps the running configuration), SIGTERM exits 0; and the demo.

mod common;
use common::*;
use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

fn signal(pid: u32, sig: &str) {
    let ok = std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// Reads datagrams until one contains `want` or the deadline passes.
fn wait_for(sock: &UnixDatagram, want: &str, within: Duration, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if let Ok(n) = sock.recv(&mut buf) {
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            let hit = msg.contains(want);
            seen.push(msg);
            if hit {
                return true;
            }
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_reload_and_clean_stop() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "sync_schedule = \"*/1 * * * * *\"",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();

    let stderr_path = env.dir.path().join("stderr.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .current_dir(env.dir.path())
        .args(["--config", env.config_path().to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env_remove("WATCHDOG_PID")
        .env("FTGUARD_LOG", "info")
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut seen = Vec::new();
    assert!(
        wait_for(&sock, "READY=1", Duration::from_secs(15), &mut seen),
        "{seen:?}"
    );
    assert!(
        wait_for(&sock, "WATCHDOG=1", Duration::from_secs(5), &mut seen),
        "{seen:?}"
    );
    assert!(
        wait_for(
            &sock,
            "STATUS=synced 1/1",
            Duration::from_secs(5),
            &mut seen
        ),
        "{seen:?}"
    );

    // The policy acted through the daemon.
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.status("ftjob-1").as_deref() != Some("cancelled") && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(sim.cancel_requests("ftjob-1"), 1);

    // A broken file on SIGHUP: logged, the daemon keeps running on the old configuration.
    std::fs::write(
        env.config_path(),
        "[daemon]\nsync_schedule = \"nonsense\"\n",
    )
    .unwrap();
    signal(pid, "-HUP");
    assert!(
        wait_for(&sock, "RELOADING=1", Duration::from_secs(5), &mut seen),
        "{seen:?}"
    );
    assert!(
        wait_for(&sock, "READY=1", Duration::from_secs(5), &mut seen),
        "{seen:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        child.try_wait().unwrap().is_none(),
        "daemon died on a bad reload"
    );
    let syncs_before = sim
        .requests()
        .iter()
        .filter(|r| r.path == "/fine_tuning/jobs")
        .count();
    assert!(
        wait_for(&sock, "STATUS=synced", Duration::from_secs(5), &mut seen),
        "still syncing on the old config: {seen:?}"
    );
    assert!(
        sim.requests()
            .iter()
            .filter(|r| r.path == "/fine_tuning/jobs")
            .count()
            > syncs_before
    );
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    assert!(
        log.contains("reload refused") && log.contains("sync_schedule"),
        "{log}"
    );

    // SIGTERM: STOPPING=1 and exit 0 within seconds.
    let t = Instant::now();
    signal(pid, "-TERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(10), "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(status.success(), "{status}");
    assert!(
        wait_for(&sock, "STOPPING=1", Duration::from_secs(2), &mut seen),
        "{seen:?}"
    );
}

#[tokio::test]
async fn without_notify_socket_nothing_is_sent_and_run_once_exits() {
    let sim = Sim::start(vec![]).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    let out = env.run(&["run", "--once"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
}

#[tokio::test]
async fn the_demo_cancels_the_runaway_and_leaves_the_rest() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .args(["demo", "--seconds", "3"])
        .env_remove("FTGUARD_CONFIG")
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("cancelled demo ftjob-demo-runaway: ran 7h"),
        "{text}"
    );
    assert!(
        text.contains("cancelled demo ftjob-demo-stuck-queue"),
        "{text}"
    );
    assert!(!text.contains("cancelled demo ftjob-demo-exempt"), "{text}");
    assert!(text.contains("Actions recorded"), "{text}");
}
