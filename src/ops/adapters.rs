//! [`Adapters`]: the engine, proxy, state file, probe and notifier a command runs with, built
//! from the config in the one order that touches nothing before every input is known good: HTTP
//! clients (CA files, proxy variables), proxy and webhook secrets, the engine, the state file.
//! Probes go direct; the proxy API and webhooks go through the environment's proxy. The CLI and
//! the server both build them here, so neither names a concrete adapter.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::deploy::Deployer;
use crate::engine::{AnyEngine, ContainerRuntime, RuntimeError};
use crate::health::{HttpProbe, Probe};
use crate::http::{self, HttpError, ProxyEnv, Trust};
use crate::notify::{Notifier, WebhookNotifier, WebhookTarget};
use crate::proxy::{AnyProxy, Proxy};
use crate::report::Reporter;
use crate::store::{SqliteStore, Store, StoreError};

/// Why the adapters could not be built. Nothing was created; each says what to fix.
#[derive(Debug, thiserror::Error)]
pub enum AdapterError {
    /// A CA file or a proxy variable is unusable.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// A secret (`proxy.password`, `notify[i].secret`) could not be read.
    #[error("{0}")]
    Secret(String),
    /// The engine does not answer.
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    /// The state file cannot be opened (or read, for a snapshot).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Who hears about deploys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    /// The config's `[[notify]]` targets, their secrets read now.
    Config,
    /// No one, and no webhook secret is read (`prune`, `remove`, a dry run).
    Off,
}

/// How the state file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateAccess {
    /// Opened (created and migrated when needed) for reading and writing.
    ReadWrite,
    /// Read into memory and never written, created or migrated (`deploy --dry-run`).
    Snapshot,
}

/// What a command's deploys run with. The type parameters default to the real adapters; tests
/// put fakes in with [`Adapters::over`].
pub struct Adapters<R = AnyEngine, P = AnyProxy, S = SqliteStore, Pr = HttpProbe> {
    /// The container engine.
    pub runtime: R,
    /// The proxy.
    pub proxy: P,
    /// The state file.
    pub store: S,
    /// Health probes.
    pub probe: Pr,
    /// Deploy notifications.
    pub notifier: Box<dyn Notifier>,
    /// Lock files: `locks/` beside the state file, shared by every process on this host.
    pub lock_dir: PathBuf,
    #[cfg(feature = "test-hooks")]
    pauses: Vec<(crate::report::Step, std::time::Duration)>,
}

impl std::fmt::Debug for Adapters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Adapters").field("lock_dir", &self.lock_dir).finish_non_exhaustive()
    }
}

impl Adapters {
    /// The real adapters for `config`, with the state file at `state_path`.
    ///
    /// # Errors
    /// [`AdapterError`]: an unusable CA file or proxy variable, an unreadable secret, an engine
    /// that does not answer, a state file that cannot be opened.
    pub async fn build(
        config: &Config,
        state_path: &Path,
        notifications: Notifications,
        state: StateAccess,
    ) -> Result<Self, AdapterError> {
        let trust = Trust::load(config.ca_file().as_deref())?;
        let outbound = http::outbound(&trust, &ProxyEnv::from_env())?;
        let probe = HttpProbe::new(&trust)?;
        let proxy = AnyProxy::from_settings(config.proxy(), &outbound).map_err(AdapterError::Secret)?;
        let notifier = match notifications {
            Notifications::Config => notifier(config, &outbound)?,
            Notifications::Off => WebhookNotifier::new(Vec::new(), outbound.clone()),
        };
        let runtime = AnyEngine::connect().await?;
        let store = match state {
            StateAccess::ReadWrite => SqliteStore::open(state_path)?,
            StateAccess::Snapshot => SqliteStore::snapshot(state_path)?,
        };
        Ok(Self::over(runtime, proxy, store, probe, lock_dir(state_path)).with_notifier(Box::new(notifier)))
    }
}

impl<R, P, S, Pr> Adapters<R, P, S, Pr> {
    /// These adapters, notifying no one.
    pub fn over(runtime: R, proxy: P, store: S, probe: Pr, lock_dir: PathBuf) -> Self {
        Self {
            runtime,
            proxy,
            store,
            probe,
            notifier: Box::new(crate::notify::NoNotifier),
            lock_dir,
            #[cfg(feature = "test-hooks")]
            pauses: Vec::new(),
        }
    }

    /// Notifies `notifier`.
    #[must_use]
    pub fn with_notifier(mut self, notifier: Box<dyn Notifier>) -> Self {
        self.notifier = notifier;
        self
    }

    /// Every deployer pauses after `step` for `pause` (`test-hooks` builds only), so that a
    /// test can interrupt or kill a deploy at a known point.
    #[cfg(feature = "test-hooks")]
    #[must_use]
    pub fn with_pauses(mut self, pauses: Vec<(crate::report::Step, std::time::Duration)>) -> Self {
        self.pauses = pauses;
        self
    }
}

impl<R: ContainerRuntime, P: Proxy, S: Store, Pr: Probe> Adapters<R, P, S, Pr> {
    /// A deployer over these adapters, reporting to `reporter`.
    pub fn deployer<'a>(&'a self, reporter: &'a dyn Reporter) -> Deployer<'a, R, P, S, Pr> {
        let d = Deployer::new(&self.runtime, &self.proxy, &self.store, &self.probe, self.lock_dir.clone())
            .with_reporter(reporter)
            .with_notifier(self.notifier.as_ref());
        #[cfg(feature = "test-hooks")]
        let d = self.pauses.iter().fold(d, |d, (step, pause)| d.with_pause_after(*step, *pause));
        d
    }
}

/// Where lock files go for the state file at `state_path`.
#[must_use]
pub fn lock_dir(state_path: &Path) -> PathBuf {
    state_path.parent().map_or_else(|| "locks".into(), |d| d.join("locks"))
}

/// The webhook targets, with their secrets read now (a missing one is a config error).
fn notifier(config: &Config, client: &reqwest::Client) -> Result<WebhookNotifier, AdapterError> {
    let mut targets = Vec::new();
    for (i, t) in config.notify().iter().enumerate() {
        let secret = t.secret.as_ref().map(|src| src.read(&format!("notify[{i}].secret"))).transpose();
        targets.push(WebhookTarget {
            url: t.url.clone(),
            secret: secret.map_err(AdapterError::Secret)?,
            format: t.format,
            budget: t.budget,
            include_logs: t.include_logs,
        });
    }
    Ok(WebhookNotifier::new(targets, client.clone()))
}
