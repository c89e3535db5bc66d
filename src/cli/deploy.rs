//! `tiny-forge deploy` and `rollback` (run by [`backend::run`], here or on `--remote`), and
//! `deploy --dry-run`: the plan, with nothing touched.

use tiny_forge::deploy::DeployRequest;
use tiny_forge::domain::Trigger;
use tiny_forge::ops::{Adapters, Notifications, StateAccess};
use tiny_forge::report::NoReporter;

use super::args::{DeployArgs, RollbackArgs};
use super::backend::{self, lock_wait, resolve};
use super::order::{Order, OrderKind};
use super::{Ctx, Failure, adapters, exit};

pub(crate) async fn run(ctx: &Ctx, a: DeployArgs) -> Result<u8, Failure> {
    if a.dry_run {
        if ctx.remote.is_some() {
            return Err(Failure::usage(anyhow::anyhow!("--dry-run runs on the deploy host; drop --remote")));
        }
        let (config, stage, tag) = resolve(ctx, &a.project, &a.stage, a.tag.as_deref())?;
        // No notifier (no webhook secret read), and the state file read into memory, never
        // created or migrated (review F12).
        let adapters = adapters::build(ctx, &config, Notifications::Off, StateAccess::Snapshot).await?;
        let req = DeployRequest {
            stage,
            tag,
            trigger: Trigger::Deploy,
            image_override: None,
            lock_wait: lock_wait(&a.wait),
            force: a.force,
            verify: !a.no_verify,
        };
        return dry_run(ctx, &adapters, &req).await;
    }
    let order = Order {
        project: a.project,
        stage: a.stage,
        tag: a.tag,
        kind: OrderKind::Deploy { force: a.force, no_verify: a.no_verify },
        wait: a.wait,
    };
    Box::pin(backend::run(ctx, &order)).await
}

/// `deploy --dry-run`: the plan on stdout, nothing touched; exit 2 when the tag does not
/// resolve.
async fn dry_run(ctx: &Ctx, adapters: &Adapters, req: &DeployRequest) -> Result<u8, Failure> {
    let plan = adapters.deployer(&NoReporter).plan_deploy(req).await.map_err(Failure::usage)?;
    if ctx.json() {
        super::out_json(&PlanLine { plan: &plan, kind: PlanTag::Plan })?;
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
        ("verify", plan.verify.clone().unwrap_or_else(|| "none".to_owned())),
        ("evicts", evicts),
    ] {
        super::out(&format!("{k:<9} {v}"))?;
    }
    Ok(exit::OK)
}

pub(crate) async fn rollback(ctx: &Ctx, a: RollbackArgs) -> Result<u8, Failure> {
    let order =
        Order { project: a.project, stage: a.stage, tag: a.tag, kind: OrderKind::Rollback { to: a.to }, wait: a.wait };
    Box::pin(backend::run(ctx, &order)).await
}

/// What `deploy --dry-run --output json` prints.
#[derive(serde::Serialize)]
struct PlanLine<'a> {
    plan: &'a tiny_forge::deploy::DeployPlan,
    #[serde(rename = "type")]
    kind: PlanTag,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "snake_case")]
enum PlanTag {
    Plan,
}
