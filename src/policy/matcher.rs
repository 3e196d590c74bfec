//! Which jobs a policy looks at (`match`) and which it leaves alone (`exempt`).

use std::collections::BTreeMap;

use super::JobView;
use super::config::{ExemptConfig, MatchConfig};

/// Every non-empty criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct Matcher {
    pub accounts: Vec<String>,
    models: Vec<String>,
    methods: Vec<String>,
    suffixes: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl Matcher {
    pub fn build(c: &MatchConfig) -> Self {
        Self {
            accounts: c.accounts.clone(),
            models: c.models.clone(),
            methods: c.methods.clone(),
            suffixes: c.suffixes.clone(),
            metadata: c.metadata.clone(),
        }
    }

    pub fn matches(&self, v: &JobView) -> bool {
        let job = v.job;
        (self.accounts.is_empty() || self.accounts.iter().any(|a| a == v.account))
            && (self.models.is_empty() || self.models.iter().any(|g| glob(g, &job.model)))
            && (self.methods.is_empty()
                || self
                    .methods
                    .iter()
                    .any(|m| m == job.method.as_deref().unwrap_or("supervised")))
            && (self.suffixes.is_empty()
                || job
                    .suffix
                    .as_deref()
                    .is_some_and(|s| self.suffixes.iter().any(|g| glob(g, s))))
            && self
                .metadata
                .iter()
                .all(|(k, want)| job.metadata.get(k) == Some(want))
    }
}

/// Any criterion exempts.
#[derive(Debug, Clone, Default)]
pub struct Exempt {
    jobs: Vec<String>,
    metadata: BTreeMap<String, String>,
}

impl Exempt {
    pub fn build(c: &ExemptConfig) -> Self {
        Self {
            jobs: c.jobs.clone(),
            metadata: c.metadata.clone(),
        }
    }

    pub fn exempts(&self, v: &JobView) -> bool {
        self.jobs.iter().any(|j| j == v.job.id.as_str())
            || self
                .metadata
                .iter()
                .any(|(k, want)| v.job.metadata.get(k) == Some(want))
    }
}

/// Shell-style glob: `*` any run, `?` one character.
pub fn glob(pattern: &str, text: &str) -> bool {
    // Model names and metadata are ASCII in practice: match their bytes without allocating
    // (this runs for every job and pattern of every pass); otherwise match characters.
    if pattern.is_ascii() && text.is_ascii() {
        glob_in(pattern.as_bytes(), text.as_bytes())
    } else {
        let p: Vec<char> = pattern.chars().collect();
        let t: Vec<char> = text.chars().collect();
        glob_in(&p, &t)
    }
}

fn glob_in<T: PartialEq + GlobSymbol>(p: &[T], t: &[T]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match p.get(pi) {
            Some(c) if c.is_star() => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            Some(c) if c.is_any() || *c == t[ti] => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(GlobSymbol::is_star)
}

/// `*` and `?` as bytes or characters.
trait GlobSymbol {
    fn is_star(&self) -> bool;
    fn is_any(&self) -> bool;
}

impl GlobSymbol for u8 {
    fn is_star(&self) -> bool {
        *self == b'*'
    }
    fn is_any(&self) -> bool {
        *self == b'?'
    }
}

impl GlobSymbol for char {
    fn is_star(&self) -> bool {
        *self == '*'
    }
    fn is_any(&self) -> bool {
        *self == '?'
    }
}

#[cfg(test)]
mod tests {
    use super::glob;

    #[test]
    fn globs() {
        for (p, t, want) in [
            ("gpt-4o*", "gpt-4o-mini-2024-07-18", true),
            ("gpt-4o*", "gpt-4.1", false),
            ("*mini*", "gpt-4o-mini", true),
            ("exp-?", "exp-1", true),
            ("exp-?", "exp-12", false),
            ("*", "", true),
            ("a*b*c", "aXbYc", true),
            ("a*b*c", "aXbY", false),
            // Beyond ASCII, `?` is one character, not one byte.
            ("équipe-?", "équipe-é", true),
            ("?", "é", true),
            ("??", "é", false),
            ("*-ml", "données-ml", true),
        ] {
            assert_eq!(glob(p, t), want, "{p} vs {t}");
        }
    }
}
