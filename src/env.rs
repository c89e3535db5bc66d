//! Every environment variable tiny-forge reads, in one place. Besides these it reads only the
//! variables the config names: `*_env` keys, and bare `KEY` lines in an `env_file`.

use std::path::PathBuf;

/// Path of the config file; beaten only by `--config`.
pub const TINY_FORGE_CONFIG: &str = "TINY_FORGE_CONFIG";
/// Base directory for config (XDG); `~/.config` when unset.
pub const XDG_CONFIG_HOME: &str = "XDG_CONFIG_HOME";
/// Base directory for state (XDG); `~/.local/state` when unset.
pub const XDG_STATE_HOME: &str = "XDG_STATE_HOME";
/// The user's home, for the XDG fallbacks and `~/.docker/config.json`.
pub const HOME: &str = "HOME";
/// Directory of the Docker CLI's config (`config.json` with registry `auths`).
pub const DOCKER_CONFIG: &str = "DOCKER_CONFIG";
/// Where `docker-credential-<name>` helpers are found (the usual program lookup).
pub const PATH: &str = "PATH";
/// The Docker Engine's address (`unix:///var/run/docker.sock` when unset); read by bollard.
pub const DOCKER_HOST: &str = "DOCKER_HOST";
/// Tests only: `step:duration` makes a deploy pause after that step (e.g. `proxy:5s`), so that
/// a test can signal or kill it at a known point. Never set it in production.
pub const TINY_FORGE_TEST_PAUSE_AFTER: &str = "TINY_FORGE_TEST_PAUSE_AFTER";
/// This machine's name, recorded with each deploy when `/proc/sys/kernel/hostname` is unreadable.
pub const HOSTNAME: &str = "HOSTNAME";
/// When set (to anything), output has no colour.
pub const NO_COLOR: &str = "NO_COLOR";

fn var_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from)
}

/// `$XDG_CONFIG_HOME`, or `$HOME/.config`.
#[must_use]
pub fn config_home() -> Option<PathBuf> {
    var_path(XDG_CONFIG_HOME).or_else(|| var_path(HOME).map(|h| h.join(".config")))
}

/// `$XDG_STATE_HOME`, or `$HOME/.local/state`.
#[must_use]
pub fn state_home() -> Option<PathBuf> {
    var_path(XDG_STATE_HOME).or_else(|| var_path(HOME).map(|h| h.join(".local").join("state")))
}

/// The Docker CLI's config directory: `$DOCKER_CONFIG`, or `$HOME/.docker`.
#[must_use]
pub fn docker_config_dir() -> Option<PathBuf> {
    var_path(DOCKER_CONFIG).or_else(|| var_path(HOME).map(|h| h.join(".docker")))
}
