//! `list` and `history`: read the state file (and, for `list`, Docker) and print tables or JSON.

use std::time::Duration;

use tiny_forge::domain::{DeployId, InstanceStatus};
use tiny_forge::fmt::millis as fmt_ms;
use tiny_forge::ops::history::{DeployEndLine, DeployLine, LogLine};
use tiny_forge::ops::list::ListItem;
use tiny_forge::store::{DeployRecord, LogEntry, Store as _, now_ms};

use super::args::{HistoryArgs, HistoryCommand};
use super::backend::AnyDeployer;
use super::order::Deploys as _;
use super::remote::Remote;
use super::{Ctx, Failure, exit, out, out_json, render};

fn short_digest(d: &str) -> String {
    d.trim_start_matches("sha256:").chars().take(12).collect()
}

fn age(ms: i64) -> String {
    let secs = u64::try_from((now_ms() - ms) / 1000).unwrap_or(0);
    humantime::format_duration(Duration::from_secs(secs)).to_string().split(' ').take(2).collect::<Vec<_>>().join(" ")
}

/// Left-aligned columns, two spaces apart.
fn table(header: &[&str], rows: &[Vec<String>]) -> Result<(), Failure> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            widths[i] = widths[i].max(c.chars().count());
        }
    }
    let fmt = |cells: Vec<String>| {
        let line: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        line.join("  ").trim_end().to_owned()
    };
    out(&fmt(header.iter().map(|h| (*h).to_owned()).collect()))?;
    for r in rows {
        out(&fmt(r.clone()))?;
    }
    Ok(())
}

/// Age of an RFC 3339 time, for the AGE column.
fn age_of(t: &str) -> String {
    humantime::parse_rfc3339(t)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "-".into(), |d| age(i64::try_from(d.as_millis()).unwrap_or(0)))
}

pub(crate) async fn list(
    ctx: &Ctx,
    project: Option<String>,
    stage: Option<String>,
    probe: bool,
) -> Result<u8, Failure> {
    let items = AnyDeployer::for_ctx(ctx)?.instances(project, stage, probe).await?;
    if ctx.json() {
        out_json(&items)?;
        return Ok(exit::OK);
    }
    let mut rows = Vec::new();
    let mut leftovers = Vec::new();
    for item in &items {
        match item {
            ListItem::Leftover(l) => leftovers.push(l.record()),
            ListItem::Orphan(o) => rows.push(vec![
                o.project.clone(),
                o.stage.clone(),
                o.tag.clone(),
                "-".into(),
                format!("{} (orphan: not in state)", o.container_state),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
            ListItem::Instance(i) => rows.push(vec![
                i.project.clone(),
                i.stage.clone(),
                i.tag.clone(),
                i.url.clone().unwrap_or_else(|| "-".into()),
                if i.status == InstanceStatus::Live {
                    i.container_state.clone()
                } else {
                    format!("{} ({})", i.container_state, i.status.as_str())
                },
                i.health.clone().unwrap_or_else(|| "-".into()),
                short_digest(&i.digest),
                age_of(&i.created_at),
            ]),
        }
    }
    if rows.is_empty() && leftovers.is_empty() && !ctx.quiet {
        eprintln!("no instances");
    } else if !rows.is_empty() {
        table(&["PROJECT", "STAGE", "TAG", "URL", "STATE", "HEALTH", "DIGEST", "AGE"], &rows)?;
    }
    leftover_table(&leftovers)?;
    Ok(exit::OK)
}

/// What undos left behind, below the instances.
fn leftover_table(leftovers: &[tiny_forge::store::LeftoverRecord]) -> Result<(), Failure> {
    if leftovers.is_empty() {
        return Ok(());
    }
    out("")?;
    out("LEFT BEHIND (`tiny-forge prune` finishes the job)")?;
    let rows: Vec<Vec<String>> = leftovers
        .iter()
        .map(|l| {
            let by = l.deploy_id.map_or_else(|| "prune".to_owned(), |d| format!("deploy {d}"));
            vec![l.project.clone(), l.stage.clone(), by, l.item.to_string()]
        })
        .collect();
    table(&["PROJECT", "STAGE", "LEFT BY", "WHAT"], &rows)
}

fn duration(d: &DeployRecord) -> String {
    d.finished_at.map_or_else(|| "-".into(), |f| fmt_ms(u64::try_from(f - d.started_at).unwrap_or(0)))
}

pub(crate) async fn history(ctx: &Ctx, h: HistoryArgs) -> Result<u8, Failure> {
    if let Some(HistoryCommand::Show { id, follow }) = h.show {
        return show(ctx, DeployId(id), follow).await;
    }
    let deploys = AnyDeployer::for_ctx(ctx)?.history(h.project, h.stage, h.limit).await?;
    if ctx.json() {
        out_json(&deploys.iter().map(DeployLine::of).collect::<Vec<_>>())?;
        return Ok(exit::OK);
    }
    if deploys.is_empty() {
        if !ctx.quiet {
            eprintln!("no deploys yet");
        }
        return Ok(exit::OK);
    }
    let rows: Vec<Vec<String>> = deploys
        .iter()
        .map(|d| {
            vec![
                d.id.to_string(),
                format!("{}/{}:{}", d.project, d.stage, d.tag),
                d.status.as_str().to_owned(),
                d.trigger.as_str().to_owned(),
                render::rfc3339(d.started_at),
                duration(d),
                d.digest.as_deref().map_or_else(|| "-".into(), short_digest),
                d.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(&["ID", "SLOT", "STATUS", "TRIGGER", "STARTED", "DURATION", "DIGEST", "ERROR"], &rows)?;
    Ok(exit::OK)
}

/// One log line as `history show` prints it (text or a JSON `log` object).
fn log_line(ctx: &Ctx, l: &LogEntry) -> Result<(), Failure> {
    if ctx.json() {
        out_json(&LogLine::alone(l))
    } else {
        out(&format!("{} {:<5} {:<8} {}", render::rfc3339(l.ts), l.level.as_str(), l.step, l.message))
    }
}

fn show_header(ctx: &Ctx, d: &DeployRecord) -> Result<(), Failure> {
    if !ctx.json() {
        out(&format!("deploy {}  {}/{}:{}  {}  ({})", d.id, d.project, d.stage, d.tag, d.status, d.trigger.as_str()))?;
        out(&format!("image   {}{}", d.image, d.digest.as_deref().map(|x| format!(" ({x})")).unwrap_or_default()))?;
        out(&format!("started {} on {} (pid {})", render::rfc3339(d.started_at), d.host, d.pid))?;
    }
    Ok(())
}

fn show_whole(d: &DeployRecord, logs: &[LogEntry]) -> Result<(), Failure> {
    out_json(&DeployLine::with_logs(d, logs))
}

fn show_end(ctx: &Ctx, d: &DeployRecord, follow: bool) -> Result<u8, Failure> {
    if ctx.json() {
        out_json(&DeployEndLine::of(d))?;
    } else {
        if let Some(url) = &d.url {
            out(&format!("url     {url}"))?;
        }
        if let Some(e) = &d.error {
            out(&format!("error   {e}"))?;
        }
        for l in &d.leftovers {
            out(&format!("left    {l}"))?;
        }
        out(&format!("result  {} after {}", d.status, duration(d)))?;
    }
    Ok(if follow { exit::for_record(d).unwrap_or(exit::OK) } else { exit::OK })
}

/// Prints each event of a followed remote deploy as the log line it was stored as.
struct LogLines<'a>(&'a Ctx);

impl tiny_forge::report::Reporter for LogLines<'_> {
    fn report(&self, ts_ms: i64, e: &tiny_forge::report::Event) {
        let entry = LogEntry { ts: ts_ms, level: e.level(), step: e.step().as_str().to_owned(), message: e.message() };
        let _ = log_line(self.0, &entry);
    }
}

async fn show(ctx: &Ctx, id: DeployId, follow: bool) -> Result<u8, Failure> {
    if let Some(url) = &ctx.remote {
        let remote = Remote::new(ctx, url)?;
        let (d, logs) = remote.record(id).await?;
        if ctx.json() && !follow {
            show_whole(&d, &logs)?;
            return Ok(exit::OK);
        }
        show_header(ctx, &d)?;
        if follow {
            remote.follow(id.0, &LogLines(ctx)).await?;
        } else {
            for l in &logs {
                log_line(ctx, l)?;
            }
        }
        let (d, _) = remote.record(id).await?;
        return show_end(ctx, &d, follow);
    }
    let Some(store) = ctx.store_if_any()? else {
        return Err(Failure::usage(anyhow::anyhow!("deploy {id} not found: there is no state file yet")));
    };
    let find = || {
        store
            .deploy(id)
            .map_err(Failure::usage)?
            .ok_or_else(|| Failure::usage(anyhow::anyhow!("deploy {id} not found; see `tiny-forge history`")))
    };
    let mut d = find()?;
    if ctx.json() && !follow {
        show_whole(&d, &store.logs(id, 0).map_err(Failure::usage)?)?;
        return Ok(exit::OK);
    }
    show_header(ctx, &d)?;
    let mut seen = 0;
    loop {
        let logs = store.logs(id, seen).map_err(Failure::usage)?;
        seen += logs.len();
        for l in &logs {
            log_line(ctx, l)?;
        }
        if !follow || exit::for_record(&d).is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        d = find()?;
    }
    show_end(ctx, &d, follow)
}
