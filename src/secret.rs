//! Secrets: a value that never prints itself, and where it comes from (`*_env` or `*_file` keys).

use std::fmt;
use std::path::{Path, PathBuf};

/// A secret value. `Debug` and `Display` print `****`; [`Secret::expose`] is the one way out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    #[must_use]
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself. Call it only where the value is sent to the party that needs it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

/// Where a secret comes from, as written in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// An environment variable's name.
    Env(String),
    /// A file whose content (trailing newline trimmed) is the secret.
    File(PathBuf),
}

impl SecretSource {
    /// From a pair of `*_env` / `*_file` keys; `key` is the key path without the suffix, for
    /// messages. Both set is an error; neither is `Ok(None)`.
    ///
    /// # Errors
    /// A message naming the key when both are set.
    pub fn from_keys(
        key: &str,
        env: Option<&String>,
        file: Option<&PathBuf>,
        base: &Path,
    ) -> Result<Option<Self>, String> {
        match (env, file) {
            (Some(_), Some(_)) => Err(format!("{key}: set either `{key}_env` or `{key}_file`, not both")),
            (Some(e), None) if e.is_empty() => Err(format!("{key}_env: name an environment variable")),
            (Some(e), None) => Ok(Some(Self::Env(e.clone()))),
            (None, Some(f)) => Ok(Some(Self::File(base.join(f)))),
            (None, None) => Ok(None),
        }
    }

    /// Reads the secret.
    ///
    /// # Errors
    /// A message naming the variable or file (never the value) and what to do.
    pub fn read(&self, key: &str) -> Result<Secret, String> {
        match self {
            Self::Env(name) => match std::env::var(name) {
                Ok(v) if !v.is_empty() => Ok(Secret(v)),
                _ => Err(format!("{key}_env names `{name}`, which is not set; export it before running tiny-forge")),
            },
            Self::File(path) => match std::fs::read_to_string(path) {
                Ok(v) => Ok(Secret(v.trim_end_matches(['\n', '\r']).to_owned())),
                Err(e) => Err(format!("{key}_file `{}` cannot be read: {e}", path.display())),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_mask_themselves_in_debug_and_display() {
        let s = Secret::new("hunter2".into());
        assert_eq!(format!("{s}"), "****");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn both_env_and_file_is_refused() {
        let e = SecretSource::from_keys("proxy.password", Some(&"X".into()), Some(&"f".into()), Path::new("/"));
        assert!(e.unwrap_err().contains("not both"));
    }

    #[test]
    fn missing_env_var_names_the_variable_not_a_value() {
        let e = SecretSource::Env("TF_TEST_SURELY_UNSET_VAR".into()).read("proxy.password").unwrap_err();
        assert!(e.contains("TF_TEST_SURELY_UNSET_VAR"), "{e}");
    }
}
