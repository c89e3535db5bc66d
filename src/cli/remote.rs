//! `--remote URL`: the deployer interface over a `tiny-forge serve` (protocol in
//! `tiny_forge::server::wire`). Events arrive typed and go to the same renderer as a local
//! run's; the result object and its exit code are the server's, which are a local run's.
//!
//! # Losing the server
//! A restart of the server, a proxy in front of it answering 502 meanwhile, a network hiccup:
//! none of these may turn a deploy's outcome into a guess. So:
//! - Refused connections, timeouts, 5xx and 429 are retried, with a growing pause (up to
//!   [`MAX_BACKOFF`]), for a time budget (the [`Patience`]): the server's `grace` (it says so
//!   when it accepts the work) plus [`RESTART`], or `$TINY_FORGE_REMOTE_PATIENCE`. The budget
//!   starts again whenever the server answers.
//! - A submission carries a random `Idempotency-Key`, so a retry of one whose answer was lost
//!   gets the same job rather than a second deploy.
//! - The event stream is resumed with `Last-Event-ID`, also on the restarted server (the log
//!   is in its state file), and reconnected when nothing, not even the server's keep-alive,
//!   arrives for [`READ_IDLE`].
//! - Once the server has accepted the work, a failure to learn how it ended exits
//!   [`exit::OUTCOME_UNKNOWN`] (5), never 2 ("nothing was touched"), with a pointer to
//!   `history`. Before that, a failure exits 2 when no attempt can have reached the server.
//!
//! Interrupting the CLI stops following; the deploy goes on on the server.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use reqwest::StatusCode;
use tiny_forge::ops::{CommandResult, ResultLine};
use tiny_forge::report::Reporter;
use tiny_forge::server::wire::{self, CommandBody, ErrorBody, JobState, JobView};
use tiny_forge::store::DeployRecord;
use tokio::time::Instant;

use super::order::{Deploys, Order, OrderKind};
use super::{Ctx, Failure, exit};
use tiny_forge::ops::list::ListItem;

/// What a restart of the server may take, on top of its `grace`.
const RESTART: Duration = Duration::from_secs(120);
/// The server's `grace` when it did not say (its default).
const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// The first pause between two attempts; it doubles up to [`MAX_BACKOFF`].
const BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// An event stream that brings nothing for this long (the server sends a keep-alive every
/// 15 s) is reconnected.
const READ_IDLE: Duration = Duration::from_secs(45);
/// The bound on one request that is not an event stream (a long poll adds its wait).
const REQUEST: Duration = Duration::from_secs(30);
/// A long poll's wait, in seconds.
const LONG_POLL: u64 = 8;
/// A long poll answered sooner than this while the job still waits is followed by a pause, so
/// that a server that answers at once is not polled in a loop.
const EARLY: Duration = Duration::from_secs(1);

/// A server, with the token from `$TINY_FORGE_TOKEN`.
pub(crate) struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
    /// `$TINY_FORGE_REMOTE_PATIENCE`, when set.
    patience: Option<Duration>,
    quiet: bool,
}

fn failure(code: u8, e: impl Into<anyhow::Error>) -> Failure {
    Failure { code, error: e.into() }
}

/// The outcome of work the server accepted could not be learned.
fn unknown(e: impl Into<anyhow::Error>, what: &str) -> Failure {
    failure(
        exit::OUTCOME_UNKNOWN,
        e.into().context(format!(
            "the server accepted the {what}, but its outcome is unknown; `tiny-forge --remote … history` shows how it ends"
        )),
    )
}

/// What one attempt came to.
enum Attempt {
    /// A 2xx answer.
    Answer(reqwest::Response),
    /// Worth another try: no connection, a timeout, 5xx or 429. `reached`: the request may
    /// have reached the server and started something.
    Retry { why: String, reached: bool },
    /// A refusal (4xx): with the exit code the server says a local run would have had.
    Refused(Failure),
}

/// A time budget for retries, started again by every answer.
struct Patience {
    budget: Duration,
    since: Instant,
    pause: Duration,
    told: bool,
}

impl Patience {
    fn new(budget: Duration) -> Self {
        Self { budget, since: Instant::now(), pause: BACKOFF, told: false }
    }

    /// The server answered.
    fn answered(&mut self) {
        self.since = Instant::now();
        self.pause = BACKOFF;
        self.told = false;
    }

    fn spent(&self) -> bool {
        self.since.elapsed() >= self.budget
    }

    /// Waits before the next attempt; says once per outage (unless `quiet`) what is going on.
    async fn pause(&mut self, base: &str, why: &str, quiet: bool) {
        if !self.told && !quiet {
            eprintln!(
                "tiny-forge: lost {base} ({why}); retrying for up to {}",
                humantime::format_duration(self.budget)
            );
            self.told = true;
        }
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(MAX_BACKOFF);
    }
}

impl Remote {
    pub(crate) fn new(ctx: &Ctx, url: &str) -> Result<Self, Failure> {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(Failure::usage(anyhow!(
                "--remote `{url}`: give the server's URL, e.g. https://deploy.example.com"
            )));
        }
        let token = std::env::var(tiny_forge::env::TINY_FORGE_TOKEN).unwrap_or_default();
        if token.trim().is_empty() {
            return Err(Failure::usage(anyhow!(
                "--remote needs a token in ${}; make one with `tiny-forge token create` on the server's host",
                tiny_forge::env::TINY_FORGE_TOKEN
            )));
        }
        let patience = match std::env::var(tiny_forge::env::TINY_FORGE_REMOTE_PATIENCE) {
            Ok(v) if !v.trim().is_empty() => Some(humantime::parse_duration(v.trim()).map_err(|e| {
                Failure::usage(anyhow!(
                    "${} `{v}`: {e}; give a duration such as 5m",
                    tiny_forge::env::TINY_FORGE_REMOTE_PATIENCE
                ))
            })?),
            _ => None,
        };
        if !ctx.quiet && url.starts_with("http://") && !loopback(url) {
            eprintln!("tiny-forge: warning: {url} is plain HTTP; the token travels in clear (use https://)");
        }
        let trust = tiny_forge::http::Trust::load(None).map_err(Failure::usage)?;
        let client =
            tiny_forge::http::outbound(&trust, &tiny_forge::http::ProxyEnv::from_env()).map_err(Failure::usage)?;
        Ok(Self {
            base: url.trim_end_matches('/').to_owned(),
            token: token.trim().to_owned(),
            client,
            patience,
            quiet: ctx.quiet,
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// A budget for work the server said has `grace`.
    fn patience(&self, grace: Option<Duration>) -> Patience {
        Patience::new(self.patience.unwrap_or_else(|| grace.unwrap_or(DEFAULT_GRACE) + RESTART))
    }

    /// Turns an error answer into the exit code the server says a local run would have had.
    async fn refusal(resp: reqwest::Response) -> Failure {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&body) {
            Ok(e) => failure(e.exit_code, anyhow!("{} (server answered {status})", e.error)),
            Err(_) => Failure::usage(anyhow!("the server answered {status}: {}", body.trim())),
        }
    }

    /// Sends `req` once and sorts the result.
    async fn attempt(req: reqwest::RequestBuilder) -> Attempt {
        match req.send().await {
            Ok(resp) if resp.status().is_success() => Attempt::Answer(resp),
            Ok(resp) if resp.status() == StatusCode::TOO_MANY_REQUESTS || resp.status().is_server_error() => {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                // The server's own refusal (it drains, or caps failures) started nothing; a
                // proxy's 502 or 504 may hide a request that reached it.
                let ours = serde_json::from_str::<ErrorBody>(&body);
                let why = ours.as_ref().map_or_else(|_| status.to_string(), |e| format!("{status}: {}", e.error));
                let reached = ours.is_err() && status != StatusCode::SERVICE_UNAVAILABLE;
                Attempt::Retry { why, reached }
            }
            Ok(resp) => Attempt::Refused(Self::refusal(resp).await),
            Err(e) => {
                let reached = !e.is_connect();
                Attempt::Retry { why: super::one_line(&e), reached }
            }
        }
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, Failure> {
        let req = self.client.get(self.url(path)).bearer_auth(&self.token).timeout(REQUEST);
        let resp = req.send().await.with_context(|| format!("cannot reach {}", self.base)).map_err(Failure::usage)?;
        if resp.status().is_success() { Ok(resp) } else { Err(Self::refusal(resp).await) }
    }

    /// Submits work; returns its job and the server's `grace`. Retried as the module doc says;
    /// a failure exits 2 when no attempt can have reached the server, else 5.
    async fn submit(&self, path: &str, body: &CommandBody) -> Result<(JobView, Option<Duration>), Failure> {
        let key = idempotency_key();
        let mut patience = self.patience(None);
        let mut reached = false;
        loop {
            let req = self
                .client
                .post(self.url(path))
                .bearer_auth(&self.token)
                .header("idempotency-key", &key)
                .timeout(REQUEST)
                .json(body);
            match Self::attempt(req).await {
                Attempt::Answer(resp) => {
                    let grace = resp
                        .headers()
                        .get(wire::GRACE_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let job = resp.json().await.context("the server's answer is not a job");
                    return match job {
                        Ok(job) => Ok((job, grace)),
                        Err(e) => Err(unknown(e, "work")),
                    };
                }
                Attempt::Refused(f) => return Err(f),
                Attempt::Retry { why, reached: r } => {
                    reached |= r;
                    if patience.spent() {
                        let e = anyhow!("cannot reach {}: {why}", self.base);
                        return Err(if reached { unknown(e, "work (maybe)") } else { Failure::usage(e) });
                    }
                    patience.pause(&self.base, &why, self.quiet).await;
                }
            }
        }
    }

    /// Polls `job` until `done` says so, reporting its early events once. Every failure after
    /// the server accepted the job is [`exit::OUTCOME_UNKNOWN`].
    async fn poll(
        &self,
        mut job: JobView,
        patience: &mut Patience,
        reporter: &dyn Reporter,
        done: fn(JobState) -> bool,
    ) -> Result<JobView, Failure> {
        let mut shown = 0;
        loop {
            for e in job.early.iter().skip(shown) {
                reporter.report(e.ts, &e.event);
            }
            shown = job.early.len();
            if done(job.state) {
                return Ok(job);
            }
            let url = self.url(&format!("/v1/jobs/{}?wait={LONG_POLL}", job.id));
            let t0 = Instant::now();
            let req = self.client.get(url).bearer_auth(&self.token).timeout(REQUEST + Duration::from_secs(LONG_POLL));
            match Self::attempt(req).await {
                Attempt::Answer(resp) => {
                    patience.answered();
                    job = resp
                        .json()
                        .await
                        .context("the server's answer is not a job")
                        .map_err(|e| unknown(e, "work"))?;
                    if !done(job.state) && t0.elapsed() < EARLY {
                        tokio::time::sleep(EARLY).await;
                    }
                }
                Attempt::Refused(f) => return Err(unknown(f.error, "work")),
                Attempt::Retry { why, .. } => {
                    if patience.spent() {
                        return Err(unknown(anyhow!("lost {}: {why}", self.base), "work"));
                    }
                    patience.pause(&self.base, &why, self.quiet).await;
                }
            }
        }
    }

    /// Deploy `id`'s record and log (`GET /v1/deploys/{id}`).
    pub(crate) async fn record(
        &self,
        id: tiny_forge::domain::DeployId,
    ) -> Result<(DeployRecord, Vec<tiny_forge::store::LogEntry>), Failure> {
        let detail: wire::DeployDetail = self
            .get(&format!("/v1/deploys/{id}"))
            .await?
            .json()
            .await
            .context("the server's answer is not a deploy")
            .map_err(Failure::usage)?;
        Ok((detail.record, detail.logs))
    }

    /// Streams deploy `id`'s events to `reporter` until its result, resuming after drops and
    /// across a restart of the server (see the module doc).
    pub(crate) async fn follow(&self, id: i64, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let mut patience = self.patience(None);
        self.follow_with(id, reporter, &mut patience).await
    }

    async fn follow_with(
        &self,
        id: i64,
        reporter: &dyn Reporter,
        patience: &mut Patience,
    ) -> Result<CommandResult, Failure> {
        let mut last: u64 = 0;
        loop {
            let mut req = self.client.get(self.url(&format!("/v1/deploys/{id}/events"))).bearer_auth(&self.token);
            if last > 0 {
                req = req.header("Last-Event-ID", last.to_string());
            }
            let why = match Self::attempt(req).await {
                Attempt::Answer(mut resp) => {
                    patience.answered();
                    let mut buf: Vec<u8> = Vec::new();
                    loop {
                        let chunk = match tokio::time::timeout(READ_IDLE, resp.chunk()).await {
                            Ok(Ok(Some(chunk))) => chunk,
                            Ok(Ok(None)) => break "the event stream ended".to_owned(),
                            Ok(Err(e)) => break super::one_line(&e),
                            Err(_) => break format!("nothing on the event stream for {}s", READ_IDLE.as_secs()),
                        };
                        patience.answered();
                        buf.extend_from_slice(&chunk);
                        while let Some(end) = frame_end(&buf) {
                            let frame: Vec<u8> = buf.drain(..end.1).collect();
                            let sse = parse_frame(&String::from_utf8_lossy(&frame[..end.0]));
                            match sse.event.as_str() {
                                "log" => {
                                    if let Some(seq) = sse.id {
                                        last = seq;
                                    }
                                    // An event this client does not know (a newer server) is skipped.
                                    if let Ok(line) = serde_json::from_str::<wire::WireEvent>(&sse.data) {
                                        reporter.report(line.ts_ms, &line.event);
                                    }
                                }
                                "result" => {
                                    return serde_json::from_str::<ResultLine>(&sse.data)
                                        .map(|line| line.result)
                                        .context("the server's result is not a result object")
                                        .map_err(|e| unknown(e, "deploy"));
                                }
                                "error" => return Err(unknown(anyhow!("the server: {}", sse.data), "deploy")),
                                _ => {}
                            }
                        }
                    }
                }
                Attempt::Refused(f) => return Err(unknown(f.error, "deploy")),
                Attempt::Retry { why, .. } => why,
            };
            if patience.spent() {
                return Err(unknown(anyhow!("lost the event stream of deploy {id}: {why}"), "deploy"));
            }
            patience.pause(&self.base, &why, self.quiet).await;
        }
    }
}

/// Does `url` (`http://HOST[:PORT]/…`) name this machine?
fn loopback(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if host.starts_with('[') {
        host.trim_start_matches('[').split(']').next().unwrap_or_default()
    } else {
        host.split(':').next().unwrap_or_default()
    };
    host.eq_ignore_ascii_case("localhost") || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A random key for one submission and its retries.
fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness, a time stamp still tells this run's submissions from others'.
    if getrandom::fill(&mut bytes).is_err() {
        let t = tiny_forge::store::now_ms().to_be_bytes();
        bytes[..8].copy_from_slice(&t);
        bytes[8..12].copy_from_slice(&std::process::id().to_be_bytes());
    }
    bytes.iter().fold(String::with_capacity(32), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// One SSE frame's fields.
#[derive(Debug, Default, PartialEq, Eq)]
struct Frame {
    event: String,
    id: Option<u64>,
    data: String,
}

/// Where the first complete frame ends: (end of its text, end including the blank line).
fn frame_end(buf: &[u8]) -> Option<(usize, usize)> {
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    match (lf, crlf) {
        (Some(a), Some(b)) => Some(if a.0 < b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn parse_frame(text: &str) -> Frame {
    let mut f = Frame { event: "message".into(), ..Frame::default() };
    let mut data = Vec::new();
    for line in text.lines() {
        let (field, value) = line.split_once(':').map_or((line, ""), |(k, v)| (k, v.strip_prefix(' ').unwrap_or(v)));
        match field {
            "event" => value.clone_into(&mut f.event),
            "id" => f.id = value.trim().parse().ok(),
            "data" => data.push(value.to_owned()),
            _ => {}
        }
    }
    f.data = data.join("\n");
    f
}

fn body(order: &Order) -> CommandBody {
    let wait = match (order.wait.no_wait, order.wait.wait) {
        (true, _) => Some("no".to_owned()),
        (false, Some(d)) => Some(humantime::format_duration(d).to_string()),
        (false, None) => None,
    };
    let (to, force, no_verify) = match order.kind {
        OrderKind::Deploy { force, no_verify } => (None, force, no_verify),
        OrderKind::Rollback { to } => (to, false, false),
        OrderKind::Remove => (None, false, false),
    };
    CommandBody {
        project: order.project.clone(),
        stage: order.stage.clone(),
        tag: order.tag.clone(),
        to,
        wait,
        force,
        no_verify,
    }
}

fn has_deploy_id(state: JobState) -> bool {
    state != JobState::Waiting
}

fn finished(state: JobState) -> bool {
    matches!(state, JobState::Done | JobState::Failed)
}

impl Remote {
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let path = if matches!(order.kind, OrderKind::Rollback { .. }) { "/v1/rollbacks" } else { "/v1/deploys" };
        let (job, grace) = self.submit(path, &body(order)).await?;
        let mut patience = self.patience(grace);
        let job = self.poll(job, &mut patience, reporter, has_deploy_id).await?;
        match (job.state, job.deploy_id) {
            (JobState::Failed, _) => Err(failure(
                job.exit_code.unwrap_or(exit::USAGE),
                anyhow!(job.error.unwrap_or_else(|| "the deploy could not begin".into())),
            )),
            (_, Some(id)) => self.follow_with(id, reporter, &mut patience).await,
            (_, None) => {
                job.result.map(|l| l.result).ok_or_else(|| unknown(anyhow!("the job ended without a result"), "deploy"))
            }
        }
    }

    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        let (job, grace) = self.submit("/v1/removals", &body(order)).await?;
        let mut patience = self.patience(grace);
        let job = self.poll(job, &mut patience, reporter, finished).await?;
        if job.state == JobState::Failed {
            return Err(failure(
                job.exit_code.unwrap_or(exit::USAGE),
                anyhow!(job.error.unwrap_or_else(|| "the removal could not begin".into())),
            ));
        }
        if let Some(id) = job.deploy_id {
            // The removal's log, for the same progress a local run shows; the job already has
            // the result, so a failure here changes nothing.
            let _ = self.follow_with(id, reporter, &mut patience).await;
        }
        job.result.map(|l| l.result).ok_or_else(|| unknown(anyhow!("the job ended without a result"), "removal"))
    }
}

impl Deploys for Remote {
    async fn run(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure> {
        match order.kind {
            OrderKind::Remove => self.remove(order, reporter).await,
            OrderKind::Deploy { .. } | OrderKind::Rollback { .. } => self.deploy(order, reporter).await,
        }
    }

    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<ListItem>, Failure> {
        if probe {
            return Err(Failure::usage(anyhow!("--probe runs on the server's host; drop it with --remote")));
        }
        let mut q = Vec::new();
        q.extend(project.map(|p| format!("project={p}")));
        q.extend(stage.map(|s| format!("stage={s}")));
        let r = self.get(&format!("/v1/instances?{}", q.join("&"))).await?;
        r.json().await.context("the server's answer is not a list").map_err(Failure::usage)
    }

    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure> {
        let mut q = vec![format!("limit={limit}")];
        q.extend(project.map(|p| format!("project={p}")));
        q.extend(stage.map(|s| format!("stage={s}")));
        let r = self.get(&format!("/v1/deploys?{}", q.join("&"))).await?;
        r.json().await.context("the server's answer is not a history").map_err(Failure::usage)
    }
}
