//! A stage as the config file alone determines it, and the step that adds what lies outside the
//! file: env files and the registry password (see [`Resolution`]).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::env_file;
use super::resolved::{RegistryAuth, Resolution, ResolvedStage};
use crate::proxy::HostAccess;
use crate::secret::SecretSource;

/// One layer of a stage's environment; later layers win per key.
#[derive(Debug, Clone)]
pub(super) enum EnvLayer {
    /// An `env_file`, relative paths already joined to the config's directory.
    File {
        /// Its key path, for messages.
        key: String,
        path: PathBuf,
    },
    /// An inline `env` table.
    Inline(BTreeMap<String, String>),
}

/// Where a stage's registry password comes from.
#[derive(Debug, Clone)]
pub(super) struct RegistrySecret {
    /// `registries."host".password`, for messages.
    pub(super) key: String,
    pub(super) username: String,
    pub(super) password: SecretSource,
}

/// Where a stage's basic-auth hash comes from.
#[derive(Debug, Clone)]
pub(super) struct AccessSecret {
    /// The key that names it, for messages.
    pub(super) key: String,
    /// The user it protects the host for.
    pub(super) user: String,
    /// Where the hash is read from.
    pub(super) source: SecretSource,
}

/// A validated stage: everything but its env and registry credentials is final.
#[derive(Debug, Clone)]
pub(super) struct StagePlan {
    /// With `env` empty, `registry_auth` `None` and `resolution` [`Resolution::ConfigOnly`].
    pub(super) stage: ResolvedStage,
    /// Project `env_file` < project `env` < stage `env_file` < stage `env`.
    pub(super) env: Vec<EnvLayer>,
    pub(super) registry: Option<RegistrySecret>,
    /// Where the basic-auth hash of `access` comes from (read in every resolution: whatever
    /// writes hosts needs it).
    pub(super) access_secret: Option<AccessSecret>,
}

impl StagePlan {
    /// The stage, with as much read as `how` asks for.
    ///
    /// # Errors
    /// With [`Resolution::Full`]: [`ConfigError::Invalid`] listing every env file and secret
    /// that cannot be read, by key path and file (never a value).
    pub(super) fn resolve(&self, how: Resolution, config: &Path) -> Result<ResolvedStage, ConfigError> {
        let mut stage = self.stage.clone();
        let mut problems = Vec::new();
        if let Some(AccessSecret { key, user, source }) = &self.access_secret {
            match source.read(key) {
                Ok(hash) if hash.expose().starts_with("$2") => {
                    stage.access = HostAccess::BasicAuth { user: user.clone(), hash };
                }
                Ok(_) => problems.push(format!("{key}: not a bcrypt hash (make one with `caddy hash-password`)")),
                Err(e) => problems.push(e),
            }
        }
        if how == Resolution::ConfigOnly {
            // Without the hash a protected host is never written (`HostAccess::Unreadable`); nothing else
            // needs it.
            return Ok(stage);
        }
        let mut env = BTreeMap::new();
        for layer in &self.env {
            match layer {
                EnvLayer::File { key, path } => env.extend(env_file::read(path, key, &mut problems)),
                EnvLayer::Inline(vars) => env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone()))),
            }
        }
        if let Some(r) = &self.registry {
            match r.password.read(&r.key) {
                Ok(password) => stage.registry_auth = Some(RegistryAuth { username: r.username.clone(), password }),
                Err(e) => problems.push(e),
            }
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path: config.to_path_buf(), problems });
        }
        stage.env = env.into_iter().collect();
        stage.resolution = Resolution::Full;
        Ok(stage)
    }
}
