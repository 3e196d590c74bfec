//! Secrets by reference: `{ env = "NAME" }`, `{ file = "/path" }`, `{ credential = "name" }`.
//! A resolved [`Secret`] prints as `***`; `.expose()` at the header-building site is the only
//! way to read it.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a secret comes from. Printing a reference is safe; it never holds the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable.
    Env(String),
    /// A file; one trailing newline is trimmed.
    File(PathBuf),
    /// `$CREDENTIALS_DIRECTORY/<name>`, as systemd's `LoadCredential=` provides.
    Credential(String),
}

/// The written form: exactly one of the three keys.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RefTable {
    env: Option<String>,
    file: Option<PathBuf>,
    credential: Option<String>,
}

impl<'de> Deserialize<'de> for SecretRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = SecretRef;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a secret reference: { env = \"NAME\" }, { file = \"/path\" } or { credential = \"name\" }")
            }
            // Deliberately does not echo the value: it is probably a secret written inline.
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<SecretRef, E> {
                Err(E::custom(
                    "secrets cannot be written inline; use { env = \"NAME\" }, { file = \"/path\" } or { credential = \"name\" }",
                ))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<SecretRef, A::Error> {
                let t = RefTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                match (t.env, t.file, t.credential) {
                    (Some(e), None, None) => Ok(SecretRef::Env(e)),
                    (None, Some(f), None) => Ok(SecretRef::File(f)),
                    (None, None, Some(c)) => Ok(SecretRef::Credential(c)),
                    _ => Err(serde::de::Error::custom(
                        "a secret reference needs exactly one of `env`, `file`, `credential`",
                    )),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Env(n) => write!(f, "env {n}"),
            Self::File(p) => write!(f, "file {}", p.display()),
            Self::Credential(n) => write!(f, "credential {n}"),
        }
    }
}

/// Why a secret could not be read. Names the reference, never a value.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set")]
    EnvNotSet(String),
    #[error("environment variable {0} is not valid UTF-8")]
    EnvNotUnicode(String),
    #[error(
        "credential {0}: $CREDENTIALS_DIRECTORY is not set: systemd sets it for the service from LoadCredential=; to check by hand, run with CREDENTIALS_DIRECTORY=<the directory LoadCredential= reads from>"
    )]
    NoCredentialsDirectory(String),
    #[error("credential {0:?}: a credential name cannot contain '/'")]
    BadCredentialName(String),
    #[error("cannot read secret file {}: {source}", .path.display())]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0} is empty")]
    Empty(String),
}

impl SecretRef {
    /// Reads the value. The error names the reference, never a value.
    pub fn resolve(&self) -> Result<Secret, SecretError> {
        let value = match self {
            Self::Env(name) => std::env::var(name).map_err(|e| match e {
                std::env::VarError::NotPresent => SecretError::EnvNotSet(name.clone()),
                std::env::VarError::NotUnicode(_) => SecretError::EnvNotUnicode(name.clone()),
            })?,
            Self::File(path) => read_trimmed(path)?,
            Self::Credential(name) => {
                let dir = std::env::var_os("CREDENTIALS_DIRECTORY")
                    .ok_or_else(|| SecretError::NoCredentialsDirectory(name.clone()))?;
                if name.contains('/') || name == ".." {
                    return Err(SecretError::BadCredentialName(name.clone()));
                }
                read_trimmed(&PathBuf::from(dir).join(name))?
            }
        };
        if value.is_empty() {
            return Err(SecretError::Empty(self.to_string()));
        }
        Ok(Secret(value))
    }
}

fn read_trimmed(path: &std::path::Path) -> Result<String, SecretError> {
    let mut s = std::fs::read_to_string(path).map_err(|source| SecretError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

/// A secret value. `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for building a request header. Nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_reference_trims_one_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "sk-abc\n").unwrap();
        assert_eq!(SecretRef::File(p).resolve().unwrap().expose(), "sk-abc");
    }

    #[test]
    fn missing_file_names_the_path() {
        let err = SecretRef::File("/nonexistent/ftguard-key".into())
            .resolve()
            .unwrap_err();
        assert!(matches!(err, SecretError::Unreadable { .. }), "{err}");
        assert!(
            err.to_string().contains("/nonexistent/ftguard-key"),
            "{err}"
        );
    }

    #[test]
    fn secret_never_prints() {
        let s = Secret("sk-live-123".into());
        assert_eq!(format!("{s} {s:?}"), "*** ***");
    }
}
