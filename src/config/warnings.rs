//! A configuration can be valid and still do less than its author expects: no policy, notices
//! with nowhere to go, a Portkey account that names no provider, a key written inline. These are said (by
//! `config check`, and in the daemon's log at start and reload) but do not stop anything.

use super::{HeaderSetting, RawConfig};
use crate::policy::ActionKind;

/// Headers that choose the provider behind Portkey, when written under `headers`.
const PORTKEY_ROUTING_HEADERS: [&str; 3] = [
    "x-portkey-provider",
    "x-portkey-virtual-key",
    "x-portkey-config",
];

/// What is worth a second look in a valid configuration, one sentence each.
pub fn warnings(raw: &RawConfig) -> Vec<String> {
    let mut out = Vec::new();
    if raw.accounts.is_empty() {
        out.push("no [[accounts]]: there is nothing to watch".to_owned());
    } else if raw.policies.is_empty() {
        out.push("no [[policies]]: jobs are recorded but nothing is ever acted on".to_owned());
    }
    out.extend(repeated_accounts(raw));
    for (i, a) in raw.accounts.iter().enumerate() {
        let routed = a.virtual_key.is_some()
            || a.provider.is_some()
            || a.portkey_config.is_some()
            || a.headers.keys().any(|h| {
                PORTKEY_ROUTING_HEADERS
                    .iter()
                    .any(|r| h.eq_ignore_ascii_case(r))
            });
        for (k, v) in &a.headers {
            if matches!(v, HeaderSetting::Text(_)) && super::looks_sensitive(k) {
                out.push(format!(
                    "accounts[{i}] ({:?}): header {k:?} is written inline: give a secret by \
                     reference instead, {{ env = \"NAME\" }}, {{ file = \"/path\" }} or \
                     {{ credential = \"name\" }}",
                    a.name
                ));
            }
        }
        let has_credentials = a.portkey_api_key.is_some()
            || a.virtual_key.is_some()
            || a.bearer_token.is_some()
            || a.headers
                .iter()
                .any(|(k, v)| matches!(v, HeaderSetting::Secret(_)) || super::looks_sensitive(k));
        if has_credentials && let Some(host) = cleartext_host(&a.base_url) {
            out.push(format!(
                "accounts[{i}] ({:?}): base_url is http:// to {host}, not loopback: its keys \
                 cross the network in clear text; use https://",
                a.name
            ));
        }
        if a.portkey_api_key.is_some() && !routed {
            out.push(format!(
                "accounts[{i}] ({:?}): portkey_api_key without virtual_key, provider or \
                 portkey_config: Portkey can route these requests only if the API key has a \
                 default config",
                a.name
            ));
        }
    }
    if let Some(w) = schedule_far_away(&raw.daemon.sync_schedule, crate::model::time::now()) {
        out.push(w);
    }
    if raw.notifiers.is_empty() {
        for p in &raw.policies {
            if p.action == ActionKind::Notify {
                out.push(format!(
                    "policy {:?} has action = \"notify\" but there are no [[notifiers]]: its \
                     notices are only logged and recorded",
                    p.name
                ));
            } else if p.warn_at.as_ref().is_some_and(|w| !w.is_empty()) {
                out.push(format!(
                    "policy {:?} has warn_at but there are no [[notifiers]]: thresholds \
                     reached are only logged and recorded",
                    p.name
                ));
            }
        }
    }
    out
}

/// The host of an `http://` URL that is not loopback (`localhost`, 127.0.0.0/8, `::1`).
fn cleartext_host(base_url: &str) -> Option<String> {
    let url = reqwest::Url::parse(base_url.trim()).ok()?;
    if url.scheme() != "http" {
        return None;
    }
    let host = url.host_str()?;
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    (!loopback).then(|| host.to_owned())
}

/// Longest wait between syncs that is not worth a word: a daily sync is a choice, not a typo.
const SYNC_GAP_WARNED: i64 = 24 * 3600;

/// A sync schedule whose next run is more than a day away (`0 0 0 29 2 *`, years in a leap
/// cycle): jobs would go unwatched until then.
fn schedule_far_away(schedule: &str, now: i64) -> Option<String> {
    let next = crate::model::schedule::Schedule::parse(schedule)
        .ok()?
        .next_after(now)?;
    let wait = next.saturating_sub(now);
    if wait <= SYNC_GAP_WARNED {
        return None;
    }
    Some(format!(
        "daemon.sync_schedule {schedule:?} next runs at {} ({} from now): jobs go unwatched \
         until then",
        jiff::Timestamp::from_second(next)
            .ok()?
            .strftime("%Y-%m-%d %H:%M UTC"),
        crate::policy::format::secs(wait)
    ))
}

/// Accounts that repeat an earlier one: the same `base_url` (up to a trailing `/`) with the
/// same credentials and routing, so the same jobs would be listed, and acted on, twice. Secrets
/// are compared by reference (the same `{ env = "KEY" }`), never printed. One pass over the
/// accounts, however many there are.
fn repeated_accounts(raw: &RawConfig) -> Vec<String> {
    let mut seen: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (i, a) in raw.accounts.iter().enumerate() {
        let identity = format!(
            "{}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}\u{0}{:?}",
            a.base_url.trim_end_matches('/'),
            a.bearer_token,
            a.portkey_api_key,
            a.virtual_key,
            a.provider,
            a.portkey_config,
            a.headers,
        );
        match seen.entry(identity) {
            std::collections::hash_map::Entry::Occupied(first) => {
                let first = *first.get();
                out.push(format!(
                    "accounts[{i}] ({:?}) repeats accounts[{first}] ({:?}): the same base_url and \
                     credentials, so the same jobs are watched, and acted on, twice",
                    a.name, raw.accounts[first].name
                ));
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Format;

    #[test]
    fn an_account_repeated_under_another_name_is_named_and_others_are_not() {
        let mut toml = String::new();
        for i in 0..200 {
            toml.push_str(&format!(
                "[[accounts]]\nname = \"p{i}\"\nbase_url = \"https://api.openai.com/v1\"\n\
                 bearer_token = {{ env = \"KEY_{i}\" }}\n"
            ));
        }
        // The same key reference and URL (a trailing slash is no difference) as p7.
        toml.push_str(
            "[[accounts]]\nname = \"again\"\nbase_url = \"https://api.openai.com/v1/\"\n\
             bearer_token = { env = \"KEY_7\" }\n",
        );
        // Same key, another host: not a repeat.
        toml.push_str(
            "[[accounts]]\nname = \"azure\"\nbase_url = \"https://x.openai.azure.com/v1\"\n\
             bearer_token = { env = \"KEY_7\" }\n",
        );
        let w = repeated_accounts(&raw(&toml));
        assert_eq!(
            w,
            [
                "accounts[200] (\"again\") repeats accounts[7] (\"p7\"): the same base_url and \
              credentials, so the same jobs are watched, and acted on, twice"
            ]
        );
    }

    fn raw(toml: &str) -> RawConfig {
        figment::Figment::new()
            .merge(figment::providers::Toml::string(toml))
            .extract()
            .unwrap()
    }

    #[test]
    fn says_what_a_valid_configuration_will_not_do() {
        let cases: &[(&str, &[&str])] = &[
            ("", &["no [[accounts]]"]),
            ("[[accounts]]\nname = \"a\"", &["no [[policies]]"]),
            (
                "[[accounts]]\nname = \"pk\"\nportkey_api_key = { env = \"K\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &["accounts[0] (\"pk\"): portkey_api_key without virtual_key"],
            ),
            (
                "[[accounts]]\nname = \"pk\"\nportkey_api_key = { env = \"K\" }\n\
                 headers = { \"X-Portkey-Provider\" = \"openai\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &[],
            ),
            (
                "[[accounts]]\nname = \"a\"\n\
                 [[policies]]\nname = \"m\"\nkind = \"allowed_models\"\nmodels = [\"x*\"]\naction = \"notify\"\n\
                 [[policies]]\nname = \"b\"\nkind = \"budget\"\nlimit_usd = 10.0\nwarn_at = [0.8]",
                &[
                    "policy \"m\" has action = \"notify\" but there are no [[notifiers]]",
                    "policy \"b\" has warn_at but there are no [[notifiers]]",
                ],
            ),
            (
                "[[accounts]]\nname = \"bedrock\"\nprovider = \"bedrock\"\n\
                 headers = { \"x-portkey-aws-secret-access-key\" = \"wJalr\", \"x-portkey-aws-access-key-id\" = { env = \"AWS_ACCESS_KEY_ID\" }, \"x-portkey-aws-region\" = \"us-east-1\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &[
                    "accounts[0] (\"bedrock\"): header \"x-portkey-aws-secret-access-key\" is written inline",
                ],
            ),
            (
                "[[accounts]]\nname = \"a\"\nbase_url = \"http://10.0.0.5:8787/v1\"\nbearer_token = { env = \"K\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &["accounts[0] (\"a\"): base_url is http:// to 10.0.0.5, not loopback"],
            ),
            (
                "[[accounts]]\nname = \"a\"\nbase_url = \"http://gw.internal/v1\"\nheaders = { \"x-portkey-aws-secret-access-key\" = { env = \"S\" } }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &["accounts[0] (\"a\"): base_url is http:// to gw.internal, not loopback"],
            ),
            (
                "[[accounts]]\nname = \"a\"\nbase_url = \"http://127.0.0.1:8787/v1\"\nbearer_token = { env = \"K\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &[],
            ),
            (
                "[[accounts]]\nname = \"a\"\nbase_url = \"http://localhost:8787/v1\"\nbearer_token = { env = \"K\" }\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &[],
            ),
            (
                "[[accounts]]\nname = \"a\"\nbase_url = \"http://10.0.0.5/v1\"\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &[],
            ),
            (
                "[daemon]\nsync_schedule = \"0 0 0 29 2 *\"\n[[accounts]]\nname = \"a\"\n\
                 [[policies]]\nname = \"r\"\nkind = \"max_runtime\"\nlimit = \"1h\"",
                &["daemon.sync_schedule \"0 0 0 29 2 *\" next runs at"],
            ),
            (
                "[[accounts]]\nname = \"a\"\n[[notifiers]]\nurl = { env = \"HOOK\" }\n\
                 [[policies]]\nname = \"b\"\nkind = \"budget\"\nlimit_usd = 10.0\nwarn_at = [0.8]",
                &[],
            ),
        ];
        for (toml, expected) in cases {
            let got = warnings(&raw(toml));
            assert_eq!(got.len(), expected.len(), "{toml}: {got:?}");
            for (g, e) in got.iter().zip(expected.iter()) {
                assert!(g.starts_with(e), "{toml}: {g}");
            }
        }
    }

    #[test]
    fn a_sync_schedule_more_than_a_day_away_is_said() {
        // 2026-12-04 12:00 UTC.
        let now = 1_796_385_600;
        assert_eq!(schedule_far_away("0 * * * * *", now), None);
        assert_eq!(schedule_far_away("0 0 3 * * *", now), None);
        let w = schedule_far_away("0 0 0 1 1 *", now).unwrap();
        assert!(w.contains("next runs at 2027-01-01 00:00 UTC"), "{w}");
        assert!(schedule_far_away("0 0 0 29 2 *", now).is_some());
    }
}
