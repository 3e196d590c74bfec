//! Training prices: a built-in table (sources in the README), overridable from `[pricing]`.
//! Models resolve exact, then by snapshot-free family; `ft:` models resolve to their base.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::Usd;

/// How a model's training is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Price {
    /// Token-billed methods (supervised, dpo): per 1M trained tokens.
    PerMillionTokens(Usd),
    /// Reinforcement fine-tuning: per hour of training.
    PerHour(Usd),
}

/// `[pricing]` as written, in dollars.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PricingConfig {
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_million_training_tokens: BTreeMap<String, f64>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub per_training_hour: BTreeMap<String, f64>,
}

/// Built-in token prices (USD per 1M training tokens), OpenAI's published prices.
const TOKEN_PRICES: &[(&str, f64)] = &[
    ("gpt-4o-2024-08-06", 25.0),
    ("gpt-4o-mini-2024-07-18", 3.0),
    ("gpt-4.1-2025-04-14", 25.0),
    ("gpt-4.1-mini-2025-04-14", 5.0),
    ("gpt-4.1-nano-2025-04-14", 1.5),
    ("gpt-3.5-turbo-0125", 8.0),
    ("gpt-3.5-turbo-1106", 8.0),
    ("gpt-3.5-turbo-0613", 8.0),
    ("davinci-002", 6.0),
    ("babbage-002", 0.4),
];

/// Built-in hourly prices (USD per training hour) for reinforcement fine-tuning.
const HOUR_PRICES: &[(&str, f64)] = &[("o4-mini-2025-04-16", 100.0)];

/// The price table in force.
#[derive(Debug, Clone)]
pub struct PriceTable {
    tokens: BTreeMap<String, Usd>,
    hours: BTreeMap<String, Usd>,
    /// Configured prices; consulted (exact, then family) before the built-in ones.
    token_overrides: BTreeMap<String, Usd>,
    hour_overrides: BTreeMap<String, Usd>,
}

impl Default for PriceTable {
    fn default() -> Self {
        Self::build(&PricingConfig::default()).unwrap_or_else(|_| Self {
            tokens: BTreeMap::new(),
            hours: BTreeMap::new(),
            token_overrides: BTreeMap::new(),
            hour_overrides: BTreeMap::new(),
        })
    }
}

/// A `[pricing]` entry that cannot be used: which model, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PricingError(pub String);

impl PriceTable {
    /// The built-in table with the configuration's overrides on top.
    pub fn build(c: &PricingConfig) -> Result<Self, PricingError> {
        Self::build_checked(c).map_err(PricingError)
    }

    fn build_checked(c: &PricingConfig) -> Result<Self, String> {
        let check = |k: &String, v: &f64| {
            crate::model::bounded_dollars(*v)
                .map(|_| ())
                .map_err(|e| format!("price of {k:?}: {e}"))
        };
        let tokens = TOKEN_PRICES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Usd::from_dollars(*v)))
            .collect();
        let hours = HOUR_PRICES
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Usd::from_dollars(*v)))
            .collect();
        let mut token_overrides = BTreeMap::new();
        for (k, v) in &c.per_million_training_tokens {
            check(k, v).map_err(|e| format!("pricing.per_million_training_tokens: {e}"))?;
            token_overrides.insert(k.clone(), Usd::from_dollars(*v));
        }
        let mut hour_overrides = BTreeMap::new();
        for (k, v) in &c.per_training_hour {
            check(k, v).map_err(|e| format!("pricing.per_training_hour: {e}"))?;
            hour_overrides.insert(k.clone(), Usd::from_dollars(*v));
        }
        Ok(Self {
            tokens,
            hours,
            token_overrides,
            hour_overrides,
        })
    }

    /// The price of training `model` with `method` (supervised when unknown).
    pub fn resolve(&self, model: &str, method: Option<&str>) -> Option<Price> {
        let base = base_model(model);
        if method == Some("reinforcement") {
            lookup(&self.hour_overrides, base)
                .or_else(|| lookup(&self.hours, base))
                .map(Price::PerHour)
        } else {
            lookup(&self.token_overrides, base)
                .or_else(|| lookup(&self.tokens, base))
                .map(Price::PerMillionTokens)
        }
    }

    /// Every price in force, for `config check`.
    pub fn describe(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (table, unit, origin) in [
            (
                &self.token_overrides,
                "per 1M training tokens",
                "configured",
            ),
            (&self.tokens, "per 1M training tokens", "built-in"),
            (&self.hour_overrides, "per training hour", "configured"),
            (&self.hours, "per training hour", "built-in"),
        ] {
            out.extend(
                table
                    .iter()
                    .map(|(k, v)| format!("{k}: {v} {unit} ({origin})")),
            );
        }
        out
    }
}

fn lookup(table: &BTreeMap<String, Usd>, model: &str) -> Option<Usd> {
    if let Some(p) = table.get(model) {
        return Some(*p);
    }
    let fam = family(model);
    // An entry named by the family itself wins over a sibling snapshot.
    table.get(fam).copied().or_else(|| {
        table
            .iter()
            .find(|(k, _)| family(k) == fam)
            .map(|(_, v)| *v)
    })
}

/// `ft:gpt-4o-mini-2024-07-18:org::id` -> `gpt-4o-mini-2024-07-18`.
pub fn base_model(model: &str) -> &str {
    match model.strip_prefix("ft:") {
        Some(rest) => rest.split(':').next().unwrap_or(rest),
        None => model,
    }
}

/// `gpt-4o-mini-2024-07-18` -> `gpt-4o-mini`; `gpt-3.5-turbo-0125` -> `gpt-3.5-turbo`.
pub fn family(model: &str) -> &str {
    let b = model.as_bytes();
    let digits = |s: &[u8]| s.iter().all(u8::is_ascii_digit);
    let n = b.len();
    // -YYYY-MM-DD
    if n > 11
        && b[n - 11] == b'-'
        && digits(&b[n - 10..n - 6])
        && b[n - 6] == b'-'
        && digits(&b[n - 5..n - 3])
        && b[n - 3] == b'-'
        && digits(&b[n - 2..])
    {
        return &model[..n - 11];
    }
    // -MMDD
    if n > 5 && b[n - 5] == b'-' && digits(&b[n - 4..]) {
        return &model[..n - 5];
    }
    model
}

/// Cost of `tokens` trained tokens at a per-million price, rounded to the micro-dollar.
/// A negative count is no count (the caller warns): it costs nothing rather than refunding.
/// Saturates at the largest amount instead of wrapping to a negative one.
pub fn token_cost(tokens: i64, per_million: Usd) -> Usd {
    let micro = i128::from(tokens.max(0)) * i128::from(per_million.0) / 1_000_000;
    Usd(i64::try_from(micro).unwrap_or(if micro < 0 { i64::MIN } else { i64::MAX }))
}

/// Cost of `secs` seconds at an hourly price, prorated to the second.
pub fn hour_cost(secs: i64, per_hour: Usd) -> Usd {
    let micro = i128::from(secs.max(0)) * i128::from(per_hour.0) / 3600;
    Usd(i64::try_from(micro).unwrap_or(if micro < 0 { i64::MIN } else { i64::MAX }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolution() {
        let t = PriceTable::default();
        let tok = |m: &str| match t.resolve(m, Some("supervised")) {
            Some(Price::PerMillionTokens(p)) => Some(p.to_string()),
            _ => None,
        };
        assert_eq!(
            tok("gpt-4o-mini-2024-07-18").as_deref(),
            Some("$3.00"),
            "exact"
        );
        assert_eq!(tok("gpt-4o-mini").as_deref(), Some("$3.00"), "family");
        assert_eq!(
            tok("gpt-4o-2024-11-20").as_deref(),
            Some("$25.00"),
            "sibling snapshot"
        );
        assert_eq!(
            tok("ft:gpt-4o-mini-2024-07-18:acme::abc123").as_deref(),
            Some("$3.00"),
            "fine-tuned base"
        );
        assert_eq!(tok("gpt-3.5-turbo").as_deref(), Some("$8.00"));
        assert_eq!(tok("gpt-4.1-nano-2025-04-14").as_deref(), Some("$1.50"));
        assert_eq!(tok("llama-3-70b"), None, "unknown");
        assert!(
            matches!(t.resolve("o4-mini-2025-04-16", Some("reinforcement")), Some(Price::PerHour(p)) if p == Usd::from_dollars(100.0))
        );
        assert_eq!(t.resolve("o4-mini-2025-04-16", Some("supervised")), None);
    }

    #[test]
    fn overrides_win() {
        let mut c = PricingConfig::default();
        c.per_million_training_tokens
            .insert("gpt-4o-mini".into(), 2.5);
        c.per_million_training_tokens.insert("my-model".into(), 1.0);
        let t = PriceTable::build(&c).unwrap();
        assert_eq!(
            t.resolve("gpt-4o-mini-2024-07-18", None),
            Some(Price::PerMillionTokens(Usd::from_dollars(2.5))),
            "a family override covers its snapshots"
        );
        assert_eq!(
            t.resolve("gpt-4o-2024-08-06", None),
            Some(Price::PerMillionTokens(Usd::from_dollars(25.0))),
            "others keep the built-in price"
        );
        assert_eq!(
            t.resolve("gpt-4o-mini-2099-01-01", None),
            Some(Price::PerMillionTokens(Usd::from_dollars(2.5)))
        );
        assert_eq!(
            t.resolve("my-model", None),
            Some(Price::PerMillionTokens(Usd::from_dollars(1.0)))
        );
        c.per_training_hour.insert("x".into(), -1.0);
        assert!(PriceTable::build(&c).unwrap_err().0.contains("\"x\""));
    }

    #[test]
    fn money() {
        assert_eq!(
            token_cost(6_133_333, Usd::from_dollars(3.0)).to_string(),
            "$18.40"
        );
        assert_eq!(
            hour_cost(5400, Usd::from_dollars(100.0)).to_string(),
            "$150.00"
        );
        assert_eq!(family("davinci-002"), "davinci-002");
    }
}
