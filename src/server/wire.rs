//! The API's JSON shapes, shared by the server and the remote CLI (`--remote`), so that both
//! ends agree by construction. The result object of a deploy is the same one `--output json`
//! prints last on a local run.
//!
//! # Protocol
//! 1. `POST /v1/deploys` (or `/v1/rollbacks`, `/v1/removals`) with a [`CommandBody`]: `202`
//!    and a [`JobView`] in state `waiting`. Config and scope problems answer `4xx` with an
//!    [`ErrorBody`] at once; nothing was touched.
//! 2. `GET /v1/jobs/{job}?wait=SECS` answers when the job leaves `waiting` (or after `wait`):
//!    `running` with its `deploy_id`, `done`, or `failed` (it never began: lock busy, …).
//!    `early` holds the events sent before the deploy had an id (the `lock` step).
//! 3. `GET /v1/deploys/{id}/events` (SSE): `event: log` entries, `id:` = the entry's sequence
//!    number, data = the [`crate::report::Event`] as JSON (`--output json`'s shape, with `ts`);
//!    then one `event: result` whose data is the result object with `exit_code`. Reconnect
//!    with `Last-Event-ID` to resume after the last entry received. A `: keep-alive` comment
//!    comes every 15 s, so a client that hears nothing for much longer may reconnect.
//!
//! # Restarts
//! On SIGTERM the server answers new submissions 503 and keeps answering job reads and event
//! streams until its running deploys end (within `grace`; the rest are rolled back and end as
//! `interrupted`). A client that loses the server (refused connections, 5xx, 429) retries for
//! at least [`GRACE_HEADER`] plus a restart and resumes with `Last-Event-ID`; the state file
//! has every deploy's record and log, so a stream resumed on the restarted server ends with the
//! same result. A submission may carry an `Idempotency-Key` header: a retry with the same key
//! gets the job of the first attempt, if that reached this server.

use serde::{Deserialize, Serialize};

/// Response header of an accepted submission: the server's `[server] grace` in seconds. A
/// client that loses the server keeps trying to learn the outcome for at least that long plus
/// a restart: a SIGTERM lets running deploys go on that long, then rolls them back.
pub const GRACE_HEADER: &str = "x-tiny-forge-grace";

use crate::report::Event;

/// The body of `POST /v1/deploys`, `/v1/rollbacks` and `/v1/removals`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// Tag (deploy, rollback: the stage's default tag when absent; remove: required).
    #[serde(default)]
    pub tag: Option<String>,
    /// Rollback only: the deploy to return to.
    #[serde(default)]
    pub to: Option<i64>,
    /// The lock: `"no"` (fail at once, exit 4), a duration (`"5m"`), or absent (wait).
    #[serde(default)]
    pub wait: Option<String>,
    /// Deploy only: redeploy even when the slot already runs this digest with the same settings.
    #[serde(default)]
    pub force: bool,
    /// Deploy only: skip the stage's verify step after the cut-over.
    #[serde(default)]
    pub no_verify: bool,
}

/// What a job is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobState {
    /// Accepted; no deploy id yet (waiting for the stage's lock).
    Waiting,
    /// It has a deploy id; follow its events.
    Running,
    /// Finished; `result` and `exit_code` are set.
    Done,
    /// Never began (lock busy, state file unusable, nothing to roll back to); `error` and
    /// `exit_code` are set.
    Failed,
}

/// One event with its Unix-millisecond time stamp.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped {
    /// Unix milliseconds.
    pub ts: i64,
    /// The event.
    pub event: Event,
}

/// `GET /v1/jobs/{job}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobView {
    /// The job id.
    pub id: u64,
    /// `deploy`, `rollback` or `remove`.
    pub kind: String,
    /// `project/stage:tag`.
    pub slot: String,
    /// Where it stands.
    pub state: JobState,
    /// The history row, once it has one.
    pub deploy_id: Option<i64>,
    /// Events sent before the deploy had an id.
    pub early: Vec<Stamped>,
    /// Why it failed to begin.
    pub error: Option<String>,
    /// The exit code a local run would have had (`done`, `failed`).
    pub exit_code: Option<u8>,
    /// The result (`done`): the same object `--output json` prints last.
    pub result: Option<crate::ops::ResultLine>,
}

/// Every error answer: what went wrong, and the exit code a local run would have had.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// The message, on one line.
    pub error: String,
    /// 2 (usage, config, scope), 4 (lock busy), …
    pub exit_code: u8,
}

/// An event on the wire (the SSE `log` frames): `type`, the event's fields, and `ts_ms` (Unix
/// milliseconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEvent {
    /// The event.
    #[serde(flatten)]
    pub event: Event,
    /// Unix milliseconds.
    pub ts_ms: i64,
}

/// `GET /v1/deploys/{id}`: the record as stored, the exit code it meant, and its log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployDetail {
    /// The record.
    #[serde(flatten)]
    pub record: crate::store::DeployRecord,
    /// The exit code a local run would have had, once it ended.
    pub exit_code: Option<u8>,
    /// Its log.
    pub logs: Vec<crate::store::LogEntry>,
}
