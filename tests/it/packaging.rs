//! What ships beside the binary: the Grafana dashboard only uses metrics ftguard exposes, and
//! the Debian package metadata installs the binary, the unit and the configuration.

use std::collections::BTreeSet;

fn exposed_metrics() -> BTreeSet<String> {
    let src = include_str!("../../src/telemetry/mod.rs");
    let re = regex::Regex::new(r#""(ftguard_[a-z_]+)""#).unwrap();
    re.captures_iter(src).map(|c| c[1].to_owned()).collect()
}

#[test]
fn the_dashboard_uses_only_exposed_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../../config/grafana-dashboard.json")).unwrap();
    let exposed = exposed_metrics();
    assert!(exposed.len() >= 8, "{exposed:?}");
    let re = regex::Regex::new(r"ftguard_[a-z_]+").unwrap();
    let mut used = BTreeSet::new();
    for panel in dash["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            for m in re.find_iter(t["expr"].as_str().unwrap()) {
                let name = m.as_str().trim_end_matches("_bucket").to_owned();
                assert!(
                    exposed.contains(&name),
                    "panel {:?} uses unknown metric {name}",
                    panel["title"]
                );
                used.insert(name);
            }
        }
    }
    for needed in [
        "ftguard_budget_spend_usd",
        "ftguard_budget_limit_usd",
        "ftguard_jobs",
        "ftguard_actions",
        "ftguard_training_loss",
    ] {
        assert!(used.contains(needed), "the dashboard should show {needed}");
    }
}

/// The alerting rules are well-formed Prometheus rule groups on metrics ftguard exposes.
#[test]
fn the_alert_rules_use_only_exposed_metrics() {
    let rules: serde_yaml::Value =
        serde_yaml::from_str(include_str!("../../config/prometheus-alerts.yml")).unwrap();
    let exposed = exposed_metrics();
    let re = regex::Regex::new(r"ftguard_[a-z_]+").unwrap();
    let rules = rules["groups"][0]["rules"].as_sequence().unwrap();
    assert!(rules.len() >= 5, "{rules:?}");
    let mut used = BTreeSet::new();
    for rule in rules {
        let name = rule["alert"].as_str().unwrap();
        assert!(
            rule["labels"]["severity"].as_str().is_some(),
            "{name}: labels.severity"
        );
        assert!(
            rule["annotations"]["summary"].as_str().is_some(),
            "{name}: summary"
        );
        let expr = rule["expr"].as_str().unwrap();
        for m in re.find_iter(expr) {
            assert!(
                exposed.contains(m.as_str()),
                "{name} uses unknown metric {}",
                m.as_str()
            );
            used.insert(m.as_str().to_owned());
        }
        if let Some(f) = rule["for"].as_str() {
            assert!(humantime::parse_duration(f).is_ok(), "{name}: for = {f}");
        }
    }
    for needed in [
        "ftguard_last_successful_sync_timestamp_seconds",
        "ftguard_notifications_total",
        "ftguard_actions",
        "ftguard_clock_offset_seconds",
    ] {
        assert!(used.contains(needed), "no alert on {needed}");
    }
}

/// Prometheus' own checker: on PATH, else fetched once from the Debian archive into the
/// target directory (`.ci/run` puts it on PATH on a fresh machine).
fn promtool() -> std::path::PathBuf {
    if let Ok(out) = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        && out.status.success()
    {
        return "promtool".into();
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("prometheus");
    let tool = dir.join("usr/bin/promtool");
    if !tool.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        let fetched = std::process::Command::new("apt-get")
            .args(["download", "prometheus"])
            .current_dir(&dir)
            .status()
            .is_ok_and(|s| s.success());
        let deb = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|e| e == "deb"));
        match (fetched, deb) {
            (true, Some(deb)) => assert!(
                std::process::Command::new("dpkg-deb")
                    .arg("-x")
                    .arg(&deb)
                    .arg(&dir)
                    .status()
                    .unwrap()
                    .success()
            ),
            _ => panic!(
                "promtool is needed to check config/prometheus-alerts.yml: put it on PATH \
                 (Debian: apt-get install prometheus; `.ci/run` fetches it)"
            ),
        }
    }
    tool
}

/// The rules load in Prometheus, and fire (or stay quiet) as their unit tests expect on
/// synthetic series: stale syncs, failed notices, held cancels, a budget at 95 %, ...
#[test]
fn the_alert_rules_pass_promtool_and_their_unit_tests() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tool = promtool();
    for args in [
        ["check", "rules", "config/prometheus-alerts.yml"],
        ["test", "rules", "tests/alerts/prometheus-alerts.test.yml"],
    ] {
        let out = std::process::Command::new(&tool)
            .args(args)
            .current_dir(root)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_deb_metadata_installs_what_a_service_needs() {
    let cargo: toml::Value = toml::from_str(include_str!("../../Cargo.toml")).unwrap();
    let deb = &cargo["package"]["metadata"]["deb"];
    let assets: Vec<(String, String)> = deb["assets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    for (src, dest) in [
        ("target/release/ftguard", "usr/bin/"),
        (
            "systemd/ftguard.service",
            "lib/systemd/system/ftguard.service",
        ),
        ("config/ftguard.example.toml", "etc/ftguard/ftguard.toml"),
        (
            "completions/ftguard.bash",
            "usr/share/bash-completion/completions/ftguard",
        ),
    ] {
        assert!(
            assets.contains(&(src.into(), dest.into())),
            "{src} -> {dest} missing: {assets:?}"
        );
    }
    assert!(
        assets.contains(&("man/*.1".into(), "usr/share/man/man1/".into())),
        "man pages missing: {assets:?}"
    );
    for (src, _) in &assets {
        if src == "man/*.1" {
            continue; // checked by shipped_man_pages_are_current
        }
        if !src.starts_with("target/") {
            assert!(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join(src)
                    .exists(),
                "{src} does not exist"
            );
        }
    }
    assert_eq!(
        deb["conf-files"][0].as_str(),
        Some("/etc/ftguard/ftguard.toml")
    );
}

/// The completion scripts the .deb installs are what `ftguard completions` prints now, and the
/// bash one is valid bash offering every subcommand.
#[test]
fn shipped_completions_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (shell, file) in [
        ("bash", "completions/ftguard.bash"),
        ("zsh", "completions/_ftguard"),
        ("fish", "completions/ftguard.fish"),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        let shipped = std::fs::read(root.join(file)).unwrap();
        assert!(
            shipped == out.stdout,
            "{file} is stale: run `cargo run -- completions {shell} > {file}`"
        );
    }
    let script = std::fs::read_to_string(root.join("completions/ftguard.bash")).unwrap();
    for cmd in [
        "run",
        "sync",
        "plan",
        "replay",
        "jobs",
        "spend",
        "show",
        "actions",
        "cancel",
        "resume",
        "config",
        "sim",
        "demo",
        "completions",
    ] {
        assert!(
            script.contains(&format!("cmd=\"ftguard__subcmd__{cmd}\"")),
            "{cmd} missing"
        );
    }
    assert!(script.contains("--since") && script.contains("--limit"));
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(root.join("completions/ftguard.bash"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// The man pages the .deb installs are what `ftguard man` prints now: ftguard(1) and every page
/// it refers to, following references, with no page left over.
#[test]
fn shipped_man_pages_are_current() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let page = |name: Option<&str>| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ftguard"))
            .arg("man")
            .args(name)
            .output()
            .unwrap();
        assert!(out.status.success(), "{name:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let mut todo = vec![None::<String>];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(name) = todo.pop() {
        let file = match &name {
            None => "man/ftguard.1".to_owned(),
            Some(n) => format!("man/ftguard-{n}.1"),
        };
        let text = page(name.as_deref());
        let shipped = std::fs::read_to_string(root.join(&file)).unwrap_or_default();
        let arg = name.clone().unwrap_or_default();
        assert!(
            shipped == text,
            "{file} is stale or missing: run `cargo run -- man {arg} > {file}`"
        );
        seen.insert(file);
        // References look like `ftguard\-config\-check(1)` in roff.
        for part in text.split("ftguard\\-").skip(1) {
            if let Some(end) = part.find("(1)") {
                let referenced = part[..end].replace("\\-", "-");
                if !seen.contains(&format!("man/ftguard-{referenced}.1")) {
                    todo.push(Some(referenced));
                }
            }
        }
    }
    assert!(seen.len() > 10, "{seen:?}");
    let shipped: std::collections::BTreeSet<String> = std::fs::read_dir(root.join("man"))
        .unwrap()
        .map(|e| format!("man/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    assert_eq!(shipped, seen, "pages in man/ that no page refers to");
}
