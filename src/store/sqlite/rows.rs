//! Rows to records: the columns each query selects and how a row of them becomes a
//! [`DeployRecord`], an [`InstanceRecord`], a [`LeftoverRecord`] or a log entry. Columns are read
//! by name, so a column list can change without shifting the others.
//!
//! A stored word this version cannot read (a status, a trigger, a leftover's JSON) is never
//! guessed at: it fails the read as [`Unreadable`], which [`q`](super::q) turns into
//! [`StoreError::Corrupt`](crate::store::StoreError::Corrupt).

use rusqlite::Row;
use rusqlite::types::Type;

use crate::domain::{DeployId, DeployStatus, InstanceStatus, Trigger};
use crate::report::Level;
use crate::store::{DeployRecord, InstanceRecord, LeftoverRecord, LogEntry, StoredEvent};

/// A stored value this version cannot read. Carried through `rusqlite` inside a
/// [`rusqlite::Error::FromSqlConversionFailure`], then turned into
/// [`StoreError::Corrupt`](crate::store::StoreError::Corrupt).
#[derive(Debug, thiserror::Error)]
#[error("{table}.{column} holds {value:?}, which this tiny-forge cannot read")]
pub(super) struct Unreadable {
    /// The table.
    pub(super) table: &'static str,
    /// The column.
    pub(super) column: &'static str,
    /// What it holds.
    pub(super) value: String,
}

/// `column` of `table`, read as text and parsed by `parse`; an [`Unreadable`] when `parse`
/// does not know it.
pub(in crate::store) fn parsed<T>(
    r: &Row<'_>,
    table: &'static str,
    column: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> rusqlite::Result<T> {
    let value: String = r.get(column)?;
    if let Some(parsed) = parse(&value) {
        return Ok(parsed);
    }
    let index = r.as_ref().column_index(column)?;
    Err(rusqlite::Error::FromSqlConversionFailure(index, Type::Text, Box::new(Unreadable { table, column, value })))
}

/// The columns [`deploy_row`] reads.
pub(super) const DEPLOY_COLS: &str = "id, project, stage, tag, image, digest, status, pid, host, started_at, finished_at, error, trigger, url, leftovers, actor";

/// A `deploys` row selected with [`DEPLOY_COLS`].
pub(super) fn deploy_row(r: &Row<'_>) -> rusqlite::Result<DeployRecord> {
    Ok(DeployRecord {
        id: DeployId(r.get("id")?),
        project: r.get("project")?,
        stage: r.get("stage")?,
        tag: r.get("tag")?,
        image: r.get("image")?,
        digest: r.get("digest")?,
        status: parsed(r, "deploys", "status", DeployStatus::parse)?,
        pid: r.get("pid")?,
        host: r.get("host")?,
        started_at: r.get("started_at")?,
        finished_at: r.get("finished_at")?,
        error: r.get("error")?,
        trigger: parsed(r, "deploys", "trigger", Trigger::parse)?,
        url: r.get("url")?,
        leftovers: r
            .get::<_, Option<String>>("leftovers")?
            .map(|l| l.lines().map(str::to_owned).collect())
            .unwrap_or_default(),
        actor: r.get("actor")?,
    })
}

/// The columns [`instance_row`] reads.
pub(super) const INSTANCE_COLS: &str = "id, deploy_id, project, stage, tag, container_name, container_id, proxy_host_id, digest, url, status, created_at, updated_at, domain, port, spec_hash";

/// An `instances` row selected with [`INSTANCE_COLS`].
pub(super) fn instance_row(r: &Row<'_>) -> rusqlite::Result<InstanceRecord> {
    Ok(InstanceRecord {
        id: r.get("id")?,
        deploy_id: DeployId(r.get("deploy_id")?),
        project: r.get("project")?,
        stage: r.get("stage")?,
        tag: r.get("tag")?,
        container_name: r.get("container_name")?,
        container_id: r.get("container_id")?,
        proxy_host_id: r.get("proxy_host_id")?,
        digest: r.get("digest")?,
        url: r.get("url")?,
        status: parsed(r, "instances", "status", InstanceStatus::parse)?,
        domain: r.get("domain")?,
        port: r.get::<_, Option<i64>>("port")?.and_then(|p| u16::try_from(p).ok()),
        spec_hash: r.get("spec_hash")?,
        created_at: r.get("created_at")?,
        updated_at: r.get("updated_at")?,
    })
}

/// The columns [`leftover_row`] reads.
pub(super) const LEFTOVER_COLS: &str = "project, stage, deploy_id, item, created_at";

/// A `leftovers` row selected with [`LEFTOVER_COLS`]; its `item` is the JSON of a
/// [`Leftover`](crate::domain::Leftover).
pub(super) fn leftover_row(r: &Row<'_>) -> rusqlite::Result<LeftoverRecord> {
    Ok(LeftoverRecord {
        project: r.get("project")?,
        stage: r.get("stage")?,
        deploy_id: r.get::<_, Option<i64>>("deploy_id")?.map(DeployId),
        item: parsed(r, "leftovers", "item", |item| serde_json::from_str(item).ok())?,
        created_at: r.get("created_at")?,
    })
}

/// The columns [`log_row`] reads.
pub(super) const LOG_COLS: &str = "ts, level, step, message";

/// A `deploy_logs` row selected with [`LOG_COLS`] (an unknown level reads as `info`, see
/// [`Level::parse`]).
pub(super) fn log_row(r: &Row<'_>) -> rusqlite::Result<LogEntry> {
    let level: String = r.get("level")?;
    Ok(LogEntry { ts: r.get("ts")?, level: Level::parse(&level), step: r.get("step")?, message: r.get("message")? })
}

/// The columns [`event_row`] reads.
pub(super) const EVENT_COLS: &str = "seq, ts, level, step, message, event";

/// A `deploy_logs` row selected with [`EVENT_COLS`]: the entry, its number, and its event when
/// the row has one this version reads.
pub(super) fn event_row(r: &Row<'_>) -> rusqlite::Result<StoredEvent> {
    let event: Option<String> = r.get("event")?;
    Ok(StoredEvent { seq: r.get("seq")?, entry: log_row(r)?, event: event.and_then(|e| serde_json::from_str(&e).ok()) })
}
