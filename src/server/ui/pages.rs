//! The pages: previews, history, one deploy, a job on its way, sign-in and problems. Each is
//! rendered on the server from what the API reads (the executor's `list`, the state file), with
//! the viewer's scope applied as the API applies it. Words, not colours alone, say every state.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use tokio::sync::oneshot;

use super::UiError;
use super::session::Viewer;
use crate::domain::{DeployId, DeployStatus};
use crate::ops::list::ListItem;
use crate::report::{Event, Step};
use crate::server::auth::{Action, Caller};
use crate::server::error::ApiError;
use crate::server::executor::Command;
use crate::server::queue::UNRESOLVED;
use crate::server::state::{Api, readable};
use crate::server::wire::JobState;
use crate::store::{DeployRecord, Filter, Store as _, StoredEvent, now_ms};

/// Deploys on one page of history.
pub(super) const PAGE: usize = 50;

/// Log lines shown as a failed deploy's evidence.
const EVIDENCE: usize = 12;

/// The frame of every page.
fn layout(title: &str, viewer: Option<&Viewer>, body: &Markup) -> Html<String> {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · tiny-forge" }
                link rel="stylesheet" href="/ui/assets/ui.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header {
                    nav aria-label="Main" {
                        a.brand href="/ui" { "tiny-forge" }
                        @if let Some(v) = viewer {
                            a href="/ui" { "Previews" }
                            a href="/ui/deploys" { "Deploys" }
                            span.who { "Signed in with token " b { (v.caller.name) } }
                            form.inline method="post" action="/ui/logout" {
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main { (body) }
            }
        }
    };
    Html(page.into_string())
}

/// A page for a signed-in viewer.
pub(super) fn page(title: &str, viewer: &Viewer, body: &Markup) -> Html<String> {
    layout(title, Some(viewer), body)
}

/// The sign-in page, with why the last attempt failed.
pub(super) fn login(problem: Option<&str>) -> Html<String> {
    let body = html! {
        h1 { "Sign in" }
        p { "Paste an API token. Ask the host's operator for one: "
            code { "tiny-forge token create --name YOU --project P --stage S --can read,deploy" } "." }
        @if let Some(p) = problem {
            p.problem role="alert" { strong { "Not signed in: " } (p) }
        }
        form.login method="post" action="/ui/login" {
            label for="token" { "Token" }
            input #token type="password" name="token" autocomplete="current-password" required autofocus;
            button type="submit" { "Sign in" }
        }
        p.small { "The token is checked once and not kept in the browser: a session cookie stands for it, and ends when the token is revoked." }
    };
    layout("Sign in", None, &body)
}

/// A page saying what went wrong.
pub(super) fn problem(title: &str, message: &str) -> Html<String> {
    let body = html! {
        h1 { (title) }
        p.problem role="alert" { (message) }
        p { a href="/ui" { "Back to the previews" } }
    };
    layout(title, None, &body)
}

/// `sha256:0123456789ab…` → `0123456789ab`.
pub(super) fn short(digest: &str) -> &str {
    let hex = digest.split_once(':').map_or(digest, |(_, h)| h);
    hex.get(..12).unwrap_or(hex)
}

/// Unix milliseconds of an RFC 3339 time as `fmt::rfc3339` writes it (`2026-01-02T03:04:05.678Z`).
fn parse_rfc3339(text: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| text.get(r).and_then(|x| x.parse::<i64>().ok());
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let ms = if text.as_bytes().get(19) == Some(&b'.') { num(20..23).unwrap_or(0) } else { 0 };
    // Days from the civil date (Howard Hinnant's algorithm).
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let doy = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + ms)
}

/// `3d`, `5h`, `12m`, `40s`: how long ago `ts_ms` was.
fn ago(ts_ms: i64) -> String {
    let s = (now_ms() - ts_ms).max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86_400 => format!("{}h", s / 3600),
        _ => format!("{}d", s / 86_400),
    }
}

/// The outcome of a deploy in words, with a class for the stylesheet (never the only signal).
fn outcome(d: &DeployRecord) -> Markup {
    let word = d.status.as_str();
    let class = match d.status {
        DeployStatus::Succeeded => "ok",
        DeployStatus::Running => "run",
        DeployStatus::RolledBack => "info",
        DeployStatus::Failed | DeployStatus::Interrupted => "bad",
    };
    let code = crate::ops::ExitCode::of_record(d).map(crate::ops::ExitCode::code);
    html! {
        span class={ "badge " (class) } data-status=(word) {
            (word)
            @if let Some(c) = code { @if c != 0 { " (exit " (c) ")" } }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct Where {
    project: Option<String>,
    stage: Option<String>,
    before: Option<i64>,
}

impl Where {
    fn filter(&self) -> Filter {
        let some = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
        let project = some(&self.project);
        // A stage alone filters nothing in the state file's queries; it needs its project.
        Filter { stage: project.as_ref().and(some(&self.stage)), project, tag: None }
    }
}

/// The filter form: the projects and stages of the config the viewer may see.
fn filters(api: &Api, caller: &Caller, filter: &Filter, action: &str) -> Markup {
    let stages: Vec<(String, String)> =
        api.live.current().config.stages().into_iter().filter(|(p, s)| caller.sees(p, Some(s))).collect();
    let mut projects: Vec<&str> = stages.iter().map(|(p, _)| p.as_str()).collect();
    projects.dedup();
    let mut stage_names: Vec<&str> = stages
        .iter()
        .filter(|(p, _)| filter.project.as_deref().is_none_or(|f| f == p))
        .map(|(_, s)| s.as_str())
        .collect();
    stage_names.sort_unstable();
    stage_names.dedup();
    html! {
        form.filters method="get" action=(action) role="search" {
            label for="f-project" { "Project" }
            select #f-project name="project" {
                option value="" { "all" }
                @for p in &projects {
                    option value=(p) selected[filter.project.as_deref() == Some(*p)] { (p) }
                }
            }
            label for="f-stage" { "Stage" }
            select #f-stage name="stage" {
                option value="" { "all" }
                @for s in &stage_names {
                    option value=(s) selected[filter.stage.as_deref() == Some(*s)] { (s) }
                }
            }
            button type="submit" { "Show" }
        }
    }
}

/// What the previews page shows of the running state: the items `list` shows, readable ones.
async fn listed(api: &Api, caller: &Caller, filter: Filter) -> Result<Vec<ListItem>, UiError> {
    let (tx, rx) = oneshot::channel();
    api.commands.send(Command::List(filter, tx)).map_err(|_| ApiError::executor_gone())?;
    let items = rx.await.map_err(|_| ApiError::executor_gone())?.map_err(ApiError::internal)?;
    Ok(items.into_iter().filter(|i| readable(caller, i.project(), i.stage())).collect())
}

/// A fingerprint of what the viewer may read that changes when a deploy starts or ends: the
/// newest deploy's id and the running ones'. Cheap on any history (an index each).
fn fingerprint(api: &Api, caller: &Caller) -> Result<String, ApiError> {
    let store = api.store();
    let newest = store.deploys_page(caller.scope(), &Filter::default(), None, 1).map_err(ApiError::internal)?;
    let running = store.running(&Filter::default()).map_err(ApiError::internal)?;
    drop(store);
    let mut fp = newest.first().map_or_else(|| "0".to_owned(), |d| d.id.0.to_string());
    for d in running.iter().filter(|d| readable(caller, &d.project, &d.stage)) {
        fp.push('-');
        fp.push_str(&d.id.0.to_string());
    }
    Ok(fp)
}

/// An instance and its slot's last deploy.
type Row = (crate::ops::list::InstanceItem, Option<DeployRecord>);

/// Pushes held for approval, each with its digest and (when the token may deploy there) the
/// button that approves that digest.
fn held_section(caller: &Caller, held: &[crate::server::queue::Held]) -> Markup {
    html! {
        section.held aria-labelledby="held-h" {
            h2 #held-h { "Waiting for approval" }
            ul.cards {
                @for h in held {
                    @let digest = h.candidate.digest.as_deref().unwrap_or(UNRESOLVED);
                    li.card {
                        p { b { (h.candidate.slot) } " ← " code { (h.candidate.image) ":" (h.candidate.tag) } }
                        p { "Digest " code.digest { (digest) } }
                        p.small { "Pushed by " (h.candidate.actor) }
                        @if caller.allows(Action::Deploy, h.candidate.slot.project.as_str(), h.candidate.slot.stage.as_str()) {
                            form method="post" action=(format!("/ui/approvals/{}", h.id)) {
                                input type="hidden" name="digest" value=(digest);
                                button type="submit" { "Approve and deploy " (short(digest)) }
                            }
                        } @else {
                            p.small { "This token may not deploy here." }
                        }
                    }
                }
            }
        }
    }
}

/// One project's stage: a row per instance.
fn stage_section(caller: &Caller, project: &str, stage: &str, rows: &[Row]) -> Markup {
    html! {
        section.stage aria-label=(format!("{project}/{stage}")) {
            h2 { (project) " / " (stage) }
            table.previews {
                thead { tr {
                    th scope="col" { "Tag" } th scope="col" { "URL" } th scope="col" { "State" }
                    th scope="col" { "Health" } th scope="col" { "Digest" } th scope="col" { "Age" }
                    th scope="col" { "Last deploy" } th scope="col" { "Actions" }
                } }
                tbody {
                    @for (i, last) in rows {
                        tr data-tag=(i.tag) {
                            td data-label="Tag" { b { (i.tag) } }
                            td data-label="URL" {
                                @if let Some(u) = &i.url { a.url href=(u) rel="noopener" { (u) } } @else { "none yet" }
                            }
                            td data-label="State" { (i.status.as_str()) ", " (i.container_state) }
                            td data-label="Health" {
                                @if let Some(h) = &i.health { (h) }
                                @else if i.status.as_str() == "live" { "passed at deploy" }
                                @else { "not checked" }
                            }
                            td data-label="Digest" { code title=(i.digest) { (short(&i.digest)) } }
                            td data-label="Age" {
                                @if let Some(ms) = parse_rfc3339(&i.created_at) { time datetime=(i.created_at) { (ago(ms)) } }
                            }
                            td data-label="Last deploy" {
                                @if let Some(d) = last {
                                    a href=(format!("/ui/deploys/{}", d.id.0)) { "#" (d.id.0) } " " (outcome(d)) " " (ago(d.started_at)) " ago"
                                }
                            }
                            td data-label="Actions" { (super::actions::buttons(caller, project, stage, &i.tag)) }
                        }
                    }
                }
            }
        }
    }
}

/// What else `list` shows: leftovers and managed containers the state file does not know.
fn others_section(others: &[ListItem]) -> Markup {
    html! {
        section.others aria-labelledby="others-h" {
            h2 #others-h { "Also found" }
            ul {
                @for o in others {
                    @match o {
                        ListItem::Leftover(l) => li { b { "Leftover" } " of " (l.project) "/" (l.stage)
                            @if let Some(d) = l.deploy_id { " (deploy " a href=(format!("/ui/deploys/{d}")) { "#" (d) } ")" }
                            ": " (l.leftover) ". " span.small { "`tiny-forge prune` finishes it." } },
                        ListItem::Orphan(c) => li { b { "Not in the state file" } ": container " code { (c.container) }
                            " (" (c.project) "/" (c.stage) ":" (c.tag) ", " (c.container_state) ")" },
                        ListItem::Instance(_) => {},
                    }
                }
            }
        }
    }
}

/// `GET /ui`: the previews.
pub(super) async fn previews(
    State(api): State<Api>,
    viewer: Viewer,
    Query(q): Query<Where>,
) -> Result<Response, UiError> {
    let caller = &viewer.caller;
    let filter = q.filter();
    if !caller.can_read() {
        let body = html! {
            h1 { "Previews" }
            p.problem { "Token " b { (caller.name) } " may not read: it shows nothing here. Ask for a token with " code { "--can read" } "." }
        };
        return Ok(layout("Previews", Some(&viewer), &body).into_response());
    }
    let items = listed(&api, caller, filter.clone()).await?;
    let held: Vec<_> = crate::server::approvals::held(&api)
        .await?
        .into_iter()
        .filter(|h| readable(caller, h.candidate.slot.project.as_str(), h.candidate.slot.stage.as_str()))
        .filter(|h| filter.project.as_deref().is_none_or(|p| p == h.candidate.slot.project.as_str()))
        .filter(|h| filter.stage.as_deref().is_none_or(|s| s == h.candidate.slot.stage.as_str()))
        .collect();
    let fp = fingerprint(&api, caller)?;
    // Per project and stage: instances (with their slot's last deploy), then what else `list` shows.
    let mut groups: BTreeMap<(String, String), Vec<Row>> = BTreeMap::new();
    let mut others = Vec::new();
    {
        let store = api.store();
        for item in items {
            match item {
                ListItem::Instance(i) => {
                    let last = store.last_deploy(&i.project, &i.stage, &i.tag).map_err(UiError::internal)?;
                    groups.entry((i.project.clone(), i.stage.clone())).or_default().push((i, last));
                }
                other => others.push(other),
            }
        }
    }
    let body = html! {
        h1 { "Previews" }
        (filters(&api, caller, &filter, "/ui"))
        div #live data-changes=(format!("/ui/changes?since={fp}")) aria-live="polite" {
            @if !held.is_empty() { (held_section(caller, &held)) }
            @if groups.is_empty() && others.is_empty() {
                p.empty { "No previews run" @if filter.project.is_some() { " here" } "." }
            }
            @for ((project, stage), rows) in &groups { (stage_section(caller, project, stage, rows)) }
            @if !others.is_empty() { (others_section(&others)) }
        }
    };
    Ok(layout("Previews", Some(&viewer), &body).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct Since {
    since: Option<String>,
}

/// `GET /ui/changes`: one `change` event each time the viewer's [`fingerprint`] moves on from
/// `since` (a deploy it may read started or ended); the previews page then fetches itself again.
pub(super) async fn changes(State(api): State<Api>, viewer: Viewer, Query(q): Query<Since>) -> impl IntoResponse {
    struct Watch {
        api: Api,
        caller: Caller,
        last: String,
        events: tokio::sync::watch::Receiver<u64>,
        jobs: tokio::sync::watch::Receiver<u64>,
    }
    let w = Watch {
        events: api.shared.events.subscribe(),
        jobs: api.shared.jobs.subscribe(),
        last: q.since.unwrap_or_default(),
        caller: viewer.caller,
        api,
    };
    let stream = futures_util::stream::unfold(w, |mut w| async move {
        loop {
            match fingerprint(&w.api, &w.caller) {
                Ok(fp) if fp != w.last => {
                    w.last.clone_from(&fp);
                    return Some((Ok::<_, Infallible>(SseEvent::default().event("change").data(fp)), w));
                }
                Ok(_) => {}
                Err(e) => return Some((Ok(SseEvent::default().event("error").data(e.message())), w)),
            }
            if !w.api.serving() {
                return None;
            }
            // Deploys this server runs wake it at once; the CLI's are noticed by the poll.
            tokio::select! {
                _ = w.jobs.changed() => {}
                _ = w.events.changed() => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
    ([("x-accel-buffering", "no")], Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `GET /ui/deploys`: history, newest first, [`PAGE`] at a time.
pub(super) async fn deploys(
    State(api): State<Api>,
    viewer: Viewer,
    Query(q): Query<Where>,
) -> Result<Response, UiError> {
    let caller = &viewer.caller;
    if !caller.can_read() {
        let body = html! { h1 { "Deploys" } p.problem { "Token " b { (caller.name) } " may not read." } };
        return Ok(layout("Deploys", Some(&viewer), &body).into_response());
    }
    let filter = q.filter();
    let rows = api.store().deploys_page(caller.scope(), &filter, q.before, PAGE).map_err(UiError::internal)?;
    // The state file applied the scope; the API's check is applied again, row by row.
    let rows: Vec<_> = rows.into_iter().filter(|d| readable(caller, &d.project, &d.stage)).collect();
    let next = (rows.len() == PAGE).then(|| rows.last().map(|d| d.id.0)).flatten();
    let keep = |extra: String| {
        let mut qs = Vec::new();
        if let Some(p) = &filter.project {
            qs.push(format!("project={p}"));
        }
        if let Some(s) = &filter.stage {
            qs.push(format!("stage={s}"));
        }
        qs.push(extra);
        format!("/ui/deploys?{}", qs.join("&"))
    };
    let body = html! {
        h1 { "Deploys" }
        (filters(&api, caller, &filter, "/ui/deploys"))
        @if rows.is_empty() { p.empty { "No deploys." } } @else {
            table.deploys {
                thead { tr {
                    th scope="col" { "Deploy" } th scope="col" { "Slot" } th scope="col" { "Outcome" }
                    th scope="col" { "Started" } th scope="col" { "Took" } th scope="col" { "By" }
                } }
                tbody {
                    @for d in &rows {
                        tr {
                            td data-label="Deploy" { a href=(format!("/ui/deploys/{}", d.id.0)) { "#" (d.id.0) } }
                            td data-label="Slot" { (d.project) "/" (d.stage) ":" b { (d.tag) } }
                            td data-label="Outcome" { (outcome(d)) }
                            td data-label="Started" { time datetime=(crate::fmt::rfc3339(d.started_at)) { (ago(d.started_at)) " ago" } }
                            td data-label="Took" { @if let Some(f) = d.finished_at { (crate::fmt::millis(u64::try_from(f - d.started_at).unwrap_or(0))) } }
                            td data-label="By" { (d.actor.as_deref().unwrap_or("cli")) " (" (d.trigger.as_str()) ")" }
                        }
                    }
                }
            }
        }
        nav.pager aria-label="Pages" {
            @if q.before.is_some() { a href=(keep(String::new())) { "Newest" } }
            @if let Some(n) = next { a rel="next" href=(keep(format!("before={n}"))) { "Older deploys" } }
        }
    };
    Ok(layout("Deploys", Some(&viewer), &body).into_response())
}

/// A step's state from its events: `running`, `done in …`, `failed: …`.
fn steps(events: &[StoredEvent]) -> Vec<(Step, String)> {
    let mut out: Vec<(Step, String)> = Vec::new();
    let mut set = |step: Step, state: String| match out.iter_mut().find(|(s, _)| *s == step) {
        Some(e) => e.1 = state,
        None => out.push((step, state)),
    };
    for e in events {
        match &e.event {
            Some(Event::StepStarted { step }) => set(*step, "running".into()),
            Some(Event::StepFinished { step, elapsed_ms }) => {
                set(*step, format!("done in {}", crate::fmt::millis(*elapsed_ms)));
            }
            Some(Event::StepFailed { step, error, .. }) => set(*step, format!("failed: {error}")),
            _ => {}
        }
    }
    out
}

/// `GET /ui/deploys/{id}`: a deploy, its steps and its log; live while it runs.
pub(super) async fn deploy(State(api): State<Api>, viewer: Viewer, Path(id): Path<i64>) -> Result<Response, UiError> {
    let caller = &viewer.caller;
    let not_found = || UiError::Api(ApiError::not_found(format!("deploy {id} not found")));
    let store = api.store();
    let d = store.deploy(DeployId(id)).map_err(UiError::internal)?.ok_or_else(not_found)?;
    let reads = readable(caller, &d.project, &d.stage);
    // As the API's event stream: readable, or run by this token's own job.
    let own = api.shared.jobs.owner_of_deploy(id) == Some(caller.id);
    if !reads && !own {
        return Err(not_found());
    }
    let events = if reads { store.events(DeployId(id), 0).map_err(UiError::internal)? } else { Vec::new() };
    drop(store);
    let running = d.status == DeployStatus::Running;
    let last_seq = events.last().map_or(0, |e| e.seq);
    let code = crate::ops::ExitCode::of_record(&d).map(crate::ops::ExitCode::code);
    let title = format!("Deploy #{id}");
    let body = html! {
        h1 { "Deploy #" (id) " " span.slot { (d.project) "/" (d.stage) ":" (d.tag) } }
        dl.summary #summary {
            dt { "Outcome" } dd #outcome { (outcome(&d)) }
            dt { "Exit code" } dd #exit-code { @if let Some(c) = code { (c) } @else { "not yet" } }
            dt { "Image" } dd { code { (d.image) } }
            dt { "Digest" } dd { @if let Some(g) = &d.digest { code { (g) } } @else { "not pulled yet" } }
            @if let Some(u) = &d.url { dt { "URL" } dd { a.url href=(u) rel="noopener" { (u) } } }
            dt { "Started" } dd { (crate::fmt::rfc3339(d.started_at)) " (" (ago(d.started_at)) " ago)" }
            @if let Some(f) = d.finished_at { dt { "Took" } dd { (crate::fmt::millis(u64::try_from(f - d.started_at).unwrap_or(0))) } }
            dt { "By" } dd { (d.actor.as_deref().unwrap_or("cli")) " (" (d.trigger.as_str()) ")" }
            @if !d.leftovers.is_empty() { dt { "Left behind" } dd { ul { @for l in &d.leftovers { li { (l) } } } } }
        }
        @if reads {
            @if let Some(e) = &d.error {
                section.evidence aria-labelledby="why-h" {
                    h2 #why-h { "Why it failed" }
                    p.problem { (e) }
                    h3 { "Last log lines" }
                    ol.log start=(events.len().saturating_sub(EVIDENCE) + 1) {
                        @for e in events.iter().rev().take(EVIDENCE).rev() { (log_line(e)) }
                    }
                }
            }
            section aria-labelledby="steps-h" {
                h2 #steps-h { "Steps" }
                ol.steps #steps {
                    @for (step, state) in steps(&events) {
                        li data-step=(step.as_str()) { b { (step.as_str()) } " " span.state { (state) } }
                    }
                }
            }
            section aria-labelledby="log-h" {
                h2 #log-h { "Log" }
                @if running { p.small #live-note { "Live: new lines appear as the deploy writes them." } }
                ol.log #log data-events=[running.then(|| format!("/ui/deploys/{id}/events?after={last_seq}"))] {
                    @for e in &events { (log_line(e)) }
                }
            }
        } @else {
            p.small { "Token " b { (caller.name) } " may not read this stage's logs; it sees the outcome only." }
            @if running { meta http-equiv="refresh" content="2"; }
        }
        @if reads && !running {
            p { (super::actions::buttons(caller, &d.project, &d.stage, &d.tag)) }
        }
    };
    Ok(layout(&title, Some(&viewer), &body).into_response())
}

fn log_line(e: &StoredEvent) -> Markup {
    html! {
        li data-seq=(e.seq) {
            time datetime=(crate::fmt::rfc3339(e.entry.ts)) { (crate::fmt::rfc3339(e.entry.ts).get(11..19).unwrap_or_default()) }
            " " span.level { (format!("{:?}", e.entry.level).to_lowercase()) } " "
            span.step { (e.entry.step) } " " span.msg { (e.entry.message) }
        }
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct After {
    after: Option<u64>,
}

/// `GET /ui/deploys/{id}/events?after=N`: the API's event stream of the deploy (`sse.rs`), for
/// the session's token; a reconnecting browser's `Last-Event-ID` wins over `after`.
pub(super) async fn deploy_events(
    State(api): State<Api>,
    viewer: Viewer,
    Path(id): Path<i64>,
    Query(q): Query<After>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let resumed = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let after = resumed.or(q.after).unwrap_or(0);
    Ok(crate::server::sse::stream(api, &viewer.caller, id, after)?.into_response())
}

/// `GET /ui/jobs/{id}`: a job this page started. On to its deploy once it has one; its error
/// if it never began; until then a page that looks again every second.
pub(super) async fn job(State(api): State<Api>, viewer: Viewer, Path(id): Path<u64>) -> Result<Response, UiError> {
    let caller = &viewer.caller;
    let not_found = || UiError::Api(ApiError::not_found(format!("job {id} not found")));
    let view = api.shared.jobs.get(id).ok_or_else(not_found)?;
    let (project, stage) = crate::server::api::slot_parts(&view.slot);
    let own = api.shared.jobs.owner(id) == Some(caller.id);
    if !own && !caller.allows(Action::Read, project, stage) {
        return Err(not_found());
    }
    if let Some(d) = view.deploy_id {
        return Ok(Redirect::to(&format!("/ui/deploys/{d}")).into_response());
    }
    let body = html! {
        h1 { "Job " (id) ": " (view.kind) " " (view.slot) }
        @match view.state {
            JobState::Failed => {
                p.problem role="alert" { "It did not begin: " (view.error.as_deref().unwrap_or("")) }
                p { "Exit code " (view.exit_code.unwrap_or(2)) "." }
            }
            JobState::Done => {
                p { "Done, exit code " (view.exit_code.unwrap_or(0)) "." }
            }
            JobState::Waiting | JobState::Running => {
                meta http-equiv="refresh" content="1";
                p role="status" { "Waiting for the stage's lock; this page moves on to the deploy when it starts." }
            }
        }
        p { a href="/ui" { "Back to the previews" } }
    };
    Ok(layout("Job", Some(&viewer), &body).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_written_by_fmt_read_back_and_digests_shorten_to_twelve() {
        for ms in [0, 1_764_906_123_456, 951_782_400_000, 4_102_444_800_999] {
            assert_eq!(parse_rfc3339(&crate::fmt::rfc3339(ms)), Some(ms), "{}", crate::fmt::rfc3339(ms));
        }
        assert_eq!(parse_rfc3339("not a time"), None);
        assert_eq!(short("sha256:0123456789abcdef"), "0123456789ab");
        assert_eq!(short("unresolved"), "unresolved");
    }
}
