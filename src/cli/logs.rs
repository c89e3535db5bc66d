//! `tiny-forge logs`: an instance's own output, read from the engine. stdout goes to stdout and
//! stderr to stderr, so a pipe keeps them apart; `--follow` ends when the container stops or
//! goes away (a redeploy retires it, `remove` removes it).

use std::io::Write as _;

use tiny_forge::domain::{InstanceStatus, ProjectName, StageName, Tag};
use tiny_forge::engine::Containers as _;
use tiny_forge::engine::{AnyEngine, LogStream, LogsRequest};
use tiny_forge::store::{Filter, Store as _, now_ms};

use super::args::LogsArgs;
use super::{Ctx, Failure, exit};

pub(crate) async fn run(ctx: &Ctx, a: LogsArgs) -> Result<u8, Failure> {
    let project = ProjectName::new(&a.project).map_err(Failure::usage)?;
    let stage = StageName::new(&a.stage).map_err(Failure::usage)?;
    let config = ctx.load_config()?;
    let resolved =
        config.resolve_with(&project, &stage, tiny_forge::config::Resolution::ConfigOnly).map_err(Failure::usage)?;
    let tag = match a.tag.as_deref() {
        Some(t) => Tag::new(t).map_err(Failure::usage)?,
        None => resolved.default_tag.clone(),
    };
    let slot = format!("{project}/{stage}:{tag}");
    let state_path = ctx.state_path(Some(&config))?;
    let no_instance =
        || Failure::usage(anyhow::anyhow!("{slot} has no instance; deploy it first (see `tiny-forge list`)"));
    if !state_path.exists() {
        return Err(no_instance());
    }
    let store = Ctx::open_store(&state_path)?;
    let filter =
        Filter { project: Some(project.to_string()), stage: Some(stage.to_string()), tag: Some(tag.to_string()) };
    let rows = store.instances(&filter).map_err(Failure::usage)?;
    let row = rows.iter().rev().find(|r| r.status == InstanceStatus::Live).or(rows.last()).ok_or_else(no_instance)?;
    let runtime = AnyEngine::connect().await.map_err(Failure::usage)?;
    let since = a.since.map(|d| (now_ms() / 1000).saturating_sub(i64::try_from(d.as_secs()).unwrap_or(i64::MAX)));
    let req = LogsRequest { follow: a.follow, since, tail: a.tail };
    let (mut out, mut err) = (std::io::stdout().lock(), std::io::stderr().lock());
    let mut write = |stream: LogStream, line: &str| {
        // A closed pipe (`| head`) ends the output, not the process with a panic.
        let _ = match stream {
            LogStream::Stdout => writeln!(out, "{line}"),
            LogStream::Stderr => writeln!(err, "{line}"),
        };
    };
    runtime
        .logs(&row.container_name, req, &mut write)
        .await
        .map_err(|e| Failure { code: exit::USAGE, error: anyhow::anyhow!("{slot}: {e}") })?;
    Ok(exit::OK)
}
