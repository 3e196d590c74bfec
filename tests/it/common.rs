//! Shared test helpers: a temp directory with a config and database, the real binary as a
//! process, and the simulator as the API.
#![allow(dead_code, unused_imports)]

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

pub use ftguard::sim::{Endpoint, Fault, Sim, SimJob};

pub const H: i64 = 3600;

pub fn now() -> i64 {
    ftguard::model::time::now()
}

/// A temp directory holding ftguard.toml and ftguard.db.
pub struct Env {
    pub dir: tempfile::TempDir,
    pub envs: Vec<(String, String)>,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            envs: Vec::new(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("ftguard.db")
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.path().join("ftguard.toml")
    }

    /// Writes ftguard.toml: `[daemon]` pointing at the temp database, then `rest`.
    pub fn write_config(&self, daemon_extra: &str, rest: &str) {
        let text = format!(
            "[daemon]\ndatabase = {:?}\n{daemon_extra}\n\n{rest}\n",
            self.db().display().to_string()
        );
        std::fs::write(self.config_path(), text).unwrap();
    }

    /// A config with one account `sim` at the simulator, plus `rest` (policies...).
    pub fn sim_config(&self, sim: &Sim, daemon_extra: &str, rest: &str) {
        self.write_config(
            daemon_extra,
            &format!(
                "[[accounts]]\nname = \"sim\"\nbase_url = \"{}\"\nmax_attempts = 3\nrequest_timeout = \"2s\"\nmax_retry_after = \"2s\"\n\n{rest}",
                sim.base_url()
            ),
        );
    }

    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.envs.push((k.into(), v.into()));
        self
    }

    /// Runs the real binary with this directory as cwd and its config.
    pub async fn run(&self, args: &[&str]) -> Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"));
        cmd.current_dir(self.dir.path())
            .arg("--config")
            .arg(self.config_path())
            .args(args)
            .env_remove("FTGUARD_CONFIG")
            .env_remove("STATE_DIRECTORY")
            .env_remove("NOTIFY_SOCKET")
            .env("FTGUARD_LOG", "info");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.kill_on_drop(true).output().await.unwrap()
    }

    /// Starts `ftguard run` (the daemon) on this configuration; killed when dropped.
    pub fn daemon(&self) -> tokio::process::Child {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_ftguard"));
        cmd.args(["--config", self.config_path().to_str().unwrap(), "run"])
            .env_remove("NOTIFY_SOCKET")
            .env("FTGUARD_LOG", "warn");
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd.kill_on_drop(true).spawn().unwrap()
    }

    /// Runs and requires success; returns stdout.
    pub async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "ftguard {args:?} failed: {}\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub async fn json(&self, args: &[&str]) -> Value {
        let out = self.ok(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// Loads the config with the library (for tests that drive App directly).
    pub async fn app(&self) -> ftguard::app::App {
        let config = ftguard::config::Config::load(Some(&self.config_path())).unwrap();
        ftguard::app::App::build(config).await.unwrap()
    }
}

/// Runs SQL on a database with the sqlite3 CLI, behind ftguard's back; returns its output.
#[allow(dead_code)]
/// A simulator serving `jobs`, and an environment whose one account is it (no policies).
pub async fn sim_env(jobs: Vec<SimJob>) -> (Sim, Env) {
    let sim = Sim::start(jobs).await.unwrap();
    let env = Env::new();
    env.sim_config(&sim, "", "");
    (sim, env)
}

pub fn sqlite3(db: &std::path::Path, sql: &str) -> String {
    let out = std::process::Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .expect("sqlite3 is needed for this test");
    assert!(out.status.success(), "sqlite3 {sql:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// How many requests the simulator received for exactly this path.
pub fn hits(sim: &Sim, path: &str) -> usize {
    sim.requests().iter().filter(|r| r.path == path).count()
}

/// The job with this id in a `jobs --json` / `actions --json` array.
pub fn by_id<'a>(arr: &'a Value, key: &str, id: &str) -> Vec<&'a Value> {
    arr.as_array()
        .unwrap()
        .iter()
        .filter(|v| v[key] == id)
        .collect()
}

/// Installs an npm package (once) into the target directory; returns its `node_modules`.
/// Real peers (the Portkey gateway, Prism) come from the npm registry, so `cargo test` needs
/// nothing installed beforehand but Node.js 20.
pub fn npm_package(dir_name: &str, spec: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(dir_name);
    let modules = dir.join("node_modules");
    let marker = dir.join(".installed");
    // Tests of one binary run in parallel threads: one installs, the others wait for it.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    if !marker.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let out = std::process::Command::new("npm")
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
            ])
            .arg(&dir)
            .arg(spec)
            .output()
            .expect("npm (Node.js 20) is needed to fetch real peers for the interop tests");
        assert!(
            out.status.success(),
            "npm install {spec} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::fs::write(&marker, spec).unwrap();
    }
    modules
}

/// Waits until `ready` gives a value, checking every 50 ms, for at most `within`; panics
/// naming `what` if it never does. A test waits for what it needs, not for a guessed time.
pub async fn wait_until<T>(
    within: std::time::Duration,
    what: &str,
    mut ready: impl FnMut() -> Option<T>,
) -> T {
    let deadline = std::time::Instant::now() + within;
    loop {
        if let Some(v) = ready() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "gave up waiting {within:?} for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// `text` with every run of spaces made one: table columns are as wide as their widest cell,
/// so a test looks for words in order, not for a padding.
pub fn squeeze(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out
}

/// A negative check: `still` must hold at every look, every 50 ms, for the whole `window`
/// (something that must not happen, such as a sync after the schedule went hourly); panics
/// naming `what` as soon as it does not.
pub async fn holds_for(window: std::time::Duration, what: &str, mut still: impl FnMut() -> bool) {
    let end = std::time::Instant::now() + window;
    loop {
        assert!(
            still(),
            "{what}: broken after {:?} of {window:?}",
            window.saturating_sub(end.saturating_duration_since(std::time::Instant::now()))
        );
        if std::time::Instant::now() >= end {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Starts a Node.js server that was told to listen on port 0 and waits for the port it got,
/// reported by `tests/interop/report-port.mjs` (preloaded through `NODE_OPTIONS`, so a server
/// in a child process reports too). No port is chosen beforehand: none can be taken meanwhile.
pub async fn spawn_on_port_zero(
    mut command: tokio::process::Command,
    what: &str,
    within: std::time::Duration,
) -> (tokio::process::Child, u16) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("port");
    let preload = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/report-port.mjs");
    let mut child = command
        .env("NODE_OPTIONS", format!("--import={preload}"))
        .env("FTGUARD_PORT_FILE", &file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    let deadline = std::time::Instant::now() + within;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Some(port) = text.lines().find_map(|l| l.trim().parse::<u16>().ok()) {
            return (child, port);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not start listening within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
