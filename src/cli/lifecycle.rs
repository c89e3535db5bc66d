//! `tiny-forge remove` and `tiny-forge prune`.

use tiny_forge::deploy::{PruneReport, PruneRequest};
use tiny_forge::domain::Leftover;
use tiny_forge::ops::ResultTag;
use tiny_forge::report::NoReporter;

use super::args::{PruneArgs, RemoveArgs};
use tiny_forge::ops::{Notifications, StateAccess};

use super::backend;
use super::order::{Order, OrderKind};
use super::{Ctx, Failure, adapters, exit, out, out_json};

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
        out_json(&PruneLine::of(&report, a.dry_run, code))?;
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

/// What `prune --output json` prints: its report and the exit code it means (keys in order).
#[derive(serde::Serialize)]
struct PruneLine<'a> {
    actions: &'a [String],
    bytes_freed: u64,
    dry_run: bool,
    exit_code: u8,
    failures: &'a [String],
    leftovers: &'a [Leftover],
    skipped: &'a [String],
    #[serde(rename = "type")]
    kind: ResultTag,
}

impl<'a> PruneLine<'a> {
    fn of(r: &'a PruneReport, dry_run: bool, exit_code: u8) -> Self {
        Self {
            actions: &r.actions,
            bytes_freed: r.bytes_freed,
            dry_run,
            exit_code,
            failures: &r.failures,
            leftovers: &r.leftovers,
            skipped: &r.skipped,
            kind: ResultTag::Result,
        }
    }
}
