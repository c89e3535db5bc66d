//! The small "deployer" interface that `deploy`, `rollback`, `remove`, `list` and `history`
//! run against, and its local implementation (the library, on this host). The other one is
//! [`super::remote::Remote`] (`--remote`). Both send the same events to the same renderer and
//! return the same result object, so nothing downstream can tell them apart.

use serde_json::Value;
use tiny_forge::deploy::{CancelHandle, DeployRequest};
use tiny_forge::domain::{DeployId, Trigger};
use tiny_forge::report::{NoReporter, Reporter};
use tiny_forge::server::wire;
use tiny_forge::store::{DeployRecord, Store as _};

use super::args::WaitArgs;
use super::deploy::{Adapters, lock_wait, resolve, signals, unreachable_after_exit};
use super::{Ctx, Failure, exit};

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
    /// Deploys (or rolls back); events go to `reporter`. Returns the result object, whose
    /// `exit_code` is the process's.
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure>;
    /// Takes a slot down; as [`Deploys::deploy`].
    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure>;
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

/// This host: the library with the adapters built here.
pub(crate) struct Local<'a> {
    pub(crate) ctx: &'a Ctx,
}

impl Deploys for Local<'_> {
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure> {
        let ctx = self.ctx;
        let (config, stage, tag) = resolve(ctx, &order.project, &order.stage, order.tag.as_deref())?;
        let adapters = Adapters::build(ctx, &config).await?;
        let (trigger, image_override) = if order.rollback {
            let to = order.to;
            {
                let source = adapters
                    .deployer(&NoReporter)
                    .rollback_source(&stage, &tag, to.map(DeployId))
                    .map_err(Failure::usage)?;
                let digest = source.digest.clone().unwrap_or_default();
                if !ctx.quiet && !ctx.json() {
                    eprintln!(
                        "rolling back {}/{}:{tag} to deploy {} ({digest})",
                        stage.project, stage.stage, source.id
                    );
                }
                (Trigger::Rollback, Some(stage.image.at_digest(&digest)))
            }
        } else {
            (Trigger::Deploy, None)
        };
        let req = DeployRequest {
            image_override,
            stage,
            tag,
            trigger,
            lock_wait: lock_wait(&order.wait),
            force: order.force,
        };
        let (handle, cancel) = CancelHandle::new();
        let deployer = adapters.deployer(reporter).with_cancel(cancel);
        let result = tokio::select! {
            r = deployer.deploy(&req) => r,
            () = signals(handle) => unreachable_after_exit(),
        };
        match result {
            Ok(outcome) => Ok(wire::deploy_result(&outcome, exit::for_outcome(&outcome))),
            Err(e) => Err(Failure { code: exit::for_deploy_error(&e), error: e.into() }),
        }
    }

    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure> {
        let ctx = self.ctx;
        let tag = order.tag.as_deref().unwrap_or_default();
        let (config, stage, tag) = resolve(ctx, &order.project, &order.stage, Some(tag))?;
        // A remove notifies no one: no webhook secret is needed.
        let adapters = Adapters::build_without_notifier(ctx, &config).await?;
        // A signal gives up the lock wait (exit 130, nothing touched); a second one stops the
        // removal where it is (leftovers, exit 3), as for a deploy.
        let (handle, cancel) = CancelHandle::new();
        let deployer = adapters.deployer(reporter).with_cancel(cancel);
        let removed = tokio::select! {
            r = deployer.remove(&stage, &tag, lock_wait(&order.wait)) => r,
            () = signals(handle) => Err(tiny_forge::DeployError::Interrupted),
        };
        let report = removed.map_err(|e| Failure { code: exit::for_deploy_error(&e), error: e.into() })?;
        let code = if report.leftovers.is_empty() { exit::OK } else { exit::INCOMPLETE };
        Ok(wire::remove_result(&format!("{}/{}:{tag}", stage.project, stage.stage), &report, code))
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
