//! Configuration: finds the file, parses it strictly, validates every key at once, and resolves a
//! project's stage into a concrete [`ResolvedStage`]. Nothing downstream parses config again.
//!
//! Discovery order: `--config`, then `$TINY_FORGE_CONFIG`, then `./tiny-forge.toml`, then
//! `$XDG_CONFIG_HOME/tiny-forge/config.toml` (`~/.config` when unset).

mod env_file;
mod file;
mod resolve;
mod resolved;

use std::path::{Path, PathBuf};

pub use crate::secret::{Secret, SecretSource};
pub use resolve::Config;
pub use resolved::{
    ForwardTo, NotifyFormat, NotifyTarget, NpmSettings, ProbeAddress, ProxySettings, RegistryAuth, ResolvedStage,
    RestartPolicy,
};

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
    /// TOML syntax, an unknown key, or a value of the wrong type.
    #[error("{}:{line}:{column}: {message}", .path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending key or value.
        line: usize,
        /// 1-based column.
        column: usize,
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
    /// A secret could not be read.
    #[error("{0}")]
    Secret(String),
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

/// Reads, parses and validates the file at `path`.
///
/// # Errors
/// [`ConfigError::Read`], [`ConfigError::Parse`] (with line and column) or
/// [`ConfigError::Invalid`] (every problem found).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
    Config::parse(&text, path)
}

#[cfg(test)]
mod tests;
