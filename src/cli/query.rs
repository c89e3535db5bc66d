//! `list` and `history`: read the state file (and, for `list`, Docker) and print tables or JSON.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::json;
use tiny_forge::config::Resolution;
use tiny_forge::domain::DeployId;
use tiny_forge::domain::{InstanceStatus, ProjectName, StageName};
use tiny_forge::engine::Containers as _;
use tiny_forge::engine::DockerRuntime;
use tiny_forge::fmt::millis as fmt_ms;
use tiny_forge::health::{HttpProbe, Probe as _};
use tiny_forge::store::{DeployRecord, Filter, InstanceRecord, LogEntry, Store as _, now_ms};

use super::args::{HistoryArgs, HistoryCommand};
use super::backend::{Deploys as _, Local};
use super::remote::Remote;
use super::{Ctx, Failure, exit, out, render};

fn filter(project: Option<String>, stage: Option<String>) -> Filter {
    Filter { project, stage, tag: None }
}

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

/// Open the state file if it exists; a missing one means "nothing yet", not an error.
pub(crate) fn store_if_any(ctx: &Ctx) -> Result<Option<tiny_forge::store::SqliteStore>, Failure> {
    let config = ctx.load_config().ok();
    let path = ctx.state_path(config.as_ref())?;
    if !path.exists() {
        return Ok(None);
    }
    Ctx::open_store(&path).map(Some)
}

/// Probes every live instance's health path on its container address, all at once.
async fn probe_all(ctx: &Ctx, runtime: &DockerRuntime, instances: &[InstanceRecord]) -> HashMap<i64, String> {
    let Ok(config) = ctx.load_config() else { return HashMap::new() };
    let Ok(trust) = tiny_forge::http::Trust::load(config.ca_file().as_deref()) else { return HashMap::new() };
    let Ok(client) = tiny_forge::http::direct(&trust) else { return HashMap::new() };
    let probe = HttpProbe::new(client);
    let checks = instances.iter().filter(|i| i.status == InstanceStatus::Live).map(|i| {
        let (config, probe) = (&config, &probe);
        async move {
            let stage = ProjectName::new(&i.project)
                .ok()
                .zip(StageName::new(&i.stage).ok())
                .and_then(|(p, s)| config.resolve_with(&p, &s, Resolution::ConfigOnly).ok());
            let Some(stage) = stage else { return (i.id, "? (not in config)".to_owned()) };
            let ip = match runtime.inspect(&i.container_name, &stage.network).await {
                tiny_forge::look::Look::Found(c) => c.ip,
                tiny_forge::look::Look::Absent | tiny_forge::look::Look::Unknown(_) => None,
            };
            let Some(ip) = ip else { return (i.id, "no address".to_owned()) };
            let url = format!("http://{}{}", std::net::SocketAddr::new(ip, stage.port), stage.health.path);
            let r = probe.probe(&url, Duration::from_secs(2)).await;
            (i.id, if r.passed { "healthy".to_owned() } else { format!("unhealthy ({})", r.detail) })
        }
    });
    futures_util::future::join_all(checks).await.into_iter().collect()
}

/// `list`'s items on this host: the state file, cross-checked with Docker (and probed).
pub(crate) async fn local_items(
    ctx: &Ctx,
    project: Option<String>,
    stage: Option<String>,
    probe: bool,
) -> Result<Vec<serde_json::Value>, Failure> {
    let store = store_if_any(ctx)?;
    let f = filter(project, stage);
    let (instances, leftovers, state_id) = match &store {
        Some(s) => (
            s.instances(&f).map_err(Failure::usage)?,
            s.leftovers(&f).map_err(Failure::usage)?,
            Some(s.state_id().map_err(Failure::usage)?),
        ),
        None => (Vec::new(), Vec::new(), None),
    };
    // Cross-check with Docker; when it cannot be reached, say so and show what the state says.
    let runtime = DockerRuntime::connect().await.ok();
    let docker = match &runtime {
        Some(d) => tiny_forge::engine::managed_for_display(d).await,
        None => None,
    };
    let health = match (&runtime, probe) {
        (Some(rt), true) => probe_all(ctx, rt, &instances).await,
        _ => HashMap::new(),
    };
    if docker.is_none() && !ctx.quiet {
        eprintln!("warning: cannot reach the Docker Engine; container states are unknown");
    }
    Ok(tiny_forge::server::views::list_items(
        &instances,
        &leftovers,
        state_id.as_deref(),
        docker.as_deref(),
        &health,
        &f,
    ))
}

/// Age of an RFC 3339 time, for the AGE column.
fn age_of(v: &serde_json::Value) -> String {
    v.as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or_else(|| "-".into(), |d| age(i64::try_from(d.as_millis()).unwrap_or(0)))
}

pub(crate) async fn list(
    ctx: &Ctx,
    project: Option<String>,
    stage: Option<String>,
    probe: bool,
) -> Result<u8, Failure> {
    let items = match &ctx.remote {
        Some(url) => Remote::new(ctx, url)?.instances(project, stage, probe).await?,
        None => Local { ctx }.instances(project, stage, probe).await?,
    };
    if ctx.json() {
        out(&serde_json::Value::Array(items).to_string())?;
        return Ok(exit::OK);
    }
    let s =
        |v: &serde_json::Value, k: &str| v.get(k).and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
    let mut rows = Vec::new();
    let mut leftovers = Vec::new();
    for i in &items {
        match s(i, "status").as_str() {
            "leftover" => {
                if let Ok(item) = serde_json::from_value(i["leftover"].clone()) {
                    leftovers.push(tiny_forge::store::LeftoverRecord {
                        project: s(i, "project"),
                        stage: s(i, "stage"),
                        deploy_id: i["deploy_id"].as_i64().map(DeployId),
                        item,
                        created_at: 0,
                    });
                }
            }
            "orphan" => rows.push(vec![
                s(i, "project"),
                s(i, "stage"),
                s(i, "tag"),
                "-".into(),
                format!("{} (orphan: not in state)", s(i, "container_state")),
                "-".into(),
                "-".into(),
                "-".into(),
            ]),
            status => rows.push(vec![
                s(i, "project"),
                s(i, "stage"),
                s(i, "tag"),
                i["url"].as_str().map_or_else(|| "-".into(), str::to_owned),
                if status == InstanceStatus::Live.as_str() {
                    s(i, "container_state")
                } else {
                    format!("{} ({status})", s(i, "container_state"))
                },
                i["health"].as_str().map_or_else(|| "-".into(), str::to_owned),
                short_digest(&s(i, "digest")),
                age_of(&i["created_at"]),
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

fn deploy_json(d: &DeployRecord) -> serde_json::Value {
    json!({
        "id": d.id.0, "project": d.project, "stage": d.stage, "tag": d.tag, "image": d.image, "digest": d.digest,
        "status": d.status.as_str(), "trigger": d.trigger.as_str(), "started_at": render::rfc3339(d.started_at),
        "finished_at": d.finished_at.map(render::rfc3339),
        "duration_ms": d.finished_at.map(|f| f - d.started_at), "error": d.error, "url": d.url, "leftovers": d.leftovers,
        "exit_code": exit::for_record(d), "actor": d.actor,
    })
}

fn duration(d: &DeployRecord) -> String {
    d.finished_at.map_or_else(|| "-".into(), |f| fmt_ms(u64::try_from(f - d.started_at).unwrap_or(0)))
}

pub(crate) async fn history(ctx: &Ctx, h: HistoryArgs) -> Result<u8, Failure> {
    if let Some(HistoryCommand::Show { id, follow }) = h.show {
        return show(ctx, DeployId(id), follow).await;
    }
    let deploys = match &ctx.remote {
        Some(url) => Remote::new(ctx, url)?.history(h.project, h.stage, h.limit).await?,
        None => Local { ctx }.history(h.project, h.stage, h.limit).await?,
    };
    if ctx.json() {
        out(&serde_json::Value::Array(deploys.iter().map(deploy_json).collect()).to_string())?;
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
        out(&json!({"type": "log", "ts": render::rfc3339(l.ts), "level": l.level, "step": l.step, "message": l.message})
            .to_string())
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
    let mut v = deploy_json(d);
    v["logs"] = serde_json::to_value(
        logs.iter()
            .map(|l| json!({"ts": render::rfc3339(l.ts), "level": l.level, "step": l.step, "message": l.message}))
            .collect::<Vec<_>>(),
    )
    .unwrap_or_default();
    out(&v.to_string())
}

fn show_end(ctx: &Ctx, d: &DeployRecord, follow: bool) -> Result<u8, Failure> {
    if ctx.json() {
        out(&json!({"type": "result", "deploy": deploy_json(d)}).to_string())?;
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
    let Some(store) = store_if_any(ctx)? else {
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
