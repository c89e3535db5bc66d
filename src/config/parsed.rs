//! A config file, parsed and resolved: what the rest of tiny-forge asks for settings and stages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::file::FileConfig;
use super::resolve;
use super::resolved::{NotifyTarget, Resolution, ResolvedStage};
use super::stage::StagePlan;
use crate::domain::{ProjectName, StageName};
use crate::proxy::ProxySettings;

/// A parsed, validated config file.
#[derive(Debug)]
pub struct Config {
    pub(super) path: PathBuf,
    /// `settings.state`, joined to the config file's directory.
    pub(super) state: Option<PathBuf>,
    /// `settings.ca_file`, joined to the config file's directory.
    pub(super) ca_file: Option<PathBuf>,
    pub(super) network: String,
    pub(super) history_retention: Duration,
    pub(super) proxy: ProxySettings,
    pub(super) notify: Vec<NotifyTarget>,
    /// Project → stage → plan.
    pub(super) projects: BTreeMap<String, BTreeMap<String, StagePlan>>,
    pub(super) server: super::server::ServerSettings,
    pub(super) receivers: Vec<super::server::ReceiverSettings>,
    pub(super) push_rules: Vec<super::server::PushRule>,
}

impl Config {
    /// Parses `text`, the content of the file at `path` (for messages and relative paths).
    ///
    /// # Errors
    /// [`ConfigError::Parse`] for TOML syntax, unknown keys and values of the wrong type or
    /// outside their set (with line, column and key path); [`ConfigError::Invalid`] with every
    /// other problem.
    pub(super) fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| parse_error(text, path, &e))?;
        resolve::config(file, path)
    }

    /// The file this config came from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `settings.state`, relative to the config file's directory.
    #[must_use]
    pub fn state_path(&self) -> Option<PathBuf> {
        self.state.clone()
    }

    /// `settings.ca_file`, relative to the config file's directory: extra CA certificates (PEM)
    /// that HTTPS clients trust.
    #[must_use]
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.ca_file.clone()
    }

    /// The proxy backend's settings.
    #[must_use]
    pub fn proxy(&self) -> &ProxySettings {
        &self.proxy
    }

    /// The webhook targets (empty when `[notify]` is absent).
    #[must_use]
    pub fn notify(&self) -> &[NotifyTarget] {
        &self.notify
    }

    /// How long `prune` keeps finished deploys in history (default 90 days).
    #[must_use]
    pub fn history_retention(&self) -> Duration {
        self.history_retention
    }

    /// `[server]`: `tiny-forge serve`'s settings (defaults when the table is absent).
    #[must_use]
    pub fn server(&self) -> &super::server::ServerSettings {
        &self.server
    }

    /// `[[receivers]]`: the registry webhooks the server accepts.
    #[must_use]
    pub fn receivers(&self) -> &[super::server::ReceiverSettings] {
        &self.receivers
    }

    /// Every stage's `on_push` rules, by project then stage then order in the file.
    #[must_use]
    pub fn push_rules(&self) -> &[super::server::PushRule] {
        &self.push_rules
    }

    /// The Docker network every instance joins.
    #[must_use]
    pub fn network(&self) -> &str {
        &self.network
    }

    /// Projects and their stages, sorted.
    #[must_use]
    pub fn stages(&self) -> Vec<(String, String)> {
        self.projects.iter().flat_map(|(p, stages)| stages.keys().map(move |s| (p.clone(), s.clone()))).collect()
    }

    /// Every configured stage, for `prune`: resolved with [`Resolution::Full`] where its env
    /// files and registry secret can be read (its `on_remove` hook needs its env), else with
    /// [`Resolution::ConfigOnly`], so that one stage's missing secret cannot stop the cleanup
    /// of every stage. `ResolvedStage::resolution` says which.
    ///
    /// # Errors
    /// None today (everything it needs was checked when the file was read); fallible so that
    /// callers need not change if that changes.
    pub fn resolve_all(&self) -> Result<Vec<ResolvedStage>, ConfigError> {
        self.projects
            .values()
            .flat_map(BTreeMap::values)
            .map(|plan| {
                plan.resolve(Resolution::Full, &self.path).or_else(|_| plan.resolve(Resolution::ConfigOnly, &self.path))
            })
            .collect()
    }

    /// Resolves `project`'s `stage` for a deploy: [`Config::resolve_with`] and
    /// [`Resolution::Full`], reading its env files and registry secret now.
    ///
    /// # Errors
    /// As [`Config::resolve_with`].
    pub fn resolve(&self, project: &ProjectName, stage: &StageName) -> Result<ResolvedStage, ConfigError> {
        self.resolve_with(project, stage, Resolution::Full)
    }

    /// Resolves `project`'s `stage`, reading what `how` asks for besides the file.
    ///
    /// # Errors
    /// [`ConfigError::UnknownProject`], [`ConfigError::UnknownStage`]; with
    /// [`Resolution::Full`], [`ConfigError::Invalid`] naming every env file and secret that
    /// cannot be read (never a value).
    pub fn resolve_with(
        &self,
        project: &ProjectName,
        stage: &StageName,
        how: Resolution,
    ) -> Result<ResolvedStage, ConfigError> {
        let stages = self.projects.get(project.as_str()).ok_or_else(|| ConfigError::UnknownProject {
            path: self.path.clone(),
            project: project.to_string(),
            known: self.projects.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let plan = stages.get(stage.as_str()).ok_or_else(|| ConfigError::UnknownStage {
            path: self.path.clone(),
            project: project.to_string(),
            stage: stage.to_string(),
            known: stages.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        plan.resolve(how, &self.path)
    }
}

/// A TOML or type error, on one line, with where it is and (when the line is `key = value`)
/// the key path: toml's own message does not name the key whose value it refuses.
fn parse_error(text: &str, path: &Path, e: &toml::de::Error) -> ConfigError {
    let start = e.span().map_or(0, |s| s.start.min(text.len()));
    let start = within_table(text, start, e.message());
    let before = &text[..start];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
    ConfigError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: e.span().and_then(|_| key_path_at(text, start)),
        message: e.message().replace('\n', " ").trim().to_owned(),
    }
}

/// Where in its table an error points, when the parser could only say "this table": a backend's
/// section (`[proxy]` with its `kind`) is read as a whole, so an unknown key, or a bad value,
/// comes back with the table header's position. The message names the key (`unknown field
/// `email``) or the value (`unknown variant `dns``, `string "x"`): the first line of the table
/// that holds it is where the error is.
fn within_table(text: &str, at: usize, message: &str) -> usize {
    if !text[at..].starts_with('[') {
        return at;
    }
    let quoted = |open: &str, close: char| {
        let i = message.find(open)? + open.len();
        let j = message[i..].find(close)? + i;
        Some(message[i..j].to_owned())
    };
    let unknown_key = quoted("unknown field `", '`');
    let bad_value = quoted("unknown variant `", '`').or_else(|| quoted("string \"", '"'));
    let body_start = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    let body_end = text[body_start..].find("\n[").map_or(text.len(), |i| body_start + i + 1);
    let mut offset = body_start;
    for line in text[body_start..body_end].split_inclusive('\n') {
        if let Some(eq) = line.find('=') {
            let key = line[..eq].trim();
            let after = &line[eq + 1..];
            let value_at = offset + eq + 1 + (after.len() - after.trim_start().len());
            if unknown_key.as_deref() == Some(key) {
                return offset + (line.len() - line.trim_start().len());
            }
            if bad_value.as_deref().is_some_and(|v| after.trim().trim_matches(['"', '\'']) == v) {
                return value_at;
            }
        }
        offset += line.len();
    }
    at
}

/// The key path of the value starting at byte `at`, when its line reads `key = value`: the
/// nearest table header above, then the key. `None` for anything fancier (inline tables,
/// arrays spanning lines), where the line and column still say where.
fn key_path_at(text: &str, at: usize) -> Option<String> {
    let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let key = text[line_start..at].trim_end().strip_suffix('=')?.trim();
    let bare = |k: &str| !k.is_empty() && k.bytes().all(|c| c.is_ascii_alphanumeric() || b"_-.\"".contains(&c));
    if !bare(key) {
        return None;
    }
    let table = text[..line_start].lines().rev().map(str::trim).find(|l| l.starts_with('[')).and_then(|header| {
        let inner = header.trim_start_matches('[');
        inner.find(']').map(|end| inner[..end].trim().to_owned())
    });
    Some(match table {
        Some(t) if !t.is_empty() => format!("{t}.{key}"),
        _ => key.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_path_of_a_value_comes_from_its_line_and_table() {
        let text = "[proxy]\nkind = \"nginx\"\n[projects.shop]\n  port   = 70000 # x\nenv = { A = 1 }\n";
        assert_eq!(key_path_at(text, text.find("\"nginx").unwrap()).as_deref(), Some("proxy.kind"));
        assert_eq!(key_path_at(text, text.find("70000").unwrap()).as_deref(), Some("projects.shop.port"));
        assert_eq!(key_path_at(text, text.find("1 }").unwrap()), None, "inside an inline table");
        assert_eq!(key_path_at("port = 0", 7).as_deref(), Some("port"), "top level");
        assert_eq!(key_path_at("[[notify]]\nformat = 1", 20).as_deref(), Some("notify.format"));
    }
}
