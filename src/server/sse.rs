//! `GET /v1/deploys/{id}/events`: a deploy's log from the state file as Server-Sent Events.
//!
//! Each stored entry is one `event: log` with `id:` its sequence number and, as data, the
//! typed event (`--output json`'s object, with `ts_ms`). `Last-Event-ID` resumes after that
//! entry. When the deploy has ended (and, when this server ran it, its job has its result)
//! one `event: result` follows, whose data is the result object with `exit_code`; then the
//! stream ends. A SIGTERM does not end it: while the server drains, the streams of its running
//! deploys go on until each deploy ends (within `grace`, or by its rollback), so a client
//! learns the outcome without reconnecting. Only once every deploy has ended do the remaining
//! streams end (after a last read); a client then resumes on the restarted server.
//!
//! Responses carry `X-Accel-Buffering: no`, so that nginx (NPM) in front passes each event on
//! at once instead of buffering the stream.
//!
//! Readable by a token with `read` on the deploy's stage, and by the token whose job ran it.
//!
//! The state file is the one source, so deploys run by the CLI on the host stream too. This
//! server's own deploys wake the stream the moment an entry is stored; others are polled.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};

use super::auth::{Action, Caller};
use super::error::ApiError;
use super::phase::Phase;
use super::state::Api;
use super::wire::{self, JobState};
use crate::domain::{DeployId, DeployStatus};
use crate::ops::{CommandResult, ResultLine};
use crate::report::{Event, Step};
use crate::store::{Store as _, StoredEvent};

/// How often a deploy this server does not run is looked at.
const POLL: Duration = Duration::from_millis(200);

/// The typed event of a stored entry (rows older than the server's migration have only their
/// text: they come back as `log` events).
fn typed(e: &StoredEvent) -> Event {
    e.event.clone().unwrap_or_else(|| Event::Log {
        step: Step::parse(&e.entry.step).unwrap_or(Step::Record),
        level: e.entry.level,
        message: e.entry.message.clone(),
    })
}

struct Tail {
    api: Api,
    id: DeployId,
    after: u64,
    buffered: std::collections::VecDeque<SseEvent>,
    finished: bool,
    events: tokio::sync::watch::Receiver<u64>,
    jobs: tokio::sync::watch::Receiver<u64>,
}

impl Tail {
    /// Reads what is new; queues the result when the deploy is over.
    fn read(&mut self) -> Result<(), String> {
        let store = self.api.store();
        let record = store.deploy(self.id).map_err(|e| e.to_string())?.ok_or("deploy vanished")?;
        let new = store.events(self.id, self.after).map_err(|e| e.to_string())?;
        drop(store);
        for e in &new {
            self.after = e.seq;
            let line = wire::WireEvent { event: typed(e), ts_ms: e.entry.ts };
            let data = serde_json::to_string(&line).map_err(|e| e.to_string())?;
            self.buffered.push_back(SseEvent::default().event("log").id(e.seq.to_string()).data(data));
        }
        if !new.is_empty() || record.status == DeployStatus::Running {
            return Ok(());
        }
        // Over. When this server ran it, wait for its job (notifications come after the
        // record's end, and the job has the exact result).
        let result: Option<ResultLine> = match self.api.shared.jobs.by_deploy(self.id.0) {
            Some(job) if matches!(job.state, JobState::Waiting | JobState::Running) => return Ok(()),
            Some(job) if job.result.is_some() => job.result,
            _ => CommandResult::of_record(&record).map(ResultLine::from),
        };
        let data = result.map_or_else(|| "null".to_owned(), |r| serde_json::to_string(&r).unwrap_or_default());
        self.buffered.push_back(SseEvent::default().event("result").data(data));
        self.finished = true;
        Ok(())
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                return Some(e);
            }
            if self.finished {
                return None;
            }
            // Read once more when closing: what the last deploys wrote, their results.
            let closing = *self.api.phase.borrow() == Phase::Closing;
            if let Err(e) = self.read() {
                self.finished = true;
                return Some(SseEvent::default().event("error").data(e));
            }
            if !self.buffered.is_empty() {
                continue;
            }
            if closing {
                return None;
            }
            let mut phase = self.api.phase.clone();
            tokio::select! {
                _ = self.events.changed() => {}
                _ = self.jobs.changed() => {}
                _ = phase.wait_for(|p| *p == Phase::Closing) => {}
                () = tokio::time::sleep(POLL) => {}
            }
        }
    }
}

pub(super) async fn events(
    State(api): State<Api>,
    caller: Caller,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    stream(api, &caller, id, after)
}

/// Deploy `id`'s log after entry `after`, as the module doc says, if `caller` may read it (the
/// API's stream and the web page's).
pub(super) fn stream(api: Api, caller: &Caller, id: i64, after: u64) -> Result<impl IntoResponse + use<>, ApiError> {
    let not_found = || ApiError::not_found(format!("deploy {id} not found"));
    let record = api.store().deploy(DeployId(id)).map_err(ApiError::internal)?.ok_or_else(not_found)?;
    let own = api.shared.jobs.owner_of_deploy(id) == Some(caller.id);
    if !own && !caller.allows(Action::Read, &record.project, &record.stage) {
        return Err(not_found());
    }
    let tail = Tail {
        events: api.shared.events.subscribe(),
        jobs: api.shared.jobs.subscribe(),
        api,
        id: DeployId(id),
        after,
        buffered: std::collections::VecDeque::new(),
        finished: false,
    };
    let stream =
        futures_util::stream::unfold(tail, |mut t| async move { t.next().await.map(|e| (Ok::<_, Infallible>(e), t)) });
    Ok(([("x-accel-buffering", "no")], Sse::new(stream).keep_alive(KeepAlive::default())))
}
