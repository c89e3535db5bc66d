//! `--remote URL`: the deployer interface over a `tiny-forge serve` (protocol in
//! `tiny_forge::server::wire`). Events arrive typed and go to the same renderer as a local
//! run's; the result object and its exit code are the server's, which are a local run's.
//!
//! A dropped event stream is resumed with `Last-Event-ID` (up to [`RECONNECTS`] times in a row,
//! [`BACKOFF`] apart), so a proxy or network hiccup costs nothing but the wait. Interrupting
//! the CLI stops following; the deploy goes on on the server (`history` shows how it ended).

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use reqwest::StatusCode;
use serde_json::Value;
use tiny_forge::report::Reporter;
use tiny_forge::server::wire::{self, CommandBody, ErrorBody, JobState, JobView};
use tiny_forge::store::DeployRecord;

use super::backend::{Deploys, Order};
use super::{Ctx, Failure, exit};

/// Reconnections of one event stream without progress before giving up.
const RECONNECTS: u32 = 30;
/// Wait between reconnections.
const BACKOFF: Duration = Duration::from_millis(500);

/// A server, with the token from `$TINY_FORGE_TOKEN`.
pub(crate) struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

fn failure(code: u8, e: impl Into<anyhow::Error>) -> Failure {
    Failure { code, error: e.into() }
}

impl Remote {
    pub(crate) fn new(ctx: &Ctx, url: &str) -> Result<Self, Failure> {
        let _ = ctx;
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
        let trust = tiny_forge::http::Trust::load(None).map_err(Failure::usage)?;
        let client =
            tiny_forge::http::outbound(&trust, &tiny_forge::http::ProxyEnv::from_env()).map_err(Failure::usage)?;
        Ok(Self { base: url.trim_end_matches('/').to_owned(), token: token.trim().to_owned(), client })
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Turns an error answer into the exit code the server says a local run would have had.
    async fn check(&self, resp: reqwest::Response) -> Result<reqwest::Response, Failure> {
        if resp.status().is_success() {
            return Ok(resp);
        }
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        match serde_json::from_str::<ErrorBody>(&body) {
            Ok(e) => Err(failure(e.exit_code, anyhow!("{} (server answered {status})", e.error))),
            Err(_) => Err(Failure::usage(anyhow!("the server answered {status}: {}", body.trim()))),
        }
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response, Failure> {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))
            .map_err(Failure::usage)?;
        self.check(resp).await
    }

    async fn submit(&self, path: &str, body: &CommandBody) -> Result<JobView, Failure> {
        let resp = self
            .client
            .post(self.url(path))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.base))
            .map_err(Failure::usage)?;
        let resp = self.check(resp).await?;
        resp.json().await.context("the server's answer is not a job").map_err(Failure::usage)
    }

    /// Follows a job until it has a deploy id (or ends), reporting its early events once. A
    /// dropped connection is retried ([`RECONNECTS`] times in a row); an answer that refuses
    /// (a revoked token, a job the server forgot) ends it.
    async fn settle(&self, mut job: JobView, reporter: &dyn Reporter) -> Result<JobView, Failure> {
        let mut shown = 0;
        let mut failures = 0;
        loop {
            for e in job.early.iter().skip(shown) {
                reporter.report(e.ts, &e.event);
            }
            shown = job.early.len();
            if job.state != JobState::Waiting {
                return Ok(job);
            }
            let url = self.url(&format!("/v1/jobs/{}?wait=8", job.id));
            match self.client.get(url).bearer_auth(&self.token).send().await {
                Ok(resp) => {
                    failures = 0;
                    let resp = self.check(resp).await?;
                    job = resp.json().await.context("the server's answer is not a job").map_err(Failure::usage)?;
                }
                Err(e) => {
                    failures += 1;
                    if failures > RECONNECTS {
                        return Err(Failure::usage(anyhow!(e).context(format!("lost {}", self.base))));
                    }
                    tokio::time::sleep(BACKOFF).await;
                }
            }
        }
    }

    /// Deploy `id`'s record and log (`GET /v1/deploys/{id}`).
    pub(crate) async fn record(
        &self,
        id: tiny_forge::domain::DeployId,
    ) -> Result<(DeployRecord, Vec<tiny_forge::store::LogEntry>), Failure> {
        let v: Value = self
            .get(&format!("/v1/deploys/{id}"))
            .await?
            .json()
            .await
            .context("the server's answer is not a deploy")
            .map_err(Failure::usage)?;
        let logs = serde_json::from_value(v["logs"].clone()).unwrap_or_default();
        let d = serde_json::from_value(v).context("the server's answer is not a deploy").map_err(Failure::usage)?;
        Ok((d, logs))
    }

    /// Streams deploy `id`'s events to `reporter` until its result, resuming after drops.
    pub(crate) async fn follow(&self, id: i64, reporter: &dyn Reporter) -> Result<Value, Failure> {
        let mut last: u64 = 0;
        let mut failures = 0;
        loop {
            let mut req = self.client.get(self.url(&format!("/v1/deploys/{id}/events"))).bearer_auth(&self.token);
            if last > 0 {
                req = req.header("Last-Event-ID", last.to_string());
            }
            let resp = match req.send().await {
                Ok(r) if r.status() == StatusCode::OK => Some(r),
                Ok(r) if r.status().is_client_error() => {
                    return Err(self
                        .check(r)
                        .await
                        .err()
                        .unwrap_or_else(|| Failure::usage(anyhow!("event stream refused"))));
                }
                Ok(_) | Err(_) => None,
            };
            if let Some(mut resp) = resp {
                let mut buf: Vec<u8> = Vec::new();
                loop {
                    let Ok(Some(chunk)) = resp.chunk().await else { break };
                    buf.extend_from_slice(&chunk);
                    while let Some(end) = frame_end(&buf) {
                        let frame: Vec<u8> = buf.drain(..end.1).collect();
                        let sse = parse_frame(&String::from_utf8_lossy(&frame[..end.0]));
                        match sse.event.as_str() {
                            "log" => {
                                if let Some(seq) = sse.id {
                                    last = seq;
                                }
                                failures = 0;
                                let v: Value = serde_json::from_str(&sse.data).unwrap_or(Value::Null);
                                if let Some((ts, event)) = wire::parse_event(&v) {
                                    reporter.report(ts, &event);
                                }
                            }
                            "result" => {
                                return serde_json::from_str(&sse.data)
                                    .context("the server's result is not JSON")
                                    .map_err(Failure::usage);
                            }
                            "error" => return Err(Failure::usage(anyhow!("the server: {}", sse.data))),
                            _ => {}
                        }
                    }
                }
            }
            failures += 1;
            if failures > RECONNECTS {
                return Err(failure(
                    exit::USAGE,
                    anyhow!("lost the event stream of deploy {id}; `tiny-forge --remote … history` shows how it ends"),
                ));
            }
            tokio::time::sleep(BACKOFF).await;
        }
    }
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
    CommandBody {
        project: order.project.clone(),
        stage: order.stage.clone(),
        tag: order.tag.clone(),
        to: order.to,
        wait,
        force: order.force,
    }
}

impl Deploys for Remote {
    async fn deploy(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure> {
        let path = if order.rollback { "/v1/rollbacks" } else { "/v1/deploys" };
        let job = self.submit(path, &body(order)).await?;
        let job = self.settle(job, reporter).await?;
        match (job.state, job.deploy_id) {
            (JobState::Failed, _) => Err(failure(
                job.exit_code.unwrap_or(exit::USAGE),
                anyhow!(job.error.unwrap_or_else(|| "the deploy could not begin".into())),
            )),
            (_, Some(id)) => self.follow(id, reporter).await,
            (_, None) => Ok(job.result.unwrap_or_default()),
        }
    }

    async fn remove(&self, order: &Order, reporter: &dyn Reporter) -> Result<Value, Failure> {
        let mut job = self.submit("/v1/removals", &body(order)).await?;
        while job.state == JobState::Waiting || job.state == JobState::Running {
            job = self.settle(job, reporter).await?;
            if job.state == JobState::Running {
                let r = self.get(&format!("/v1/jobs/{}?wait=8", job.id)).await?;
                job = r.json().await.context("the server's answer is not a job").map_err(Failure::usage)?;
            }
        }
        if job.state == JobState::Failed {
            return Err(failure(
                job.exit_code.unwrap_or(exit::USAGE),
                anyhow!(job.error.unwrap_or_else(|| "the removal could not begin".into())),
            ));
        }
        if let Some(id) = job.deploy_id {
            // The removal's log, for the same progress a local run shows.
            let _ = self.follow(id, reporter).await;
        }
        Ok(job.result.unwrap_or_default())
    }

    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<Value>, Failure> {
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
