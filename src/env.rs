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
/// A PEM bundle of CA certificates to trust, on top of the bundled and system roots
/// (`http::Trust`). Unreadable or without a certificate: an error.
pub const SSL_CERT_FILE: &str = "SSL_CERT_FILE";
/// Directories (`:`-separated) of PEM CA certificates to trust, as `SSL_CERT_FILE`.
pub const SSL_CERT_DIR: &str = "SSL_CERT_DIR";
/// Proxy for `https://` requests of the outbound client (proxy APIs, webhooks), e.g.
/// `http://user:password@proxy:3128`; never for health probes (`http::ProxyEnv`).
pub const HTTPS_PROXY: &str = "HTTPS_PROXY";
/// Read when [`HTTPS_PROXY`] is unset.
pub const HTTPS_PROXY_LOWER: &str = "https_proxy";
/// Proxy for `http://` requests of the outbound client, as [`HTTPS_PROXY`].
pub const HTTP_PROXY: &str = "HTTP_PROXY";
/// Read when [`HTTP_PROXY`] is unset.
pub const HTTP_PROXY_LOWER: &str = "http_proxy";
/// Proxy for both schemes when their own variable is unset.
pub const ALL_PROXY: &str = "ALL_PROXY";
/// Read when [`ALL_PROXY`] is unset.
pub const ALL_PROXY_LOWER: &str = "all_proxy";
/// Hosts the outbound client reaches directly: comma-separated hosts and domains (with their
/// subdomains), IPs, CIDR ranges, or `*`. Loopback always is.
pub const NO_PROXY: &str = "NO_PROXY";
/// Read when [`NO_PROXY`] is unset.
pub const NO_PROXY_LOWER: &str = "no_proxy";
/// The URL of a `tiny-forge serve` to run deploy, rollback, remove, list and history against
/// (as `--remote`).
pub const TINY_FORGE_REMOTE: &str = "TINY_FORGE_REMOTE";
/// The API token sent to `--remote` (`tiny-forge token create` on the server's host).
pub const TINY_FORGE_TOKEN: &str = "TINY_FORGE_TOKEN";
/// How long the remote CLI keeps trying to learn a deploy's outcome from a server it lost
/// (refused connections, 5xx, 429, a silent event stream), as a duration (`5m`). Default: the
/// server's `[server] grace` plus two minutes for a restart. Then it exits 5, outcome unknown.
pub const TINY_FORGE_REMOTE_PATIENCE: &str = "TINY_FORGE_REMOTE_PATIENCE";
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
