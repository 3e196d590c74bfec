//! Configuration: built-in defaults < TOML file < `FTGUARD_*` environment (`__` nests).
//! Everything is parsed into typed values here; nothing downstream re-parses strings.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Toml};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};

use crate::config::secret::SecretRef;
use crate::cost::pricing::{PriceTable, PricingConfig};
use crate::model::AccountName;
use crate::policy::{Policy, PolicyConfig};
pub use notifier::{Notifier, NotifierConfig, NotifyFormat};

use crate::model::schedule::Schedule;

pub mod notifier;
mod parse_error;
pub mod secret;
mod warnings;

/// Where a configuration could not be loaded, and why. Messages name the file and the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration file {path} does not exist (given by {given_by})")]
    Missing {
        path: PathBuf,
        given_by: &'static str,
    },
    #[error("{}", parse_error::describe(error, file.as_deref()))]
    Parse {
        error: Box<figment::Error>,
        file: Option<PathBuf>,
    },
    #[error("{source_name}: {key}: {message}")]
    Invalid {
        source_name: String,
        key: String,
        message: String,
    },
}

/// The file as written (after defaults and environment), kept for `config check`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    #[serde(default)]
    pub daemon: DaemonConfig,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub policies: Vec<PolicyConfig>,
    #[serde(default)]
    pub notifiers: Vec<NotifierConfig>,
    #[serde(default)]
    pub pricing: PricingConfig,
}

/// API requests in flight at once across accounts when `[daemon] max_concurrent_requests` is
/// not set: enough to keep a sync of hundreds of accounts busy over a round trip, few enough for
/// any gateway's accept backlog.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 16;

/// The most `daemon.max_concurrent_requests` may be: more connections than that to one host is
/// a flood, not a sync.
const MAX_CONCURRENT_REQUESTS: usize = 1024;

/// `[daemon]`.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct DaemonConfig {
    /// SQLite file; default `$STATE_DIRECTORY/ftguard.db` when set, else `./ftguard.db`.
    pub database: Option<PathBuf>,
    /// Cron with seconds.
    pub sync_schedule: String,
    /// When true, no policy acts; decisions are only recorded.
    pub dry_run: bool,
    /// Circuit breaker: at most this many cancels/pauses per pass.
    pub max_cancels_per_pass: u32,
    /// Circuit breaker across passes: at most this many per hour; unset, no such limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cancels_per_hour: Option<u32>,
    /// How long shutdown waits for in-flight actions, and then for notices being delivered.
    #[serde(with = "humantime_serde")]
    pub shutdown_timeout: Duration,
    /// A complete listing of every account at least this often; syncs in between page only
    /// as far back as the oldest job that was active.
    #[serde(with = "humantime_serde")]
    pub full_sync_every: Duration,
    /// `/healthz` and `/metrics` address; off when unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<std::net::SocketAddr>,
    /// API requests in flight at once across all accounts (their connections are shared).
    pub max_concurrent_requests: usize,
}

impl Default for DaemonConfig {
    fn default() -> Self {
        Self {
            database: None,
            sync_schedule: "0 * * * * *".into(),
            dry_run: false,
            max_cancels_per_pass: 10,
            max_cancels_per_hour: None,
            shutdown_timeout: Duration::from_secs(20),
            full_sync_every: Duration::from_secs(24 * 3600),
            listen: None,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

fn default_base_url() -> String {
    "https://api.portkey.ai/v1".into()
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_max_attempts() -> u32 {
    5
}
fn default_max_pages() -> u32 {
    1000
}
fn default_max_retry_after() -> Duration {
    Duration::from_secs(60)
}
/// 8 MiB: a page of 100 jobs is a few hundred KB, and the unit's `MemoryMax` is 256 MB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 8 * 1024 * 1024;
fn default_max_response_bytes() -> u64 {
    DEFAULT_MAX_RESPONSE_BYTES
}

/// `[[accounts]]` as written.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AccountConfig {
    pub name: String,
    #[serde(default = "default_base_url")]
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portkey_api_key: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub virtual_key: Option<SecretRef>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub portkey_config: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretRef>,
    #[serde(default)]
    pub headers: BTreeMap<String, HeaderSetting>,
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
    #[serde(default = "default_request_timeout", with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Attempts per request, the first included.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// List pagination stops with a warning after this many pages.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// A `Retry-After` longer than this is capped to it.
    #[serde(default = "default_max_retry_after", with = "humantime_serde")]
    pub max_retry_after: Duration,
    /// A JSON answer longer than this fails its request (training files are streamed).
    #[serde(default = "default_max_response_bytes")]
    pub max_response_bytes: u64,
}

/// An account ready to talk to: URL parsed, secrets resolved into sensitive header values.
#[derive(Debug, Clone)]
pub struct Account {
    pub name: AccountName,
    pub base_url: reqwest::Url,
    pub headers: HeaderMap,
    /// The credentials the headers carry, by key and reference (`bearer_token from env
    /// OPENAI_API_KEY`), never by value: named when the API rejects them.
    pub credentials: Vec<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    pub max_attempts: u32,
    pub max_pages: u32,
    pub max_retry_after: Duration,
    pub max_response_bytes: u64,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub database: PathBuf,
    pub sync_schedule: Schedule,
    pub dry_run: bool,
    pub max_cancels_per_pass: u32,
    pub max_cancels_per_hour: Option<u32>,
    pub shutdown_timeout: Duration,
    pub listen: Option<std::net::SocketAddr>,
    pub full_sync_every: Duration,
    /// API requests in flight at once across all accounts.
    pub max_concurrent_requests: usize,
    pub accounts: Vec<Account>,
    pub policies: Vec<Policy>,
    pub notifiers: Vec<Notifier>,
    /// Training prices in force: built-in, with `[pricing]` on top.
    pub prices: PriceTable,
    /// The file read, if any.
    pub source: Option<PathBuf>,
    pub raw: RawConfig,
}

/// Finds the configuration file: `--config`, else `$FTGUARD_CONFIG`, else `./ftguard.toml`,
/// else `/etc/ftguard/ftguard.toml`; `None` when there is none (built-in defaults only).
pub fn locate(explicit: Option<&Path>) -> Result<Option<PathBuf>, ConfigError> {
    if let Some(p) = explicit {
        return if p.exists() {
            Ok(Some(p.to_owned()))
        } else {
            Err(ConfigError::Missing {
                path: p.to_owned(),
                given_by: "--config",
            })
        };
    }
    if let Some(p) = std::env::var_os("FTGUARD_CONFIG").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        return if p.exists() {
            Ok(Some(p))
        } else {
            Err(ConfigError::Missing {
                path: p,
                given_by: "$FTGUARD_CONFIG",
            })
        };
    }
    Ok(["ftguard.toml", "/etc/ftguard/ftguard.toml"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists()))
}

/// Whether loading a configuration reads the secrets it refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Secrets {
    /// Every reference must resolve: for commands that talk to an API or notify.
    Resolve,
    /// References are checked for form only and accounts carry no credentials; notifiers are
    /// left out. For commands that only read the database (`jobs`, `show`, `actions`, `spend`,
    /// `plan --offline`), so that an operator can inspect what the service stored without the
    /// service's credentials (systemd hands those to the service alone).
    Skip,
}

impl Config {
    /// Locates, reads and validates the configuration, resolving every secret reference.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        Self::load_with(explicit, Secrets::Resolve)
    }

    /// [`Config::load`], resolving secrets or not.
    pub fn load_with(explicit: Option<&Path>, secrets: Secrets) -> Result<Self, ConfigError> {
        let path = locate(explicit)?;
        let mut figment = Figment::new();
        if let Some(p) = &path {
            figment = figment.merge(Toml::file_exact(p));
        }
        figment = figment.merge(
            Env::prefixed("FTGUARD_")
                .filter(|k| {
                    !["config", "log"]
                        .iter()
                        .any(|n| k.as_str().eq_ignore_ascii_case(n))
                })
                .split("__"),
        );
        let raw: RawConfig = figment.extract().map_err(|e| ConfigError::Parse {
            error: Box::new(e),
            file: path.clone(),
        })?;
        Self::from_raw_with(raw, path, secrets)
    }

    /// Validates an already-read configuration, resolving its secrets.
    pub fn from_raw(raw: RawConfig, source: Option<PathBuf>) -> Result<Self, ConfigError> {
        Self::from_raw_with(raw, source, Secrets::Resolve)
    }

    /// Validates an already-read configuration.
    pub fn from_raw_with(
        raw: RawConfig,
        source: Option<PathBuf>,
        secrets: Secrets,
    ) -> Result<Self, ConfigError> {
        let source_name = source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "built-in defaults".into());
        let invalid = |key: String, message: String| ConfigError::Invalid {
            source_name: source_name.clone(),
            key,
            message,
        };
        let sync_schedule = Schedule::parse(&raw.daemon.sync_schedule)
            .map_err(|e| invalid("daemon.sync_schedule".into(), e.to_string()))?;
        if !(1..=MAX_CONCURRENT_REQUESTS).contains(&raw.daemon.max_concurrent_requests) {
            return Err(invalid(
                "daemon.max_concurrent_requests".into(),
                format!(
                    "{} is out of range: between 1 and {MAX_CONCURRENT_REQUESTS}",
                    raw.daemon.max_concurrent_requests
                ),
            ));
        }
        for (key, d) in [
            ("daemon.shutdown_timeout", raw.daemon.shutdown_timeout),
            ("daemon.full_sync_every", raw.daemon.full_sync_every),
        ] {
            crate::model::bounded_duration(d).map_err(|e| invalid(key.into(), e.to_string()))?;
        }
        let database = raw.daemon.database.clone().unwrap_or_else(|| {
            std::env::var_os("STATE_DIRECTORY")
                .filter(|d| !d.is_empty())
                .map(|d| {
                    // systemd may list several directories separated by ':'; the first is ours.
                    let first = d
                        .to_string_lossy()
                        .split(':')
                        .next()
                        .unwrap_or("")
                        .to_owned();
                    PathBuf::from(first).join("ftguard.db")
                })
                .unwrap_or_else(|| PathBuf::from("ftguard.db"))
        });

        let mut names = HashSet::new();
        let mut accounts = Vec::new();
        for (i, a) in raw.accounts.iter().enumerate() {
            let key = format!("accounts[{i}]");
            let account = build_account(a, secrets).map_err(|m| invalid(key.clone(), m))?;
            if !names.insert(account.name.clone()) {
                return Err(invalid(
                    format!("{key}.name"),
                    format!("duplicate account name {:?}", a.name),
                ));
            }
            accounts.push(account);
        }

        let mut policy_names = HashSet::new();
        let mut policies = Vec::new();
        for (i, p) in raw.policies.iter().enumerate() {
            let key = format!("policies[{i}] ({:?})", p.name);
            let policy =
                crate::policy::compile(p).map_err(|e| invalid(key.clone(), e.to_string()))?;
            if !policy_names.insert(p.name.clone()) {
                return Err(invalid(key, format!("duplicate policy name {:?}", p.name)));
            }
            for a in policy.matcher.accounts.iter() {
                if !names.iter().any(|n| n.as_str() == a) {
                    return Err(invalid(
                        format!("{key}.match.accounts"),
                        format!("unknown account {a:?}"),
                    ));
                }
            }
            policies.push(policy);
        }

        let mut notifiers = Vec::new();
        for (i, n) in raw.notifiers.iter().enumerate() {
            if secrets == Secrets::Skip {
                break;
            }
            notifiers.push(
                Notifier::build(n)
                    .map_err(|e| invalid(format!("notifiers[{i}]"), e.to_string()))?,
            );
        }

        let prices = PriceTable::build(&raw.pricing)
            .map_err(|e| invalid("pricing".into(), e.to_string()))?;

        Ok(Self {
            database,
            sync_schedule,
            dry_run: raw.daemon.dry_run,
            max_cancels_per_pass: raw.daemon.max_cancels_per_pass,
            max_cancels_per_hour: raw.daemon.max_cancels_per_hour,
            shutdown_timeout: raw.daemon.shutdown_timeout,
            listen: raw.daemon.listen,
            full_sync_every: raw.daemon.full_sync_every,
            max_concurrent_requests: raw.daemon.max_concurrent_requests,
            accounts,
            policies,
            notifiers,
            prices,
            source,
            raw,
        })
    }

    /// This configuration with the `[[policies]]` (and `[pricing]`, when given) of a candidate
    /// file instead of its own (`ftguard replay --policies FILE`), validated as `config check`
    /// validates a configuration: errors name the file and the key.
    pub fn with_candidate(&self, path: &Path) -> Result<Self, ConfigError> {
        /// A candidate file: policies and prices, nothing else.
        #[derive(Debug, Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Candidate {
            #[serde(default)]
            policies: Vec<PolicyConfig>,
            pricing: Option<PricingConfig>,
        }
        if !path.exists() {
            return Err(ConfigError::Missing {
                path: path.to_owned(),
                given_by: "--policies",
            });
        }
        let candidate: Candidate = Figment::new()
            .merge(Toml::file_exact(path))
            .extract()
            .map_err(|e| ConfigError::Parse {
                error: Box::new(e),
                file: Some(path.to_owned()),
            })?;
        if candidate.policies.is_empty() {
            return Err(ConfigError::Invalid {
                source_name: path.display().to_string(),
                key: "policies".into(),
                message: "no [[policies]] to replay".into(),
            });
        }
        let mut raw = self.raw.clone();
        raw.policies = candidate.policies;
        if let Some(pricing) = candidate.pricing {
            raw.pricing = pricing;
        }
        let mut config = Self::from_raw_with(raw, Some(path.to_owned()), Secrets::Skip)?;
        // Still this configuration's: only the policies and prices come from the candidate.
        config.source.clone_from(&self.source);
        Ok(config)
    }

    /// The effective configuration as TOML, with secret references (never values) and
    /// sensitive-looking static headers redacted.
    pub fn redacted_toml(&self) -> String {
        let mut raw = self.raw.clone();
        raw.daemon.database = Some(self.database.clone());
        for a in &mut raw.accounts {
            for (name, value) in a.headers.iter_mut() {
                if looks_sensitive(name) && matches!(value, HeaderSetting::Text(_)) {
                    *value = HeaderSetting::Text("***".into());
                }
            }
        }
        let mut value = match toml::Value::try_from(&raw) {
            Ok(v) => v,
            Err(e) => return format!("# cannot render: {e}\n"),
        };
        drop_empty(&mut value);
        toml::to_string_pretty(&value).unwrap_or_else(|e| format!("# cannot render: {e}\n"))
    }

    /// What is worth a second look in this valid configuration (see `config/warnings.rs`).
    pub fn warnings(&self) -> Vec<String> {
        warnings::warnings(&self.raw)
    }

    pub fn account(&self, name: &str) -> Option<&Account> {
        self.accounts.iter().find(|a| a.name.as_str() == name)
    }

    /// Keeps only these accounts, with their secrets resolved (on a configuration loaded with
    /// [`Secrets::Skip`]): `sync --account` needs no other account's credentials.
    pub fn only_accounts(&mut self, names: &[String]) -> Result<(), ConfigError> {
        let source_name = self
            .source
            .as_ref()
            .map_or_else(|| "built-in defaults".into(), |p| p.display().to_string());
        let mut kept = Vec::new();
        for (i, a) in self.raw.accounts.iter().enumerate() {
            if names.contains(&a.name) {
                kept.push(build_account(a, Secrets::Resolve).map_err(|message| {
                    ConfigError::Invalid {
                        source_name: source_name.clone(),
                        key: format!("accounts[{i}]"),
                        message,
                    }
                })?);
            }
        }
        self.accounts = kept;
        Ok(())
    }
}

/// Empty tables say nothing a reader needs (`[policies.match]` with nothing under it matches
/// everything, as leaving it out does) and only lengthen `config check`; so do empty top-level
/// lists (`notifiers = []`: the header line counts them). Empty lists inside a policy stay.
fn drop_empty(value: &mut toml::Value) {
    fn tables(value: &mut toml::Value) {
        match value {
            toml::Value::Table(t) => {
                for (_, v) in t.iter_mut() {
                    tables(v);
                }
                t.retain(|_, v| !matches!(v, toml::Value::Table(t) if t.is_empty()));
            }
            toml::Value::Array(a) => a.iter_mut().for_each(tables),
            _ => {}
        }
    }
    tables(value);
    if let toml::Value::Table(t) = value {
        t.retain(|_, v| !matches!(v, toml::Value::Array(a) if a.is_empty()));
    }
}

/// A static header's value under an account's `headers`: text, or a secret reference like the
/// account's keys (`{ env = "AWS_SECRET_ACCESS_KEY" }`), for what a gateway needs to reach a
/// provider — Bedrock's AWS keys, a Vertex AI service account — and must not sit in the file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum HeaderSetting {
    Text(String),
    Secret(SecretRef),
}

impl<'de> Deserialize<'de> for HeaderSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = HeaderSetting;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str(
                    "a header value: text, or a secret reference such as { env = \"NAME\" }",
                )
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<HeaderSetting, E> {
                Ok(HeaderSetting::Text(v.to_owned()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<HeaderSetting, A::Error> {
                SecretRef::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(HeaderSetting::Secret)
            }
        }
        d.deserialize_any(V)
    }
}

pub(crate) fn looks_sensitive(header: &str) -> bool {
    // By word, so `x-portkey-custom-host` is not mistaken for a key.
    header.to_ascii_lowercase().split(['-', '_']).any(|w| {
        w.starts_with("auth")
            || matches!(
                w,
                "key" | "apikey" | "token" | "secret" | "cookie" | "password"
            )
    })
}

fn build_account(a: &AccountConfig, secrets: Secrets) -> Result<Account, String> {
    let name = AccountName::parse(&a.name).map_err(|e| e.to_string())?;
    let ctx = |what: &str, e: String| format!("account {:?}: {what}: {e}", a.name);
    // Parsed as written: the client joins paths to it and keeps its query string (some
    // gateways need one) on every request.
    let base_url = reqwest::Url::parse(a.base_url.trim()).map_err(|e| {
        // Quoted to help fix a typo, unless it may hold a password.
        let shown = if a.base_url.contains('@') {
            String::new()
        } else {
            format!("{:?}: ", a.base_url)
        };
        ctx("base_url", format!("{shown}{e}"))
    })?;
    if !matches!(base_url.scheme(), "http" | "https") {
        return Err(ctx("base_url", "must be http or https".into()));
    }
    // Credentials in the URL are inline secrets: they would be in `config check` and errors.
    let in_query = base_url
        .query_pairs()
        .find(|(k, _)| looks_sensitive(k))
        .map(|(k, _)| k.into_owned());
    if base_url.password().is_some() || in_query.is_some() {
        let what = in_query.map_or("user:password@host".to_owned(), |k| format!("?{k}=..."));
        return Err(ctx(
            "base_url",
            format!(
                "must not carry credentials ({what}); give the key by reference, e.g. \
                 bearer_token = {{ env = \"OPENAI_API_KEY\" }}, or a header in `headers`"
            ),
        ));
    }
    let mut headers = HeaderMap::new();
    let mut put = |header: &'static str, value: &str, sensitive: bool, key: &str| {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ctx(
                key,
                "contains characters not allowed in an HTTP header".into(),
            )
        })?;
        v.set_sensitive(sensitive);
        headers.insert(HeaderName::from_static(header), v);
        Ok::<_, String>(())
    };
    let secret = |key: &str, r: &SecretRef| r.resolve().map_err(|e| ctx(key, e.to_string()));
    let (portkey_api_key, virtual_key, bearer_token) = match secrets {
        Secrets::Resolve => (&a.portkey_api_key, &a.virtual_key, &a.bearer_token),
        Secrets::Skip => (&None, &None, &None),
    };
    let credentials: Vec<String> = [
        ("portkey_api_key", portkey_api_key),
        ("virtual_key", virtual_key),
        ("bearer_token", bearer_token),
    ]
    .into_iter()
    .filter_map(|(key, r)| r.as_ref().map(|r| format!("{key} from {r}")))
    .chain(a.headers.iter().filter_map(|(k, v)| match v {
        HeaderSetting::Secret(r) => Some(format!("header {k} from {r}")),
        HeaderSetting::Text(_) => looks_sensitive(k).then(|| format!("header {k}")),
    }))
    .collect();
    if let Some(r) = portkey_api_key {
        put(
            "x-portkey-api-key",
            secret("portkey_api_key", r)?.expose(),
            true,
            "portkey_api_key",
        )?;
    }
    if let Some(r) = virtual_key {
        put(
            "x-portkey-virtual-key",
            secret("virtual_key", r)?.expose(),
            true,
            "virtual_key",
        )?;
    }
    if let Some(p) = &a.provider {
        put("x-portkey-provider", p, false, "provider")?;
    }
    if let Some(c) = &a.portkey_config {
        put("x-portkey-config", c, false, "portkey_config")?;
    }
    if let Some(r) = bearer_token {
        let token = secret("bearer_token", r)?;
        put(
            "authorization",
            &format!("Bearer {}", token.expose()),
            true,
            "bearer_token",
        )?;
    }
    for (k, v) in &a.headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ctx("headers", format!("{k:?} is not a valid header name")))?;
        let (text, sensitive) = match v {
            HeaderSetting::Text(t) => (t.clone(), looks_sensitive(k)),
            HeaderSetting::Secret(r) => match secrets {
                Secrets::Resolve => (
                    secret(&format!("headers.{k}"), r)?.expose().to_owned(),
                    true,
                ),
                Secrets::Skip => continue,
            },
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| {
            ctx(
                "headers",
                format!("value of {k:?} is not a valid header value"),
            )
        })?;
        value.set_sensitive(sensitive);
        headers.insert(name, value);
    }
    if a.max_attempts == 0 {
        return Err(ctx("max_attempts", "must be at least 1".into()));
    }
    if a.max_pages == 0 {
        return Err(ctx("max_pages", "must be at least 1".into()));
    }
    for (key, d) in [
        ("connect_timeout", a.connect_timeout),
        ("request_timeout", a.request_timeout),
        ("max_retry_after", a.max_retry_after),
    ] {
        crate::model::bounded_duration(d).map_err(|e| ctx(key, e.to_string()))?;
    }
    if !(1024..=1024 * 1024 * 1024).contains(&a.max_response_bytes) {
        return Err(ctx(
            "max_response_bytes",
            format!(
                "{} is out of range: between 1024 (1 KiB) and 1073741824 (1 GiB); default {DEFAULT_MAX_RESPONSE_BYTES}",
                a.max_response_bytes
            ),
        ));
    }
    Ok(Account {
        name,
        base_url,
        headers,
        credentials,
        connect_timeout: a.connect_timeout,
        request_timeout: a.request_timeout,
        max_attempts: a.max_attempts,
        max_pages: a.max_pages,
        max_retry_after: a.max_retry_after,
        max_response_bytes: a.max_response_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_str(toml: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = Figment::new()
            .merge(Toml::string(toml))
            .extract()
            .map_err(|e| ConfigError::Parse {
                error: Box::new(e),
                file: Some("test.toml".into()),
            })?;
        Config::from_raw(raw, Some("test.toml".into()))
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = load_str("[daemon]\nsync_shedule = \"* * * * * *\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("sync_shedule"), "{err}");
    }

    #[test]
    fn bad_account_name_and_duplicates() {
        let err = load_str("[[accounts]]\nname = \"Prod\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("accounts[0]") && err.contains("Prod"), "{err}");
        let err = load_str("[[accounts]]\nname = \"a\"\n[[accounts]]\nname = \"a\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate account name"), "{err}");
    }

    #[test]
    fn bad_cron_names_the_key() {
        let err = load_str("[daemon]\nsync_schedule = \"every minute\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("daemon.sync_schedule"), "{err}");
        let err = load_str("[daemon]\nsync_schedule = \"0 0 0 31 4 *\"")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("daemon.sync_schedule") && err.contains("never fires"),
            "{err}"
        );
    }

    #[test]
    fn missing_env_secret_names_account_and_reference() {
        let err = load_str(
            "[[accounts]]\nname = \"prod\"\nportkey_api_key = { env = \"FTGUARD_TEST_SURELY_UNSET_VAR\" }",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("\"prod\"") && err.contains("FTGUARD_TEST_SURELY_UNSET_VAR"),
            "{err}"
        );
    }

    #[test]
    fn inline_secret_is_refused() {
        let err = load_str("[[accounts]]\nname = \"prod\"\nbearer_token = \"sk-inline\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("bearer_token"), "{err}");
        assert!(!err.contains("sk-inline"), "{err}");
    }

    /// A password or a key written into base_url is an inline secret too; a user name alone or
    /// an ordinary query (`api-version`) is not.
    #[test]
    fn credentials_in_base_url_are_refused_without_echoing_them() {
        for (url, what) in [
            ("https://me:pa55word@gw.example/v1", "(user:password@host)"),
            ("https://gw.example/v1?api-key=s3cret", "(?api-key=...)"),
            (
                "https://gw.example/v1?api-version=1&token=s3cret",
                "(?token=...)",
            ),
        ] {
            let err = load_str(&format!("[[accounts]]\nname = \"p\"\nbase_url = \"{url}\""))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains(&format!("base_url: must not carry credentials {what}")),
                "{err}"
            );
            assert!(
                !err.contains("pa55word") && !err.contains("s3cret"),
                "{err}"
            );
        }
        for url in [
            "https://me@gw.example/v1",
            "https://x.azure.example/openai?api-version=2024-10-21",
        ] {
            load_str(&format!("[[accounts]]\nname = \"p\"\nbase_url = \"{url}\""))
                .unwrap_or_else(|e| panic!("{url}: {e}"));
        }
        // Not a URL: quoted to help fix it, unless it may hold a password.
        let err = load_str("[[accounts]]\nname = \"p\"\nbase_url = \"gw example\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("base_url: \"gw example\": "), "{err}");
        let err = load_str("[[accounts]]\nname = \"p\"\nbase_url = \"me:pa55word@gw example\"")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("pa55word"), "{err}");
    }

    #[test]
    fn sensitive_header_values_are_redacted_in_the_printout() {
        let cfg = load_str(
            "[[accounts]]\nname = \"p\"\nheaders = { \"x-api-key\" = \"hunter2\", \"x-portkey-custom-host\" = \"http://h/v1\" }",
        )
        .unwrap();
        let out = cfg.redacted_toml();
        assert!(!out.contains("hunter2"), "{out}");
        assert!(out.contains("http://h/v1"), "{out}");
    }

    /// What a gateway needs to reach another provider (Bedrock's AWS keys) given by reference:
    /// sent, marked sensitive, printed as the reference; left out by commands that only read
    /// the database; a missing one names the header and the reference.
    #[test]
    fn a_header_given_by_reference() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("aws-secret");
        std::fs::write(&file, "wJalrXUtnFEMI/K7MDENG\n").unwrap();
        let toml = format!(
            "[[accounts]]\nname = \"b\"\nprovider = \"bedrock\"\nheaders = {{ \"x-portkey-aws-secret-access-key\" = {{ file = {:?} }}, \"x-portkey-aws-region\" = \"us-east-1\" }}",
            file.display().to_string()
        );
        let cfg = load_str(&toml).unwrap();
        let sent = &cfg.accounts[0].headers["x-portkey-aws-secret-access-key"];
        assert_eq!(sent.to_str().unwrap(), "wJalrXUtnFEMI/K7MDENG");
        assert!(sent.is_sensitive());
        assert!(!cfg.accounts[0].headers["x-portkey-aws-region"].is_sensitive());
        let out = cfg.redacted_toml();
        assert!(!out.contains("wJalrXUtnFEMI"), "{out}");
        assert!(out.contains("aws-secret"), "the reference: {out}");
        assert!(
            cfg.accounts[0]
                .credentials
                .iter()
                .any(|c| c.starts_with("header x-portkey-aws-secret-access-key from file")),
            "{:?}",
            cfg.accounts[0].credentials
        );
        let raw: RawConfig = Figment::new().merge(Toml::string(&toml)).extract().unwrap();
        let skipped = Config::from_raw_with(raw, None, Secrets::Skip).unwrap();
        assert!(
            !skipped.accounts[0]
                .headers
                .contains_key("x-portkey-aws-secret-access-key")
        );
        std::fs::remove_file(&file).unwrap();
        let err = load_str(&toml).unwrap_err().to_string();
        assert!(
            err.contains("headers.x-portkey-aws-secret-access-key") && err.contains("aws-secret"),
            "{err}"
        );
    }

    #[test]
    fn a_secret_written_as_a_number_is_not_echoed() {
        for (line, hidden) in [
            ("bearer_token = 8675309123", "8675309123"),
            ("portkey_api_key = { env = 4242424242 }", "4242424242"),
            ("headers = { Authorization = 5551234567 }", "5551234567"),
        ] {
            let err = load_str(&format!("[[accounts]]\nname = \"a\"\n{line}"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(hidden), "{err}");
            assert!(err.contains("found a number"), "{err}");
        }
        // Not a secret: the value helps.
        let err = load_str("[[accounts]]\nname = \"a\"\nheaders = { x-team = 5 }")
            .unwrap_err()
            .to_string();
        assert!(err.contains("found the number 5"), "{err}");
    }

    #[test]
    fn the_printout_leaves_out_empty_tables_and_keeps_the_order_of_the_keys() {
        let cfg = load_str(
            "[[accounts]]\nname = \"p\"\n[[policies]]\nname = \"m\"\nkind = \"allowed_models\"\nmodels = [\"gpt-4o-mini*\"]\nmatch = {}",
        )
        .unwrap();
        let out = cfg.redacted_toml();
        for gone in [
            "[policies.match]",
            "[policies.exempt]",
            "[accounts.headers]",
            "notifiers",
        ] {
            assert!(!out.contains(gone), "{gone}: {out}");
        }
        let at = |s: &str| out.find(s).unwrap_or_else(|| panic!("{s}: {out}"));
        assert!(at("[daemon]") < at("[[accounts]]") && at("[[accounts]]") < at("[[policies]]"));
        assert!(
            at("name = \"m\"") < at("kind = ") && at("kind = ") < at("models = "),
            "{out}"
        );
    }

    /// Every duration and amount is range-checked when the configuration is read: a limit too
    /// large to represent went negative in `as` casts and made `plan` cancel every job.
    #[test]
    fn durations_and_amounts_out_of_range_are_refused_with_the_key_named() {
        let policy = |body: &str| format!("[[policies]]\nname = \"p\"\n{body}");
        let cases = [
            (
                policy("kind = \"max_runtime\"\nlimit = \"292471208679y\""),
                "policies[0] (\"p\")",
                "limit \"292471208679y\": ",
            ),
            (
                policy("kind = \"max_runtime\"\nlimit = \"6h\"\ngrace = \"200y\""),
                "policies[0] (\"p\")",
                "grace: ",
            ),
            (
                policy("kind = \"max_job_cost\"\nlimit_usd = 1e300"),
                "policies[0] (\"p\")",
                "limit_usd 1e300 is out of range",
            ),
            (
                policy("kind = \"budget\"\nlimit_usd = 10.0\nperiod = \"1000y\""),
                "policies[0] (\"p\")",
                "period \"1000y\": ",
            ),
            (
                policy("kind = \"max_epochs\"\nlimit = 1e300"),
                "policies[0] (\"p\")",
                "out of range",
            ),
            (
                "[daemon]\nfull_sync_every = \"292471208679y\"".to_owned(),
                "daemon.full_sync_every",
                "out of range",
            ),
            (
                "[[accounts]]\nname = \"a\"\nrequest_timeout = \"500y\"".to_owned(),
                "accounts[0]",
                "request_timeout: ",
            ),
            (
                "[[accounts]]\nname = \"a\"\nmax_response_bytes = 10".to_owned(),
                "accounts[0]",
                "max_response_bytes: 10 is out of range",
            ),
            (
                "[pricing.per_million_training_tokens]\n\"gpt-x\" = 1e30".to_owned(),
                "pricing",
                "out of range",
            ),
        ];
        for (toml, key, want) in cases {
            let err = load_str(&toml)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains(key) && err.contains(want), "{toml}\n=> {err}");
        }
        let ok = load_str(&policy("kind = \"max_runtime\"\nlimit = \"99y\"")).unwrap();
        assert_eq!(ok.policies.len(), 1);
    }
}
