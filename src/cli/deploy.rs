//! `tiny-forge deploy`: validate everything that can be validated before touching anything,
//! connect to Docker, then run the saga with signals turned into a cancellation.

use std::path::PathBuf;

use tiny_forge::config::{Config, ResolvedStage};
use tiny_forge::deploy::{CancelHandle, DeployRequest, Deployer};
use tiny_forge::domain::{ProjectName, StageName, Tag, Trigger};
use tiny_forge::engine::DockerRuntime;
use tiny_forge::health::HttpProbe;
use tiny_forge::http::{self, ProxyEnv, Trust};
use tiny_forge::lock::LockWait;
use tiny_forge::notify::{WebhookNotifier, WebhookTarget};
use tiny_forge::proxy::AnyProxy;
use tiny_forge::report::{NoReporter, Reporter};
use tiny_forge::store::SqliteStore;

use super::args::{DeployArgs, RollbackArgs, WaitArgs};
use super::backend::{Deploys as _, Local, Order};
use super::remote::Remote;
use super::{Ctx, Failure, exit, render};

/// The adapters a command that changes things needs, built once, in the order that touches
/// nothing before every input is known good: HTTP clients (CA files, proxy variables), proxy
/// secrets, state path, Docker, state file. Probes go direct; the proxy API and webhooks go
/// through the environment's proxy.
pub(crate) struct Adapters {
    pub(crate) runtime: DockerRuntime,
    pub(crate) proxy: AnyProxy,
    pub(crate) store: SqliteStore,
    pub(crate) probe: HttpProbe,
    pub(crate) notifier: WebhookNotifier,
    pub(crate) lock_dir: PathBuf,
}

impl Adapters {
    pub(crate) async fn build(ctx: &Ctx, config: &Config) -> Result<Self, Failure> {
        Self::build_with(ctx, config, true, false).await
    }

    /// As [`Adapters::build`] with a notifier that tells no one, so that no webhook secret is
    /// read: for commands that never notify (`prune`, `remove`).
    pub(crate) async fn build_without_notifier(ctx: &Ctx, config: &Config) -> Result<Self, Failure> {
        Self::build_with(ctx, config, false, false).await
    }

    /// For a plan that changes nothing (`deploy --dry-run`): no notifier (no webhook secret
    /// read), and the state file read into memory, never created or migrated (review F12).
    pub(crate) async fn build_for_plan(ctx: &Ctx, config: &Config) -> Result<Self, Failure> {
        Self::build_with(ctx, config, false, true).await
    }

    async fn build_with(ctx: &Ctx, config: &Config, notify: bool, snapshot: bool) -> Result<Self, Failure> {
        let trust = Trust::load(config.ca_file().as_deref()).map_err(Failure::usage)?;
        let outbound = http::outbound(&trust, &ProxyEnv::from_env()).map_err(Failure::usage)?;
        let probe = HttpProbe::new(http::direct(&trust).map_err(Failure::usage)?);
        let proxy = build_proxy(config, &outbound)?;
        let notifier = if notify {
            build_notifier(config, &outbound)?
        } else {
            WebhookNotifier::new(Vec::new(), outbound.clone())
        };
        let state_path = ctx.state_path(Some(config))?;
        let runtime = DockerRuntime::connect().await.map_err(Failure::usage)?;
        let store = if snapshot {
            SqliteStore::snapshot(&state_path).map_err(Failure::usage)?
        } else {
            Ctx::open_store(&state_path)?
        };
        let lock_dir = state_path.parent().map_or_else(|| "locks".into(), |d| d.join("locks"));
        Ok(Self { runtime, proxy, store, probe, notifier, lock_dir })
    }

    pub(crate) fn deployer<'a>(
        &'a self,
        reporter: &'a dyn Reporter,
    ) -> Deployer<'a, DockerRuntime, AnyProxy, SqliteStore, HttpProbe> {
        let d = Deployer::new(&self.runtime, &self.proxy, &self.store, &self.probe, self.lock_dir.clone())
            .with_reporter(reporter)
            .with_notifier(&self.notifier);
        #[cfg(feature = "test-hooks")]
        let d = test_pauses().into_iter().fold(d, |d, (step, pause)| d.with_pause_after(step, pause));
        d
    }
}

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

pub(crate) async fn run(ctx: &Ctx, a: DeployArgs) -> Result<u8, Failure> {
    if a.dry_run {
        if ctx.remote.is_some() {
            return Err(Failure::usage(anyhow::anyhow!("--dry-run runs on the deploy host; drop --remote")));
        }
        let (config, stage, tag) = resolve(ctx, &a.project, &a.stage, a.tag.as_deref())?;
        let adapters = Adapters::build_for_plan(ctx, &config).await?;
        let req = DeployRequest {
            stage,
            tag,
            trigger: Trigger::Deploy,
            image_override: None,
            lock_wait: lock_wait(&a.wait),
            force: a.force,
        };
        return dry_run(ctx, &adapters, &req).await;
    }
    let order = Order {
        project: a.project,
        stage: a.stage,
        tag: a.tag,
        rollback: false,
        to: None,
        wait: a.wait,
        force: a.force,
    };
    Box::pin(run_order(ctx, &order, false)).await
}

/// `deploy --dry-run`: the plan on stdout, nothing touched; exit 2 when the tag does not
/// resolve.
async fn dry_run(ctx: &Ctx, adapters: &Adapters, req: &DeployRequest) -> Result<u8, Failure> {
    let plan = adapters.deployer(&NoReporter).plan_deploy(req).await.map_err(Failure::usage)?;
    if ctx.json() {
        super::out(&serde_json::json!({"type": "plan", "plan": plan}).to_string())?;
        return Ok(exit::OK);
    }
    let running = match (&plan.running, plan.unchanged) {
        (Some(c), true) => format!("{c} already runs it with the same settings: nothing to do (--force redeploys)"),
        (Some(c), false) => format!("{c} (would be replaced)"),
        (None, _) => "nothing yet".to_owned(),
    };
    let evicts = if plan.evicts.is_empty() { "nothing".to_owned() } else { plan.evicts.join(", ") };
    for (k, v) in [
        ("plan", format!("{} (dry run: nothing was touched)", plan.slot)),
        ("image", plan.image.clone()),
        ("digest", plan.digest.clone()),
        ("host", plan.host.clone()),
        ("running", running),
        ("release", plan.release.as_ref().map_or_else(|| "none".to_owned(), |c| c.join(" "))),
        ("on_create", plan.on_create.as_ref().map_or_else(|| "none".to_owned(), |c| c.join(" "))),
        ("proxy", plan.proxy.clone()),
        ("evicts", evicts),
    ] {
        super::out(&format!("{k:<9} {v}"))?;
    }
    Ok(exit::OK)
}

pub(crate) async fn rollback(ctx: &Ctx, a: RollbackArgs) -> Result<u8, Failure> {
    let order =
        Order { project: a.project, stage: a.stage, tag: a.tag, rollback: true, to: a.to, wait: a.wait, force: false };
    Box::pin(run_order(ctx, &order, false)).await
}

/// Runs a deploy, rollback (or, with `remove`, a removal) against this host or `--remote`,
/// renders its result and returns its exit code.
pub(crate) async fn run_order(ctx: &Ctx, order: &Order, remove: bool) -> Result<u8, Failure> {
    let reporter = ctx.reporter();
    let result = if let Some(url) = &ctx.remote {
        let r = Remote::new(ctx, url)?;
        if remove { r.remove(order, reporter.as_ref()).await } else { r.deploy(order, reporter.as_ref()).await }
    } else {
        let l = Local { ctx };
        if remove {
            Box::pin(l.remove(order, reporter.as_ref())).await
        } else {
            Box::pin(l.deploy(order, reporter.as_ref())).await
        }
    };
    drop(reporter);
    let result = result?;
    render::result(&result, ctx.json(), ctx.quiet);
    Ok(result.exit_code().code())
}

/// The proxy backend the config chooses; secrets are read here, before anything is touched.
/// `client` is the outbound one.
pub(crate) fn build_proxy(config: &Config, client: &reqwest::Client) -> Result<AnyProxy, Failure> {
    AnyProxy::from_settings(config.proxy(), client).map_err(|e| Failure::usage(anyhow::anyhow!(e)))
}

/// The webhook targets, with their secrets read now (a missing one is a config error).
fn build_notifier(config: &Config, client: &reqwest::Client) -> Result<WebhookNotifier, Failure> {
    let mut targets = Vec::new();
    for (i, t) in config.notify().iter().enumerate() {
        let secret = match &t.secret {
            Some(src) => {
                Some(src.read(&format!("notify[{i}].secret")).map_err(|e| Failure::usage(anyhow::anyhow!(e)))?)
            }
            None => None,
        };
        targets.push(WebhookTarget {
            url: t.url.clone(),
            secret,
            format: t.format,
            budget: t.budget,
            include_logs: t.include_logs,
        });
    }
    Ok(WebhookNotifier::new(targets, client.clone()))
}

/// The first SIGINT or SIGTERM cancels the deploy (which then rolls back); a second one stops
/// the rollback where it is, and what it did not undo is recorded as leftovers (exit 3). A third
/// exits at once with 3, for a rollback stuck where it cannot notice.
pub(crate) async fn signals(handle: CancelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    let mut next = async || {
        tokio::select! {
            _ = int.recv() => {},
            _ = term.recv() => {},
        }
    };
    next().await;
    handle.cancel();
    next().await;
    handle.abort();
    next().await;
    std::process::exit(i32::from(exit::INCOMPLETE));
}

/// `TINY_FORGE_TEST_PAUSE_AFTER=step:duration[,step:duration…]` (`test-hooks` builds only):
/// pause after those steps (`rollback`: at its start), so that a test can interrupt or kill a
/// deploy at a known point.
#[cfg(feature = "test-hooks")]
pub(crate) fn test_pauses() -> Vec<(tiny_forge::report::Step, std::time::Duration)> {
    let Ok(v) = std::env::var(tiny_forge::env::TINY_FORGE_TEST_PAUSE_AFTER) else { return Vec::new() };
    v.split(',')
        .filter_map(|p| {
            let (step, dur) = p.split_once(':')?;
            Some((tiny_forge::report::Step::parse(step)?, humantime::parse_duration(dur).ok()?))
        })
        .collect()
}
