//! The shape stays: every module of `src/` imports only from its own layer or layers below it
//! (ARCHITECTURE.md, "Layers"). Read from the source, tests excluded (they may build fixtures
//! from anywhere).

/// Bottom to top. A module may use its own layer and any layer listed before it.
const LAYERS: &[&str] = &[
    "model",     // domain types, time, cron schedules: imports nothing of ours
    "telemetry", // counters and histograms every layer records into
    "sim",       // the loopback API simulator (tests and `ftguard demo`)
    "cost",      // prices, token counting, projections: pure
    "policy",    // pure evaluation: jobs, now, policies, prices -> decisions
    "replay",    // pure: stored lives and policies -> what they would have done and saved
    "config",    // the file and environment into typed values of the layers above
    "provider",  // the API client
    "store",     // SQLite
    "notify",    // notices and the outbox
    "sync",      // listing into the store, events, training files, outage watch
    "enforce",   // decisions -> durable actions -> API calls -> outcomes
    "app",       // one pass and its caches
    "daemon",    // wiring: schedules, timers, signals, lock, systemd, HTTP
];

/// Layers a layer may not use although they sit below it: the store holds domain values and
/// knows neither the API's JSON (provider) nor how policies decide (policy, config).
const APART: &[(&str, &str)] = &[
    ("store", "provider"),
    ("store", "policy"),
    ("store", "config"),
];

/// The layer of a file under `src/` (`src/store/jobs.rs` -> `store`); `None` for the binary's
/// own files (`main.rs`, `cli/`), which may use everything, and for `lib.rs`.
fn layer_of(path: &std::path::Path, src: &std::path::Path) -> Option<&'static str> {
    let rel = path.strip_prefix(src).ok()?;
    let first = rel.components().next()?.as_os_str().to_str()?;
    let name = first.trim_end_matches(".rs");
    LAYERS.iter().copied().find(|l| *l == name)
}

/// `crate::X` paths in the non-test part of a file (tests sit after `#[cfg(test)]`).
fn imports(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]").next().unwrap_or(text);
    let mut out = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let before = code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        let rest = &code[i + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect();
        if !name.is_empty() {
            out.push(name);
        }
    }
    out
}

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every import that points up a layer, as `file: uses X`.
fn violations(src: &std::path::Path) -> Vec<String> {
    let rank = |l: &str| LAYERS.iter().position(|x| *x == l);
    let mut all = Vec::new();
    files(src, &mut all);
    all.sort();
    let mut bad = Vec::new();
    for path in all {
        let Some(layer) = layer_of(&path, src) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).unwrap();
        for used in imports(&text) {
            match rank(&used) {
                Some(r) if r > rank(layer).unwrap() => bad.push(format!(
                    "{}: the {layer} layer uses crate::{used}, a layer above it",
                    path.strip_prefix(src).unwrap().display()
                )),
                Some(_) if APART.contains(&(layer, used.as_str())) => bad.push(format!(
                    "{}: the {layer} layer uses crate::{used}, which it must not know",
                    path.strip_prefix(src).unwrap().display()
                )),
                Some(_) => {}
                // Not a layer: a macro or something else at the root.
                None => {}
            }
        }
    }
    bad
}

#[test]
fn imports_only_point_down_the_layers() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Every top-level module is a declared layer (or the binary's own).
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry
            .unwrap()
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_owned();
        assert!(
            LAYERS.contains(&name.as_str()) || ["lib", "main", "cli"].contains(&name.as_str()),
            "src/{name} belongs to no layer: declare it in LAYERS (and ARCHITECTURE.md)"
        );
    }
    let bad = violations(&src);
    assert!(bad.is_empty(), "imports up a layer:\n{}", bad.join("\n"));
}

#[test]
fn an_import_up_a_layer_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    std::fs::write(
        store.join("jobs.rs"),
        "use crate::model::Job;\nfn f() { crate::enforce::run(); }\nuse crate::provider::payload;\n#[cfg(test)]\nmod t { use crate::app::App; }\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("model.rs"), "use crate::policy::X;\n").unwrap();
    let bad = violations(dir.path());
    assert_eq!(
        bad,
        [
            "model.rs: the model layer uses crate::policy, a layer above it",
            "store/jobs.rs: the store layer uses crate::enforce, a layer above it",
            "store/jobs.rs: the store layer uses crate::provider, which it must not know",
        ]
    );
}
