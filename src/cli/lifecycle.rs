//! `tiny-forge remove` and `tiny-forge prune`.

use serde_json::json;
use tiny_forge::deploy::PruneRequest;
use tiny_forge::report::NoReporter;

use super::args::{PruneArgs, RemoveArgs};
use tiny_forge::ops::{Notifications, StateAccess};

use super::backend;
use super::order::{Order, OrderKind};
use super::{Ctx, Failure, adapters, exit, out};

pub(crate) async fn remove(ctx: &Ctx, a: RemoveArgs) -> Result<u8, Failure> {
    let order = Order { project: a.project, stage: a.stage, tag: Some(a.tag), kind: OrderKind::Remove, wait: a.wait };
    Box::pin(backend::run(ctx, &order)).await
}

pub(crate) async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<u8, Failure> {
    let config = ctx.load_config()?;
    // Neither stage secrets nor webhook secrets: prune never pulls, starts or notifies, and a
    // cron job must not fail for a variable only a deploy's environment sets.
    let stages = config.resolve_all().map_err(Failure::usage)?;
    let adapters = adapters::build(ctx, &config, Notifications::Off, StateAccess::ReadWrite).await?;
    let req = PruneRequest {
        stages,
        older_than: a.older_than,
        include_default: a.include_default,
        dry_run: a.dry_run,
        history_retention: config.history_retention(),
    };
    let report = adapters.deployer(&NoReporter).prune(&req).await.map_err(|e| {
        let e = tiny_forge::ops::CommandError::from(e);
        Failure { code: e.exit_code().code(), error: e.into() }
    })?;
    let code = if report.failures.is_empty() && report.leftovers.is_empty() { exit::OK } else { exit::INCOMPLETE };
    if ctx.json() {
        out(&json!({"type": "result", "dry_run": a.dry_run, "exit_code": code, "actions": report.actions,
            "skipped": report.skipped, "failures": report.failures, "leftovers": report.leftovers,
            "bytes_freed": report.bytes_freed})
        .to_string())?;
        return Ok(code);
    }
    let prefix = if a.dry_run { "would " } else { "did " };
    for action in &report.actions {
        out(&format!("{prefix}{action}"))?;
    }
    for s in &report.skipped {
        eprintln!("skipped {s}");
    }
    for f in &report.failures {
        eprintln!("failed: {f}");
    }
    if report.bytes_freed > 0 && !ctx.quiet {
        let verb = if a.dry_run { "would free" } else { "freed" };
        eprintln!("{verb} {} of images", tiny_forge::fmt::bytes(report.bytes_freed));
    }
    if report.actions.is_empty() && report.failures.is_empty() && !ctx.quiet {
        eprintln!("nothing to prune");
    }
    Ok(code)
}
