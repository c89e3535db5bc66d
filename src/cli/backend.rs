//! Where `deploy`, `rollback`, `remove`, `list` and `history` run, chosen once
//! ([`AnyDeployer::for_ctx`]): [`Local`] (the library, on this host) or [`Remote`]
//! (`--remote`), both behind [`Deploys`]. Both send the same events to the same renderer and return the
//! same [`CommandResult`], so nothing downstream can tell them apart.

use tiny_forge::config::{Config, ResolvedStage};
use tiny_forge::deploy::CancelHandle;
use tiny_forge::domain::{DeployId, ProjectName, StageName, Tag, Trigger};
use tiny_forge::engine::AnyEngine;
use tiny_forge::health::HttpProbe;
use tiny_forge::lock::LockWait;
use tiny_forge::ops::list::{self, ListItem};
use tiny_forge::ops::{Command, CommandError, CommandKind, CommandResult, Notifications, StateAccess};
use tiny_forge::report::Reporter;
use tiny_forge::store::{DeployRecord, Filter, Store as _};

use super::args::WaitArgs;
use super::order::{Deploys, Order, OrderKind};
use super::remote::Remote;
use super::signals::cancel_on_signals;
use super::{Ctx, Failure, adapters, render};

/// Runs `order` here or on `--remote`, renders its result and returns its exit code.
pub(crate) async fn run(ctx: &Ctx, order: &Order) -> Result<u8, Failure> {
    let reporter = ctx.reporter();
    let result = Box::pin(AnyDeployer::for_ctx(ctx)?.run(order, reporter.as_ref())).await;
    drop(reporter);
    let result = result?;
    render::result(&result, ctx.json(), ctx.quiet);
    Ok(result.exit_code().code())
}

/// The lock wait the flags ask for.
pub(crate) fn lock_wait(w: &WaitArgs) -> LockWait {
    match (w.no_wait, w.wait) {
        (true, _) => LockWait::NoWait,
        (false, Some(d)) => LockWait::AtMost(d),
        (false, None) => LockWait::Forever,
    }
}

/// Names and config, checked before anything else: exit 2 on any problem.
pub(crate) fn resolve(
    ctx: &Ctx,
    project: &str,
    stage: &str,
    tag: Option<&str>,
) -> Result<(Config, ResolvedStage, Tag), Failure> {
    let project = ProjectName::new(project).map_err(Failure::usage)?;
    let stage = StageName::new(stage).map_err(Failure::usage)?;
    let tag = tag.map(Tag::new).transpose().map_err(Failure::usage)?;
    let config = ctx.load_config()?;
    let resolved = config.resolve(&project, &stage).map_err(Failure::usage)?;
    let tag = tag.unwrap_or_else(|| resolved.default_tag.clone());
    Ok((config, resolved, tag))
}

/// Where commands run: chosen once, from `--remote`.
pub(crate) enum AnyDeployer<'a> {
    /// This host.
    Local(Local<'a>),
    /// A `tiny-forge serve`.
    Remote(Remote),
}

impl<'a> AnyDeployer<'a> {
    /// `--remote` when given, else this host.
    pub(crate) fn for_ctx(ctx: &'a Ctx) -> Result<Self, Failure> {
        Ok(match &ctx.remote {
            Some(url) => Self::Remote(Remote::new(ctx, url)?),
            None => Self::Local(Local { ctx }),
        })
    }
}

impl Deploys for AnyDeployer<'_> {
    async fn run(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        match self {
            Self::Local(l) => Box::pin(l.run(order, reporter)).await,
            Self::Remote(r) => r.run(order, reporter).await,
        }
    }

    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<ListItem>, Failure> {
        match self {
            Self::Local(l) => l.instances(project, stage, probe).await,
            Self::Remote(r) => r.instances(project, stage, probe).await,
        }
    }

    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure> {
        match self {
            Self::Local(l) => l.history(project, stage, limit).await,
            Self::Remote(r) => r.history(project, stage, limit).await,
        }
    }
}

/// This host: the library with the adapters built here.
pub(crate) struct Local<'a> {
    pub(crate) ctx: &'a Ctx,
}

impl Deploys for Local<'_> {
    async fn run(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let tag = match order.kind {
            // A removal names its tag; the stage's default is never assumed.
            OrderKind::Remove => Some(order.tag.as_deref().unwrap_or_default()),
            OrderKind::Deploy { .. } | OrderKind::Rollback { .. } => order.tag.as_deref(),
        };
        let (config, stage, tag) = resolve(self.ctx, &order.project, &order.stage, tag)?;
        let (kind, notifications) = match order.kind {
            OrderKind::Deploy { force, no_verify } => (
                CommandKind::Deploy { force, image: None, trigger: Trigger::Deploy, verify: !no_verify },
                Notifications::Config,
            ),
            OrderKind::Rollback { to } => (CommandKind::Rollback { to: to.map(DeployId) }, Notifications::Config),
            // A remove notifies no one: no webhook secret is needed.
            OrderKind::Remove => (CommandKind::Remove, Notifications::Off),
        };
        let adapters = adapters::build(self.ctx, &config, notifications, StateAccess::ReadWrite).await?;
        let cmd = Command { stage, tag, kind, wait: lock_wait(&order.wait) };
        // A signal becomes the deployer's cancellation: the first rolls a deploy back (or gives
        // up a lock wait), a second stops the rollback where it is.
        let (handle, cancel) = CancelHandle::new();
        let deployer = adapters.deployer(reporter).with_cancel(cancel);
        let ran = tokio::select! {
            r = deployer.run(&cmd) => r,
            () = cancel_on_signals(handle) => Err(CommandError::NotBegun(tiny_forge::DeployError::Interrupted)),
        };
        ran.map_err(|e| Failure { code: e.exit_code().code(), error: e.into() })
    }

    /// The state file (when there is one) cross-checked with the engine (when it answers).
    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<ListItem>, Failure> {
        let store = self.ctx.store_if_any()?;
        let filter = Filter { project, stage, tag: None };
        let engine = AnyEngine::connect().await.ok();
        // Probes go direct, trusting what the config's CA file adds; without a usable config
        // the health column stays empty.
        let prober = if probe {
            self.ctx.load_config().ok().and_then(|c| {
                let trust = tiny_forge::http::Trust::load(c.ca_file().as_deref()).ok()?;
                Some((HttpProbe::new(&trust).ok()?, c))
            })
        } else {
            None
        };
        let listing = list::list(engine.as_ref(), store.as_ref(), &filter, prober.as_ref().map(|(p, c)| (p, c)))
            .await
            .map_err(Failure::usage)?;
        if !listing.engine_answered && !self.ctx.quiet {
            eprintln!("warning: cannot reach the Docker Engine; container states are unknown");
        }
        Ok(listing.items)
    }

    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure> {
        let filter = Filter { project, stage, tag: None };
        match self.ctx.store_if_any()? {
            Some(s) => s.deploys(&filter, limit).map_err(Failure::usage),
            None => Ok(Vec::new()),
        }
    }
}
