//! The real daemon as a process: sd_notify READY/WATCHDOG/STATUS, SIGHUP reloads (a broken
//! file keeps the running configuration), SIGTERM exits 0; and the demo.

use crate::common::*;
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

/// Starts `ftguard run` with info logs written to a file in the test's directory; returns
/// the process and the file.
fn daemon_logging_to_file(env: &Env) -> (tokio::process::Child, std::path::PathBuf) {
    let path = env.dir.path().join("stderr.log");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"));
    cmd.args(["--config", env.config_path().to_str().unwrap(), "run"])
        .env_remove("NOTIFY_SOCKET")
        .env("FTGUARD_LOG", "info")
        .stderr(std::fs::File::create(&path).unwrap())
        .kill_on_drop(true);
    for (k, v) in &env.envs {
        cmd.env(k, v);
    }
    (cmd.spawn().unwrap(), path)
}

/// The simulator with one running job answering after `latency`, and a configuration whose
/// requests wait for it (30 s timeout), plus `daemon_extra` under `[daemon]`.
async fn slow_api(latency: Duration, daemon_extra: &str) -> (Sim, Env) {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 7 * H, now())])
        .await
        .unwrap();
    sim.set_latency(latency);
    let env = Env::new();
    env.sim_config(&sim, daemon_extra, "");
    let config = std::fs::read_to_string(env.config_path())
        .unwrap()
        .replace("request_timeout = \"2s\"", "request_timeout = \"30s\"");
    std::fs::write(env.config_path(), config).unwrap();
    (sim, env)
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
    let reloading = seen.iter().find(|m| m.contains("RELOADING=1")).unwrap();
    let usec: u128 = reloading
        .lines()
        .find_map(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without MONOTONIC_USEC: {reloading:?}"));
    assert!(usec > 0);
    assert!(
        wait_for(&sock, "READY=1", Duration::from_secs(5), &mut seen),
        "{seen:?}"
    );
    holds_for(
        Duration::from_millis(300),
        "the daemon stays up after a bad reload",
        || child.try_wait().unwrap().is_none(),
    )
    .await;
    let syncs_before = hits(&sim, "/fine_tuning/jobs");
    assert!(
        wait_for(&sock, "STATUS=synced", Duration::from_secs(5), &mut seen),
        "still syncing on the old config: {seen:?}"
    );
    assert!(hits(&sim, "/fine_tuning/jobs") > syncs_before);
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
    // The log says what started (version, database, accounts, schedule) and that it stopped.
    let log = std::fs::read_to_string(&stderr_path).unwrap();
    let start = log
        .lines()
        .find(|l| l.contains("ftguard starting"))
        .unwrap_or_else(|| panic!("no start line: {log}"));
    for field in [
        "version=",
        "database=",
        "accounts=\"sim\"",
        "sync_schedule=",
        "max_cancels_per_pass=10",
    ] {
        assert!(start.contains(field), "{field} missing: {start}");
    }
    assert!(log.trim_end().ends_with("stopped"), "{log}");
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
    // The diverging job: cancelled early, its checkpoint before the blow-up named.
    assert!(
        text.contains("cancelled demo ftjob-demo-diverging: train_loss above 2x its best for "),
        "{text}"
    );
    assert!(
        text.contains(
            "best checkpoint ft:gpt-4o-mini-2024-07-18:sim::ftjob-demo-diverging:ckpt-step-1000"
        ),
        "{text}"
    );
    assert!(text.contains("Actions recorded"), "{text}");
    // It ends with the replay of its policies over what it stored: the four it cancelled, and
    // the finished history the runtime limit and the cap would have stopped.
    let replay = text
        .lines()
        .find(|l| l.starts_with("Replay (`ftguard replay`)"))
        .unwrap_or_else(|| panic!("no replay line in {text}"));
    assert!(
        replay.contains(
            "over the 8 jobs stored they would have acted on 6 (runtime-6h 3, queue-2h 1, cap-10 3, diverging 1)"
        ),
        "{replay}"
    );
}

/// The address the daemon logging to `log` bound `/healthz` to (its configuration says port 0:
/// a port found free beforehand may be taken by the time the daemon binds it).
async fn bound_addr(log: &std::path::Path) -> String {
    wait_until(Duration::from_secs(15), "the daemon to listen", || {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let line = text
            .lines()
            .find(|l| l.contains("serving /healthz and /metrics"))?;
        let addr = line.split("addr=").nth(1)?.split_whitespace().next()?;
        Some(addr.to_owned())
    })
    .await
}

async fn get(url: &str) -> (u16, String) {
    match reqwest::get(url).await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(_) => (0, String::new()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_metrics_and_one_daemon_per_database() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 60, now())])
        .await
        .unwrap();
    // Two webhooks: one that takes notices, one nobody listens on.
    let hook = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(wiremock::ResponseTemplate::new(200))
        .mount(&hook)
        .await;
    let env = Env::new()
        .env("FT_TEST_HOOK", &format!("{}/hook", hook.uri()))
        .env("FT_TEST_DEAD_HOOK", "http://127.0.0.1:9/hook");
    env.sim_config(
        &sim,
        "sync_schedule = \"*/1 * * * * *\"\nlisten = \"127.0.0.1:0\"",
        "[[policies]]\nname = \"monthly\"\nkind = \"budget\"\nlimit_usd = 100.0\n\n\
         [[notifiers]]\nurl = { env = \"FT_TEST_HOOK\" }\n\n\
         [[notifiers]]\nurl = { env = \"FT_TEST_DEAD_HOOK\" }\n",
    );
    let (mut child, log) = daemon_logging_to_file(&env);
    let base = format!("http://{}", bound_addr(&log).await);
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut health = (0, String::new());
    while Instant::now() < deadline {
        health = get(&format!("{base}/healthz")).await;
        if health.0 == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health.0, 200, "{}", health.1);

    let (code, metrics) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    for needle in [
        "# TYPE ftguard_jobs gauge",
        "ftguard_jobs{account=\"sim\",status=\"running\"} 1",
        "# TYPE ftguard_api_requests_total counter",
        "ftguard_api_requests_total{account=\"sim\",endpoint=\"GET /fine_tuning/jobs\",status=\"200\"}",
        "# TYPE ftguard_sync_duration_seconds histogram",
        "ftguard_last_successful_sync_timestamp_seconds{account=\"sim\"}",
        "# TYPE ftguard_clock_offset_seconds gauge",
        "ftguard_clock_offset_seconds{account=\"sim\"} ",
        "ftguard_budget_limit_usd{group=\"all\",policy=\"monthly\"} 100",
        &format!(
            "ftguard_build_info{{version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        ),
    ] {
        assert!(metrics.contains(needle), "missing {needle}:\n{metrics}");
    }

    // A second daemon on the same database fails fast and says why.
    let t = Instant::now();
    let second = env.run(&["run"]).await;
    assert!(!second.status.success());
    assert!(
        stderr(&second).contains("already running"),
        "{}",
        stderr(&second)
    );
    assert!(t.elapsed() < Duration::from_secs(5));

    // The account starts failing: /healthz turns 503 and says which and why.
    sim.require_header("authorization", "Bearer something-else");
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        health = get(&format!("{base}/healthz")).await;
        if health.0 == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(
        health.1.contains("\"account\":\"sim\"") && health.1.contains("401"),
        "{}",
        health.1
    );
    // Three seconds on it is notified: delivered to one webhook; the dead one, once its three
    // tries are spent, counted as retrying (kept in the outbox; what an alert watches).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, m) = get(&format!("{base}/metrics")).await;
        let counted = |result: &str| {
            m.contains(&format!(
                "ftguard_notifications_total{{event=\"sync_failing\",result=\"{result}\"}} 1"
            ))
        };
        if counted("delivered") && counted("retrying") {
            break;
        }
        assert!(Instant::now() < deadline, "notices not counted:\n{m}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A refused reload is counted.
    std::fs::write(
        env.config_path(),
        "[daemon]\nsync_schedule = \"nonsense\"\n",
    )
    .unwrap();
    signal(child.id().unwrap(), "-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = get(&format!("{base}/metrics")).await;
        if m.contains("ftguard_config_reloads_total{result=\"error\"} 1") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reload failure not counted:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_or_stop_during_the_first_sync_is_handled_not_fatal() {
    // A first sync that takes a while (a slow API): SIGHUP arrives in the middle of it, as a
    // `systemctl reload` right after start would.
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 60, now())])
        .await
        .unwrap();
    sim.set_latency(Duration::from_millis(1500));
    let env = Env::new();
    env.sim_config(&sim, "sync_schedule = \"0 0 * * * *\"", "");
    let (mut child, stderr_path) = daemon_logging_to_file(&env);
    let pid = child.id().unwrap();
    // The first sync's listing is out; at 1.5 s an answer, it is still on its way.
    wait_until(Duration::from_secs(10), "the first sync to start", || {
        (hits(&sim, "/fine_tuning/jobs") >= 1).then_some(())
    })
    .await;
    assert!(
        hits(&sim, "/fine_tuning/jobs") <= 1,
        "the first sync is still on its way"
    );
    signal(pid, "-HUP");
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let deadline = Instant::now() + Duration::from_secs(15);
    while !log().contains("configuration reloaded") {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the daemon died of the SIGHUP ({status}):\n{}", log());
        }
        assert!(Instant::now() < deadline, "no reload:\n{}", log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(log().contains("sync pass done"), "{}", log());
    // SIGTERM during a slow sync stops it cleanly too.
    env.sim_config(&sim, "sync_schedule = \"* * * * * *\"", "");
    let before = hits(&sim, "/fine_tuning/jobs");
    signal(pid, "-HUP");
    // Reloaded, and a sync of the new schedule on its way (1.5 s an answer).
    wait_until(
        Duration::from_secs(15),
        "a sync on the reloaded schedule",
        || {
            (log().matches("configuration reloaded").count() >= 2
                && hits(&sim, "/fine_tuning/jobs") > before)
                .then_some(())
        },
    )
    .await;
    signal(pid, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("did not stop")
        .unwrap();
    assert!(status.success(), "{status}:\n{}", log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_long_first_sync_stops_within_the_shutdown_timeout() {
    // The API takes 8 s per answer; the daemon must not wait for the whole first sync.
    let (sim, env) = slow_api(Duration::from_secs(8), "shutdown_timeout = \"1s\"").await;
    let mut child = env.daemon();
    let pid = child.id().unwrap();
    // Once the first sync's request is on its way.
    wait_until(Duration::from_secs(10), "the first sync to start", || {
        (hits(&sim, "/fine_tuning/jobs") >= 1).then_some(())
    })
    .await;
    let t = Instant::now();
    signal(pid, "-TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("did not stop")
        .unwrap();
    assert!(status.success(), "{status}");
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "waited {:?} for a sync that takes 8 s, with shutdown_timeout 1s",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_is_answered_during_a_long_first_sync() {
    // systemd restarts a service that stops pinging for WatchdogSec: a first sync of a large
    // history on a slow API must not look like a wedged daemon (a restart would start the
    // same sync over, and be killed again).
    let (_sim, env) = slow_api(Duration::from_secs(4), "").await;
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .args(["--config", env.config_path().to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("FTGUARD_LOG", "warn")
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    assert!(
        wait_for(&sock, "READY=1", Duration::from_secs(15), &mut seen),
        "{seen:?}"
    );
    let ready = Instant::now();
    // Pings every half second while the first listing is still on its way.
    let mut pings = 0;
    while ready.elapsed() < Duration::from_millis(2500) {
        if wait_for(&sock, "WATCHDOG=1", Duration::from_millis(300), &mut seen) {
            pings += 1;
        }
    }
    let syncs_done = seen.iter().filter(|m| m.contains("STATUS=synced")).count();
    child.kill().ok();
    child.wait().ok();
    assert_eq!(
        syncs_done, 0,
        "the first sync was meant to be still running: {seen:?}"
    );
    assert!(pings >= 3, "{pings} pings in 2.5 s: {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_comes_before_a_slow_reconciliation() {
    // A crash left a cancel pending; the API now takes 4 s to answer. Settling it must not
    // hold READY=1 back (systemd's start timeout would fail the service).
    let (sim, env) = slow_api(Duration::ZERO, "shutdown_timeout = \"1s\"").await;
    let app = env.app().await;
    let row = ftguard::store::NewAction {
        account: "sim",
        job_id: "ftjob-1",
        policy: "rt",
        action: "cancel",
        reason: "ran 7h00m > 6h",
        outcome: ftguard::store::Outcome::Pending,
    };
    app.store()
        .insert_action(&row, now())
        .await
        .unwrap()
        .unwrap();
    app.store().close().await;
    sim.set_latency(Duration::from_secs(4));
    let sock_path = env.dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    let started = Instant::now();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .args(["--config", env.config_path().to_str().unwrap(), "run"])
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("WATCHDOG_PID")
        .env("FTGUARD_LOG", "warn")
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let ready = wait_for(&sock, "READY=1", Duration::from_secs(15), &mut seen);
    let ready_after = started.elapsed();
    let pinged = wait_for(&sock, "WATCHDOG=1", Duration::from_secs(2), &mut seen);
    // SIGTERM while it is still settling: a bounded wait (shutdown_timeout 1s), no first pass.
    let t = Instant::now();
    signal(child.id(), "-TERM");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(t.elapsed() < Duration::from_secs(15), "did not stop");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(ready && pinged, "{seen:?}");
    assert!(
        ready_after < Duration::from_secs(3),
        "READY=1 after {ready_after:?}, behind a 4 s answer"
    );
    assert!(status.success(), "{status}");
    assert!(
        t.elapsed() < Duration::from_millis(3500),
        "stopped after {:?}: settling a pending cancel on a 4 s API took it all",
        t.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_reload_takes_effect_and_ends_the_old_schedule() {
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-1", "running", 60, now()).with_model("davinci-002"),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(&sim, "sync_schedule = \"0 0 * * * *\"", "");
    let (mut child, stderr_path) = daemon_logging_to_file(&env);
    let pid = child.id().unwrap();
    let log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let wait_log = |want: &'static str, times: usize| async move {
        let deadline = Instant::now() + Duration::from_secs(15);
        while log().matches(want).count() < times {
            assert!(
                Instant::now() < deadline,
                "no {want:?} x{times}:\n{}",
                log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    wait_log("sync pass done", 1).await;

    // A policy and a per-second schedule arrive by SIGHUP: the new policy acts. The database
    // moves in the same edit: that waits for a restart, and the log says so.
    env.sim_config(
        &sim,
        "sync_schedule = \"* * * * * *\"",
        "[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o*\"]\n",
    );
    let db = env.db().display().to_string();
    let moved = env.dir.path().join("moved.db").display().to_string();
    let text = std::fs::read_to_string(env.config_path()).unwrap();
    std::fs::write(env.config_path(), text.replace(&db, &moved)).unwrap();
    signal(pid, "-HUP");
    wait_log("configuration reloaded", 1).await;
    let reloaded = log()
        .lines()
        .find(|l| l.contains("configuration reloaded"))
        .map(str::to_owned)
        .unwrap();
    assert!(
        reloaded.contains("policies=\"models\"")
            && reloaded.contains("sync_schedule=\"* * * * * *\"")
            && reloaded.contains(&format!("database={db}")),
        "{reloaded}"
    );
    assert!(
        log().contains("daemon.database changed: takes effect at the next restart"),
        "{}",
        log()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.status("ftjob-1").as_deref() != Some("cancelled") {
        assert!(
            Instant::now() < deadline,
            "the reloaded policy never acted:\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !std::path::Path::new(&moved).exists(),
        "a second database was opened"
    );
    let cancels = sqlite3(
        &env.db(),
        "SELECT COUNT(*) FROM actions WHERE outcome = 'succeeded'",
    );
    assert_eq!(
        cancels.trim(),
        "1",
        "the cancel is recorded in the running database"
    );
    env.sim_config(&sim, "sync_schedule = \"0 0 * * * *\"", "");
    signal(pid, "-HUP");
    wait_log("configuration reloaded", 2).await;
    // A sync that had already started may still finish: each lists one page and logs once.
    let lists = wait_until(Duration::from_secs(15), "syncs under way to finish", || {
        let lists = hits(&sim, "/fine_tuning/jobs");
        (log().matches("sync pass done").count() >= lists).then_some(lists)
    })
    .await;
    // The old schedule fired every second: over 2.5 s it would have synced twice.
    holds_for(
        Duration::from_millis(2500),
        "syncs went on after the schedule was reloaded to hourly",
        || hits(&sim, "/fine_tuning/jobs") == lists,
    )
    .await;
    child.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_crossed_between_hourly_syncs_is_acted_on_at_once() {
    // Crosses 6h three seconds after start; the daemon syncs only hourly.
    let sim = Sim::start(vec![SimJob::in_status(
        "ftjob-soon",
        "running",
        6 * H - 3,
        now(),
    )])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "sync_schedule = \"0 0 * * * *\"",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    let mut daemon = env.daemon();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.status("ftjob-soon").as_deref() != Some("cancelled") {
        assert!(
            Instant::now() < deadline,
            "not cancelled: {:?}",
            sim.requests().iter().map(|r| &r.path).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.kill().await.ok();
    let reqs = sim.requests();
    let paths: Vec<(&str, &str)> = reqs
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [
            ("GET", "/fine_tuning/jobs"),
            ("GET", "/fine_tuning/jobs/ftjob-soon"),
            ("POST", "/fine_tuning/jobs/ftjob-soon/cancel")
        ],
        "one sync at start, then the timer: one retrieve to re-check, one cancel"
    );
    let a = env.json(&["actions", "--json"]).await;
    assert!(
        a[0]["reason"].as_str().unwrap().starts_with("ran 6h00m"),
        "{a}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_coming_due_does_not_release_jobs_the_breaker_held() {
    // Two new jobs of a model not allowed, with a breaker of one cancel per pass: one is
    // cancelled at start, the other held. An older job crosses 6h three seconds later, between
    // hourly syncs; whatever order a pass decides in, only that job may be acted on then.
    let now = now();
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-over-a", "running", 20, now).with_model("davinci-002"),
        SimJob::in_status("ftjob-over-b", "running", 10, now).with_model("davinci-002"),
        SimJob::in_status("ftjob-soon", "running", 6 * H - 3, now),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "sync_schedule = \"0 0 * * * *\"\nmax_cancels_per_pass = 1",
        "[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o*\"]\n\
         [[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n",
    );
    let mut daemon = env.daemon();
    let deadline = Instant::now() + Duration::from_secs(20);
    while sim.status("ftjob-soon").as_deref() != Some("cancelled") {
        assert!(Instant::now() < deadline, "ftjob-soon was not cancelled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A wrongly released cancel would go out in the same pass, right after.
    holds_for(
        Duration::from_millis(500),
        "a held job was released",
        || sim.requests().iter().filter(|r| r.method == "POST").count() <= 2,
    )
    .await;
    daemon.kill().await.ok();
    let cancels: Vec<String> = sim
        .requests()
        .iter()
        .filter(|r| r.method == "POST")
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(
        cancels.len(),
        2,
        "the held job must wait for the next scheduled pass: {cancels:?}"
    );
    assert_eq!(cancels[1], "/fine_tuning/jobs/ftjob-soon/cancel");
    let held = if cancels[0].contains("ftjob-over-a") {
        "ftjob-over-b"
    } else {
        "ftjob-over-a"
    };
    assert_eq!(sim.status(held).as_deref(), Some("running"));
    let actions = env.json(&["actions", "--json"]).await;
    assert!(
        actions
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["job_id"] == held && a["outcome"] == "held"),
        "{actions}"
    );
}

#[tokio::test]
async fn the_standalone_simulator_serves_a_population() {
    // Port 0: the simulator binds a free port and says which on its first line.
    let mut sim = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--jobs",
            "150",
            "--active",
            "2",
        ])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut first = String::new();
    let sim_out = sim.stdout.take().unwrap();
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::io::AsyncBufReadExt::read_line(&mut tokio::io::BufReader::new(sim_out), &mut first),
    )
    .await
    .expect("the simulator did not start")
    .unwrap();
    let port: u16 = first
        .split("http://127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));
    let env = Env::new();
    // The running jobs' training files are served: a cost policy counts them (no "cannot
    // count" warning) and caps the new job at a projected cost.
    env.write_config("", &format!("[[accounts]]\nname = \"s\"\nbase_url = \"http://127.0.0.1:{port}/v1\"\n\n[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"6h\"\n\n[[policies]]\nname = \"cap\"\nkind = \"max_job_cost\"\nlimit_usd = 0.01\n"));
    let run = env.run(&["run", "--once"]).await;
    let out = stdout(&run);
    assert!(run.status.success(), "{out}{}", stderr(&run));
    assert!(out.contains("152 jobs in 2 pages"), "{out}");
    assert!(out.contains("cancelled s ftjob-active-0000"), "{out}");
    assert!(
        out.contains("cancelled s ftjob-active-0001: projected $"),
        "{out}"
    );
    assert!(!stderr(&run).contains("cannot count"), "{}", stderr(&run));
    sim.kill().await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_with_its_own_schedule_runs_on_it() {
    // Syncs are hourly; the allow-list policy has its own cron, every second, and is not part
    // of the pass after the sync.
    let sim = Sim::start(vec![
        SimJob::in_status("ftjob-wrong-model", "queued", 60, now())
            .with_model("gpt-4.1-2025-04-14"),
    ])
    .await
    .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "sync_schedule = \"0 0 * * * *\"",
        "[[policies]]\nname = \"models\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o-mini*\"]\nschedule = \"*/1 * * * * *\"\n",
    );
    let mut daemon = env.daemon();
    let deadline = Instant::now() + Duration::from_secs(15);
    while sim.status("ftjob-wrong-model").as_deref() != Some("cancelled") {
        assert!(Instant::now() < deadline, "the scheduled policy never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.kill().await.ok();
    let a = env.json(&["actions", "--json"]).await;
    assert_eq!(a[0]["policy"], "models");
    assert_eq!(hits(&sim, "/fine_tuning/jobs"), 1, "no extra sync");
}

#[tokio::test]
async fn a_paused_job_can_be_resumed() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-p", "running", 2 * H, now())])
        .await
        .unwrap();
    let env = Env::new();
    env.sim_config(
        &sim,
        "",
        "[[policies]]\nname = \"rt\"\nkind = \"max_runtime\"\nlimit = \"1h\"\naction = \"pause\"\n",
    );
    let out = env.ok(&["run", "--once"]).await;
    assert!(out.contains("paused sim ftjob-p"), "{out}");
    assert_eq!(sim.status("ftjob-p").as_deref(), Some("paused"));
    let out = env.ok(&["resume", "ftjob-p"]).await;
    assert!(out.contains("ftjob-p resumed: status running"), "{out}");
    assert_eq!(sim.status("ftjob-p").as_deref(), Some("running"));
    let jobs = env.json(&["jobs", "--json"]).await;
    assert_eq!(jobs[0]["status"], "running");
    let bad = env.run(&["resume", "ftjob-p", "--reason", "again"]).await;
    assert!(
        !bad.status.success() && stderr(&bad).contains("not paused"),
        "{}",
        stderr(&bad)
    );
    // Both are recorded, after the pause, as actions of policy "manual", with their answers.
    let actions = env.json(&["actions", "--json"]).await;
    let rows: Vec<(&str, &str, &str, &str)> = actions
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["action"].as_str().unwrap(),
                a["policy"].as_str().unwrap(),
                a["outcome"].as_str().unwrap(),
                a["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("pause", "rt", "succeeded", "ran 2h00m > 1h"),
            ("resume", "manual", "succeeded", "resumed by hand"),
            ("resume", "manual", "failed", "again"),
        ],
        "{actions}"
    );
    assert_eq!(actions[1]["response_status"], "running");
    assert!(actions[2]["error"].as_str().unwrap().contains("not paused"));
    // Filters, and a failed action says why in the table.
    let failed = env
        .json(&[
            "actions",
            "--action",
            "resume",
            "--outcome",
            "failed",
            "--json",
        ])
        .await;
    assert_eq!(failed.as_array().unwrap().len(), 1, "{failed}");
    assert_eq!(failed[0]["reason"], "again");
    let by_policy = env.json(&["actions", "--policy", "rt", "--json"]).await;
    assert_eq!(by_policy.as_array().unwrap().len(), 1, "{by_policy}");
    let text = env.ok(&["actions", "--outcome", "failed"]).await;
    assert!(
        squeeze(&text).contains("[manual] again -> failed (") && text.contains("not paused"),
        "{text}"
    );
    let none = env.ok(&["actions", "--policy", "nope"]).await;
    assert!(none.contains("no actions recorded that match"), "{none}");
    // A restart reconciles nothing: a resume is never left pending (it would be taken for a
    // cancel), and the job keeps running.
    env.ok(&["run", "--once"]).await;
    assert_ne!(sim.status("ftjob-p").as_deref(), Some("cancelled"));
}

#[tokio::test]
async fn logs_are_plain_for_journald_and_json_on_request() {
    let sim = Sim::start(vec![SimJob::in_status("ftjob-1", "running", 60, now())])
        .await
        .unwrap();
    let timestamp = regex::Regex::new(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}").unwrap();
    // One line per pass at info, whatever the number of accounts.
    let sync_line = |out: &std::process::Output| {
        stderr(out)
            .lines()
            .find(|l| l.contains("sync pass done"))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no log line: {}", stderr(out)))
    };
    let env = Env::new();
    env.sim_config(&sim, "", "");
    let plain = sync_line(&env.run(&["sync"]).await);
    assert!(
        timestamp.is_match(&plain),
        "a terminal or file gets timestamps: {plain}"
    );

    // Under systemd (JOURNAL_STREAM set) journald stamps lines itself; no colours either.
    let env = Env::new().env("JOURNAL_STREAM", "8:12345");
    env.sim_config(&sim, "", "");
    let journal = sync_line(&env.run(&["sync"]).await);
    assert!(
        !timestamp.is_match(&journal) && !journal.contains('\x1b'),
        "{journal:?}"
    );
    assert!(
        journal.contains("INFO") && journal.contains("synced=1"),
        "{journal}"
    );

    let env = Env::new();
    env.sim_config(&sim, "", "");
    let json = sync_line(&env.run(&["--log-format", "json", "sync"]).await);
    let v: serde_json::Value =
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}: {json}"));
    assert_eq!(v["level"], "INFO");
    assert_eq!(v["fields"]["synced"], 1, "{v}");

    // Each account's own line is at debug, in the account's span.
    let env = Env::new().env("FTGUARD_LOG", "debug");
    env.sim_config(&sim, "", "");
    let out = env.run(&["--log-format", "json", "sync"]).await;
    let line = stderr(&out)
        .lines()
        .find(|l| l.contains("\"sync done\""))
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("no account line: {}", stderr(&out)));
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["level"], "DEBUG", "{v}");
    assert_eq!(v["span"]["account"], "sim", "{v}");
}
