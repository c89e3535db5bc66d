//! `GET /v1/deploys/{id}/events`: a deploy's log from the state file as Server-Sent Events.
//!
//! Each stored entry is one `event: log` with `id:` its sequence number and, as data, the
//! typed event (`--output json`'s object, with `ts_ms`). `Last-Event-ID` resumes after that
//! entry. When the deploy has ended (and, when this server ran it, its job has its result)
//! one `event: result` follows, whose data is the result object with `exit_code`; then the
//! stream ends. The stream also ends when the server shuts down; the client reconnects.
//!
//! The state file is the one source, so deploys run by the CLI on the host stream too. This
//! server's own deploys wake the stream the moment an entry is stored; others are polled.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use serde_json::Value;

use super::api::{Api, ApiError};
use super::auth::{Action, Caller};
use super::wire::{self, JobState};
use crate::domain::{DeployId, DeployStatus};
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
            let data = wire::event_json(e.entry.ts, &typed(e)).to_string();
            self.buffered.push_back(SseEvent::default().event("log").id(e.seq.to_string()).data(data));
        }
        if !new.is_empty() || record.status == DeployStatus::Running {
            return Ok(());
        }
        // Over. When this server ran it, wait for its job (notifications come after the
        // record's end, and the job has the exact result).
        let result: Value = match self.api.shared.jobs.by_deploy(self.id.0) {
            Some(job) if matches!(job.state, JobState::Waiting | JobState::Running) => return Ok(()),
            Some(job) if job.result.is_some() => job.result.unwrap_or_default(),
            _ => {
                let code = (self.api.shared.codes.record)(&record).unwrap_or(self.api.shared.codes.usage);
                wire::record_result(&record, code)
            }
        };
        self.buffered.push_back(SseEvent::default().event("result").data(result.to_string()));
        self.finished = true;
        Ok(())
    }

    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(e) = self.buffered.pop_front() {
                return Some(e);
            }
            if self.finished || *self.api.shutdown.borrow() {
                return None;
            }
            if let Err(e) = self.read() {
                self.finished = true;
                return Some(SseEvent::default().event("error").data(e));
            }
            if !self.buffered.is_empty() {
                continue;
            }
            let mut shutdown = self.api.shutdown.clone();
            tokio::select! {
                _ = self.events.changed() => {}
                _ = self.jobs.changed() => {}
                _ = shutdown.changed() => {}
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
) -> Result<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>, ApiError> {
    let not_found =
        || ApiError::new(axum::http::StatusCode::NOT_FOUND, format!("deploy {id} not found"), api.shared.codes.usage);
    let record = api.store().deploy(DeployId(id)).ok().flatten().ok_or_else(not_found)?;
    if !caller.allows(Action::Read, &record.project, &record.stage) {
        return Err(not_found());
    }
    let after = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    let tail = Tail {
        events: api.shared.events.subscribe(),
        jobs: api.shared.jobs.subscribe(),
        api,
        id: DeployId(id),
        after,
        buffered: std::collections::VecDeque::new(),
        finished: false,
    };
    let stream = futures_util::stream::unfold(tail, |mut t| async move { t.next().await.map(|e| (Ok(e), t)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
