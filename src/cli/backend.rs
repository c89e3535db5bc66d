//! The small "deployer" interface that `deploy`, `rollback`, `remove`, `list` and `history`
//! run against, and its local implementation (the library, on this host). The other one is
//! [`super::remote::Remote`] (`--remote`). Both send the same events to the same renderer and
//! return the same result object, so nothing downstream can tell them apart.

use serde_json::Value;
use tiny_forge::deploy::CancelHandle;
use tiny_forge::domain::{DeployId, Trigger};
use tiny_forge::ops::{Command, CommandError, CommandKind, CommandResult};
use tiny_forge::report::Reporter;
use tiny_forge::store::{DeployRecord, Store as _};

use super::args::WaitArgs;
use super::deploy::{Adapters, lock_wait, resolve, signals};
use super::{Ctx, Failure};

/// A deploy, rollback or removal as the user asked for it.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) project: String,
    pub(crate) stage: String,
    pub(crate) tag: Option<String>,
    /// `rollback` rather than `deploy`.
    pub(crate) rollback: bool,
    /// `rollback --to`.
    pub(crate) to: Option<i64>,
    pub(crate) wait: WaitArgs,
    /// `deploy --force`.
    pub(crate) force: bool,
}

/// What the commands need from a deployer.
pub(crate) trait Deploys {
    /// Deploys (or rolls back); events go to `reporter`. Returns the result, whose exit code
    /// is the process's.
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure>;
    /// Takes a slot down; as [`Deploys::deploy`].
    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure>;
    /// `list`'s items.
    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<Value>, Failure>;
    /// `history`'s rows, newest first.
    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure>;
}

/// Runs `cmd` here, with a signal turned into the deployer's cancellation: the first one rolls
/// a deploy back (or gives up a lock wait), a second stops the rollback where it is.
async fn run(adapters: &Adapters, reporter: &dyn Reporter, cmd: &Command) -> Result<CommandResult, Failure> {
    let (handle, cancel) = CancelHandle::new();
    let deployer = adapters.deployer(reporter).with_cancel(cancel);
    let ran = tokio::select! {
        r = deployer.run(cmd) => r,
        () = signals(handle) => Err(CommandError::NotBegun(tiny_forge::DeployError::Interrupted)),
    };
    ran.map_err(|e| Failure { code: e.exit_code().code(), error: e.into() })
}

/// This host: the library with the adapters built here.
pub(crate) struct Local<'a> {
    pub(crate) ctx: &'a Ctx,
}

impl Deploys for Local<'_> {
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let (config, stage, tag) = resolve(self.ctx, &order.project, &order.stage, order.tag.as_deref())?;
        let adapters = Adapters::build(self.ctx, &config).await?;
        let kind = if order.rollback {
            CommandKind::Rollback { to: order.to.map(DeployId) }
        } else {
            CommandKind::Deploy { force: order.force, image: None, trigger: Trigger::Deploy }
        };
        let cmd = Command { stage, tag, kind, wait: lock_wait(&order.wait) };
        Box::pin(run(&adapters, reporter, &cmd)).await
    }

    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let tag = order.tag.as_deref().unwrap_or_default();
        let (config, stage, tag) = resolve(self.ctx, &order.project, &order.stage, Some(tag))?;
        // A remove notifies no one: no webhook secret is needed.
        let adapters = Adapters::build_without_notifier(self.ctx, &config).await?;
        let cmd = Command { stage, tag, kind: CommandKind::Remove, wait: lock_wait(&order.wait) };
        Box::pin(run(&adapters, reporter, &cmd)).await
    }

    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<Value>, Failure> {
        super::query::local_items(self.ctx, project, stage, probe).await
    }

    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure> {
        let filter = tiny_forge::store::Filter { project, stage, tag: None };
        match super::query::store_if_any(self.ctx)? {
            Some(s) => s.deploys(&filter, limit).map_err(Failure::usage),
            None => Ok(Vec::new()),
        }
    }
}
