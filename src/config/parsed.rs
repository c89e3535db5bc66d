//! A config file, parsed and resolved: what the rest of tiny-forge asks for settings and stages.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
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
