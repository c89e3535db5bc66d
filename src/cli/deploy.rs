//! `tiny-forge deploy`: validate everything that can be validated before touching anything,
//! connect to Docker, then run the saga with signals turned into a cancellation.

use tiny_forge::config::{Config, ProxySettings};
use tiny_forge::deploy::{CancelHandle, DeployRequest, Deployer};
use tiny_forge::domain::{ProjectName, StageName, Tag, Trigger};
use tiny_forge::health::HttpProbe;
use tiny_forge::lock::LockWait;
use tiny_forge::proxy::{AnyProxy, CaddyProxy, NoProxy, NpmProxy};
use tiny_forge::report::Step;
use tiny_forge::runtime::DockerRuntime;

use super::args::DeployArgs;
use super::{Ctx, Failure, exit, render};

pub(crate) async fn run(ctx: &Ctx, a: DeployArgs) -> Result<u8, Failure> {
    let project = ProjectName::new(&a.project).map_err(Failure::usage)?;
    let stage = StageName::new(&a.stage).map_err(Failure::usage)?;
    let tag = a.tag.as_deref().map(Tag::new).transpose().map_err(Failure::usage)?;
    let config = ctx.load_config()?;
    let resolved = config.resolve(&project, &stage).map_err(Failure::usage)?;
    let tag = tag.unwrap_or_else(|| resolved.default_tag.clone());
    let client = tiny_forge::http::client().map_err(Failure::usage)?;
    let proxy = build_proxy(&config, &client)?;
    let state_path = ctx.state_path(Some(&config))?;
    let runtime = DockerRuntime::connect().await.map_err(Failure::usage)?;
    let store = Ctx::open_store(&state_path)?;
    let probe = HttpProbe::new(client);
    let reporter = ctx.reporter();
    let lock_dir = state_path.parent().map_or_else(|| "locks".into(), |d| d.join("locks"));
    let (handle, cancel) = CancelHandle::new();
    let mut deployer =
        Deployer::new(&runtime, &proxy, &store, &probe, lock_dir).with_reporter(reporter.as_ref()).with_cancel(cancel);
    if let Some((step, pause)) = test_pause() {
        deployer = deployer.with_pause_after(step, pause);
    }
    let req = DeployRequest {
        stage: resolved,
        tag,
        trigger: Trigger::Deploy,
        image_override: None,
        lock_wait: match (a.wait.no_wait, a.wait.wait) {
            (true, _) => LockWait::NoWait,
            (false, Some(d)) => LockWait::AtMost(d),
            (false, None) => LockWait::Forever,
        },
    };
    let result = tokio::select! {
        r = deployer.deploy(&req) => r,
        () = signals(handle) => unreachable_after_exit(),
    };
    drop(reporter);
    match result {
        Ok(outcome) => {
            let code = exit::for_outcome(&outcome);
            render::outcome(&outcome, code, ctx.json(), ctx.quiet);
            Ok(code)
        }
        Err(e) => Err(Failure { code: exit::for_deploy_error(&e), error: e.into() }),
    }
}

/// The proxy backend the config chooses; secrets are read here, before anything is touched.
pub(crate) fn build_proxy(config: &Config, client: &reqwest::Client) -> Result<AnyProxy, Failure> {
    Ok(match config.proxy() {
        ProxySettings::None => AnyProxy::None(NoProxy),
        ProxySettings::Npm(s) => {
            let password = s.password.read("proxy.password").map_err(|e| Failure::usage(anyhow::anyhow!(e)))?;
            AnyProxy::Npm(NpmProxy::new(s.clone(), password, client.clone()))
        }
        ProxySettings::Caddy { admin_url, server, timeout, forward } => {
            AnyProxy::Caddy(CaddyProxy::new(admin_url.clone(), server.clone(), *timeout, *forward, client.clone()))
        }
    })
}

/// The first SIGINT or SIGTERM cancels the deploy (which then rolls back); a second one exits
/// at once with 130, leaving what is left to `prune`.
async fn signals(handle: CancelHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    handle.cancel();
    tokio::select! {
        _ = int.recv() => {},
        _ = term.recv() => {},
    }
    std::process::exit(i32::from(exit::INTERRUPTED));
}

fn unreachable_after_exit() -> Result<tiny_forge::DeployOutcome, tiny_forge::DeployError> {
    Err(tiny_forge::DeployError::Interrupted)
}

/// `TINY_FORGE_TEST_PAUSE_AFTER=step:duration` (tests only): pause after that step, so that a
/// test can interrupt or kill a deploy at a known point.
fn test_pause() -> Option<(Step, std::time::Duration)> {
    let v = std::env::var(tiny_forge::env::TINY_FORGE_TEST_PAUSE_AFTER).ok()?;
    let (step, dur) = v.split_once(':')?;
    Some((Step::parse(step)?, humantime::parse_duration(dur).ok()?))
}
