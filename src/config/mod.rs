//! Configuration: finds the file, parses it strictly into typed values (`file`), turns those
//! into resolved settings in one pass that reports every problem at once (`resolve`), and hands
//! out a project's stage as a concrete [`ResolvedStage`], reading its env files and secrets only
//! when asked to ([`Resolution`]). Nothing downstream parses config again.
//!
//! Discovery order: `--config`, then `$TINY_FORGE_CONFIG`, then `./tiny-forge.toml`, then
//! `$XDG_CONFIG_HOME/tiny-forge/config.toml` (`~/.config` when unset).

mod env_file;
mod file;
mod parsed;
mod resolve;
mod resolved;
mod server;
mod stage;
mod toml_error;

use std::path::{Path, PathBuf};

pub use crate::engine::{Engine, SwarmSettings};
pub use crate::secret::{Secret, SecretSource};
pub use file::{ReceiverKind, RuleSlot};
pub use parsed::Config;
pub use resolved::{NotifyFormat, NotifyTarget, OneOff, RegistryAuth, Resolution, ResolvedStage, RestartPolicy};
pub use server::{PushRule, ReceiverSettings, ServerSettings, TagPattern};

use crate::env;

/// Why the config could not be used. Every message names the file and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// No file at any discovery location.
    #[error("no config file found (looked at {}); create one from examples/tiny-forge.toml or pass --config", list(.searched))]
    NotFound {
        /// The places looked at, in order.
        searched: Vec<PathBuf>,
    },
    /// The named file is missing or unreadable.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax, an unknown key, or a value of the wrong type or outside its set.
    #[error("{}:{line}:{column}: {}{message}", .path.display(), .key.as_ref().map(|k| format!("{k}: ")).unwrap_or_default())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The key path of the refused value (`proxy.kind`), when its line shows it.
        key: Option<String>,
        /// What the parser said, on one line.
        message: String,
    },
    /// Values that parse but cannot be used; every problem, each with its key path.
    #[error("{}: {}", .path.display(), .problems.join("; "))]
    Invalid {
        /// The file.
        path: PathBuf,
        /// One entry per problem: `key.path: what to fix`.
        problems: Vec<String>,
    },
    /// The project is not in the file.
    #[error("project `{project}` is not defined in {}; add a [projects.{project}] table (defined: {known})", .path.display())]
    UnknownProject {
        /// The file.
        path: PathBuf,
        /// The project asked for.
        project: String,
        /// The projects that are defined.
        known: String,
    },
    /// The stage is not defined for the project.
    #[error("stage `{stage}` is not defined for project `{project}`; add [projects.{project}.stages.{stage}] to {} (defined: {known})", .path.display())]
    UnknownStage {
        /// The file.
        path: PathBuf,
        /// The project.
        project: String,
        /// The stage asked for.
        stage: String,
        /// The stages that are defined.
        known: String,
    },
}

fn list(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// The config file to use, by the discovery order in the module doc.
///
/// # Errors
/// [`ConfigError::NotFound`] when no candidate exists; an explicit path or
/// `$TINY_FORGE_CONFIG` is returned even when missing so that the read error names it.
pub fn discover(explicit: Option<&Path>) -> Result<PathBuf, ConfigError> {
    if let Some(p) = explicit {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(env::TINY_FORGE_CONFIG).filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let mut searched = vec![PathBuf::from("tiny-forge.toml")];
    if let Some(dir) = env::config_home() {
        searched.push(dir.join("tiny-forge").join("config.toml"));
    }
    searched.iter().find(|p| p.is_file()).cloned().ok_or(ConfigError::NotFound { searched })
}

/// Parses and validates `text`, the content of the file at `path` (relative paths in it are
/// relative to that file's directory): what [`load`] does after reading, for a caller that
/// keeps the bytes it read (`serve` hashes them into the config's revision).
///
/// # Errors
/// [`ConfigError::Parse`] for TOML syntax, unknown keys and values of the wrong type or outside
/// their set (with line, column and key path); [`ConfigError::Invalid`] with every other
/// problem.
pub fn from_text(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file: file::FileConfig = toml::from_str(text).map_err(|e| toml_error::parse_error(text, path, &e))?;
    resolve::config(file, path)
}

/// Reads, parses and validates the file at `path`.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Parse`] (with line and column) or
/// [`ConfigError::Invalid`] (every problem found).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    from_text(&text, path)
}

#[cfg(test)]
mod tests;
