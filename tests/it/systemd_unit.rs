//! The shipped unit: hardening exposure of 2.0 or less by `systemd-analyze security`, and a
//! clean `systemd-analyze verify` (with ExecStart pointed at the built binary).

use std::process::Command;

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new("systemd-analyze").args(args).output().expect(
        "systemd-analyze is needed for this test (Debian package systemd); .ci/run installs it",
    )
}

#[test]
fn exposure_is_at_most_2() {
    let out = analyze(&[
        "security",
        "--offline=yes",
        concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/ftguard.service"),
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no score in:\n{text}"));
    let score: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("cannot read the score from {line:?}"));
    assert!(score <= 2.0, "exposure {score} > 2.0:\n{text}");
}

#[test]
fn the_unit_verifies() {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/systemd/ftguard.service"
    ))
    .unwrap();
    for key in [
        "Type=notify",
        "ExecStart=/usr/bin/ftguard run",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "WatchdogSec=",
        "DynamicUser=yes",
        "StateDirectory=ftguard",
        "ConfigurationDirectory=ftguard",
        "LoadCredential=",
    ] {
        assert!(unit.contains(key), "unit lacks {key}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ftguard.service");
    std::fs::write(
        &path,
        unit.replace("/usr/bin/ftguard", env!("CARGO_BIN_EXE_ftguard")),
    )
    .unwrap();
    let out = analyze(&["verify", path.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("ftguard.service:"),
        "{err}"
    );
}
