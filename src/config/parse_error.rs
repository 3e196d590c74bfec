//! Turns what figment reports about a configuration that does not deserialize into one line per
//! problem in ftguard's own form: `FILE: key.path: what is wrong`, with the environment
//! variable's name when the value came from `FTGUARD_*`, and the nearest known key when a key
//! is misspelt.

use std::fmt::Write as _;
use std::path::Path;

use figment::Source;
use figment::error::{Actual, Kind};

/// Keys people reach for that ftguard spells differently, with what to write instead.
const KNOWN_MISTAKES: &[(&str, &str)] = &[
    (
        "api_key",
        "an account's key is `bearer_token = { env = \"OPENAI_API_KEY\" }` for a direct API, or \
         `portkey_api_key` (+ `virtual_key` or `provider`) through Portkey",
    ),
    (
        "token",
        "an account's key is `bearer_token = { env = \"...\" }`, or `portkey_api_key` through Portkey",
    ),
    ("url", "the API address is `base_url`"),
    ("type", "a policy's type is `kind`"),
    (
        "cron",
        "the daemon's schedule is `sync_schedule`; a policy's is `schedule`",
    ),
];

/// One line per error figment collected, each naming where the value came from and its key.
pub fn describe(error: &figment::Error, file: Option<&Path>) -> String {
    let mut out = String::new();
    for (i, e) in error.clone().into_iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let origin = origin(&e, file);
        let key = key_path(&e.path);
        let _ = match (origin, key.is_empty()) {
            (Origin::Env, false) => write!(out, "environment variable {}: ", env_var(&e.path)),
            (Origin::Env, true) => write!(out, "FTGUARD_* environment: "),
            (Origin::File(f), false) => write!(out, "{f}: {key}: "),
            (Origin::File(f), true) => write!(out, "{f}: "),
            (Origin::Unknown, false) => write!(out, "{key}: "),
            (Origin::Unknown, true) => Ok(()),
        };
        out.push_str(&problem(&e.kind, holds_secret(&e.path)));
    }
    out
}

/// Keys whose values are secrets, or may be: their values are never echoed in an error, even
/// when written wrongly (a token as a bare number is still a token).
const SECRET_KEYS: [&str; 4] = ["bearer_token", "portkey_api_key", "virtual_key", "url"];

fn holds_secret(path: &[String]) -> bool {
    path.iter().any(|seg| SECRET_KEYS.contains(&seg.as_str()))
        || path
            .windows(2)
            .any(|w| w[0] == "headers" && super::looks_sensitive(&w[1]))
}

enum Origin {
    Env,
    File(String),
    Unknown,
}

fn origin(e: &figment::Error, file: Option<&Path>) -> Origin {
    match e.metadata.as_ref() {
        Some(m) if matches!(m.source, Some(Source::File(_))) => Origin::File(
            file.map(|f| f.display().to_string())
                .or_else(|| {
                    m.source
                        .as_ref()
                        .and_then(Source::file_path)
                        .map(|p| p.display().to_string())
                })
                .unwrap_or_else(|| m.name.to_string()),
        ),
        Some(m) if m.name.contains("environment") => Origin::Env,
        Some(m) => Origin::File(m.name.to_string()),
        None => Origin::Unknown,
    }
}

/// `policies.0.limit` as a reader of the TOML file thinks of it: `policies[0].limit`.
fn key_path(path: &[String]) -> String {
    let mut out = String::new();
    for seg in path {
        if seg.parse::<usize>().is_ok() {
            let _ = write!(out, "[{seg}]");
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    out
}

fn env_var(path: &[String]) -> String {
    format!("FTGUARD_{}", path.join("__").to_uppercase())
}

fn problem(kind: &Kind, secret: bool) -> String {
    let actual_text = |a: &Actual| if secret { kind_of(a) } else { actual_text(a) };
    match kind {
        Kind::UnknownField(field, expected) => unknown_key(field, expected),
        Kind::UnknownVariant(_, expected) if secret => {
            format!("unknown value; expected one of: {}", expected.join(", "))
        }
        Kind::UnknownVariant(value, expected) => format!(
            "unknown value \"{value}\"{}; expected one of: {}",
            nearest(value, expected)
                .map(|n| format!(" (did you mean \"{n}\"?)"))
                .unwrap_or_default(),
            expected.join(", ")
        ),
        Kind::MissingField(field) => format!("missing key `{field}`"),
        Kind::DuplicateField(field) => format!("key `{field}` is given twice"),
        Kind::InvalidType(actual, expected) => {
            format!(
                "expected {}, found {}",
                expected_text(expected),
                actual_text(actual)
            )
        }
        Kind::InvalidValue(actual, expected) => {
            format!("{} is not {}", actual_text(actual), expected_text(expected))
        }
        Kind::Message(m) if m == "invalid socket address syntax" => {
            format!("{m}: write an address and a port, like \"127.0.0.1:9187\"")
        }
        Kind::Message(m) => m.clone(),
        other => other.to_string(),
    }
}

fn unknown_key(field: &str, expected: &[&str]) -> String {
    let mut s = format!("unknown key `{field}`");
    if let Some(n) = nearest(field, expected) {
        let _ = write!(s, " (did you mean `{n}`?)");
    } else if let Some((_, hint)) = KNOWN_MISTAKES.iter().find(|(k, _)| *k == field) {
        let _ = write!(s, " ({hint})");
    }
    if !expected.is_empty() {
        let _ = write!(s, "; known keys here: {}", expected.join(", "));
    }
    s
}

/// The known name closest to a misspelt one, when it is close enough to be a typo.
fn nearest<'a>(given: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (strsim::damerau_levenshtein(given, k), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// serde's names for what it wanted, in the words of a TOML file.
fn expected_text(expected: &str) -> String {
    if expected.starts_with("struct ") || expected.starts_with("map") {
        return "a table".into();
    }
    match expected {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".into(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".into(),
        "f32" | "f64" => "a number".into(),
        "a sequence" => "a list".into(),
        other => other.into(),
    }
}

/// What a value is, without the value.
fn kind_of(actual: &Actual) -> String {
    match actual {
        Actual::Str(_) => "a string".into(),
        Actual::Signed(_) | Actual::Unsigned(_) | Actual::Float(_) => "a number".into(),
        Actual::Bool(_) => "a boolean".into(),
        Actual::Map => "a table".into(),
        Actual::Seq => "a list".into(),
        _ => "a value of another type".into(),
    }
}

fn actual_text(actual: &Actual) -> String {
    match actual {
        Actual::Str(s) => format!("the string \"{s}\""),
        Actual::Signed(n) => format!("the number {n}"),
        Actual::Unsigned(n) => format!("the number {n}"),
        Actual::Float(n) => format!("the number {n}"),
        Actual::Bool(b) => format!("{b}"),
        Actual::Map => "a table".into(),
        Actual::Seq => "a list".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_suggests_the_nearest_key() {
        assert_eq!(
            nearest("sync_shedule", &["dry_run", "sync_schedule"]),
            Some("sync_schedule")
        );
        assert_eq!(
            nearest("api_key", &["name", "base_url", "bearer_token"]),
            None
        );
        assert_eq!(nearest("ab", &["cd"]), None);
    }

    #[test]
    fn key_paths_read_like_toml() {
        let p = |s: &[&str]| s.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            key_path(&p(&["policies", "0", "limit"])),
            "policies[0].limit"
        );
        assert_eq!(
            env_var(&p(&["daemon", "dry_run"])),
            "FTGUARD_DAEMON__DRY_RUN"
        );
    }
}
