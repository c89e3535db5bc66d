//! The state file: deploys, their log entries, the instances they created and what undos left
//! behind. It holds history and intent; what runs is what the engine and the proxy say
//! (DESIGN §8). The trait is synchronous (`SQLite` is local and fast); [`SqliteStore`] is the
//! one adapter.

mod deliveries;
mod sqlite;
mod tokens;

use std::time::SystemTime;

pub use deliveries::DELIVERY_RETENTION;
pub use sqlite::{Scope, SqliteStore};
pub use tokens::{NewToken, TokenRecord};

use crate::domain::{DeployId, DeployStatus, InstanceStatus, Leftover, Slot, Trigger};
use crate::report::Level;

/// A deploy about to start.
#[derive(Debug, Clone)]
pub struct NewDeploy {
    /// The slot it deploys.
    pub slot: Slot,
    /// `repository:tag` (or `repository@digest` for a rollback).
    pub image: String,
    /// Why it runs.
    pub trigger: Trigger,
    /// This process.
    pub pid: u32,
    /// This machine's host name.
    pub host: String,
    /// Who asked for it, when not the CLI on this host (`token:NAME`, `webhook:RECEIVER:DELIVERY`).
    pub actor: Option<String>,
}

/// A stored deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeployRecord {
    /// Id.
    pub id: DeployId,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// Tag.
    pub tag: String,
    /// The image reference asked for.
    pub image: String,
    /// The digest pulled, once known.
    pub digest: Option<String>,
    /// Where it stands.
    pub status: DeployStatus,
    /// Process that ran it.
    pub pid: u32,
    /// Machine that ran it.
    pub host: String,
    /// Unix milliseconds.
    pub started_at: i64,
    /// Unix milliseconds.
    pub finished_at: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// What started it.
    pub trigger: Trigger,
    /// The URL it serves at (succeeded deploys).
    pub url: Option<String>,
    /// What its rollback could not remove, one entry per resource (empty when complete).
    pub leftovers: Vec<String>,
    /// Who asked for it (see [`NewDeploy::actor`]).
    #[serde(default)]
    pub actor: Option<String>,
}

/// How a deploy ended, as recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployEnd<'a> {
    /// Final status.
    pub status: DeployStatus,
    /// Why it failed.
    pub error: Option<&'a str>,
    /// Where it serves.
    pub url: Option<&'a str>,
    /// What a rollback left behind.
    pub leftovers: &'a [String],
}

/// A succeeded (or rolled back) deploy of a slot that has a live instance: what image GC keeps
/// from (see [`Store::live_slot_history`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotDeploy {
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// Tag.
    pub tag: String,
    /// The deploy.
    pub id: DeployId,
    /// The image reference it asked for.
    pub image: String,
    /// The digest it ran.
    pub digest: String,
}

/// One structured log entry of a deploy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LogEntry {
    /// Unix milliseconds.
    pub ts: i64,
    /// Severity.
    pub level: Level,
    /// The pipeline step (`pull`, `health`, `rollback`, …).
    pub step: String,
    /// What happened.
    pub message: String,
}

/// A log entry with its place in the deploy's log and, when the row has it, the typed event it
/// was written for (rows older than the server's migration have none).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// 1-based position in the deploy's log (the SSE event id).
    pub seq: u64,
    /// The entry.
    pub entry: LogEntry,
    /// The event, when stored.
    pub event: Option<crate::report::Event>,
}

/// An instance about to be created (recorded before its container exists).
#[derive(Debug, Clone)]
pub struct NewInstance {
    /// The deploy creating it.
    pub deploy_id: DeployId,
    /// Its slot.
    pub slot: Slot,
    /// Deterministic container name.
    pub container_name: String,
    /// Image digest it runs.
    pub digest: String,
    /// The host name its slot is published under.
    pub domain: String,
    /// The port its app listens on.
    pub port: u16,
    /// A hash of its resolved container spec (without the image).
    pub spec_hash: Option<String>,
}

/// A stored instance.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InstanceRecord {
    /// Row id.
    pub id: i64,
    /// The deploy that created it.
    pub deploy_id: DeployId,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// Tag.
    pub tag: String,
    /// Container name.
    pub container_name: String,
    /// Container id, once created.
    pub container_id: Option<String>,
    /// The proxy host serving it, once published.
    pub proxy_host_id: Option<String>,
    /// Image digest.
    pub digest: String,
    /// Public URL, once published.
    pub url: Option<String>,
    /// Lifecycle.
    pub status: InstanceStatus,
    /// The host name of its slot (`None` in rows older than state identity).
    pub domain: Option<String>,
    /// The port its app listens on (`None` in rows older than state identity).
    pub port: Option<u16>,
    /// A hash of its resolved container spec (`None` in older rows).
    pub spec_hash: Option<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds.
    pub updated_at: i64,
}

/// Which rows to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this project.
    pub project: Option<String>,
    /// Only this stage (with `project`).
    pub stage: Option<String>,
    /// Only this tag (with `project` and `stage`).
    pub tag: Option<String>,
}

/// A change to an instance row.
#[derive(Debug, Clone, Default)]
pub struct InstancePatch {
    /// Set the container id.
    pub container_id: Option<String>,
    /// Set (`Some(Some)`) or clear (`Some(None)`) the proxy host.
    pub proxy_host_id: Option<Option<String>>,
    /// Set the URL.
    pub url: Option<String>,
    /// Set the status.
    pub status: Option<InstanceStatus>,
}

/// A successful deploy's end, written in one transaction: the new instance live, the instances
/// it replaced retiring, the deploys a rollback returned from marked rolled back, the deploy
/// succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Success<'a> {
    /// The deploy.
    pub deploy_id: DeployId,
    /// Its instance row.
    pub instance: i64,
    /// Where it serves.
    pub url: &'a str,
    /// The proxy host serving it, for display.
    pub proxy_host_id: Option<&'a str>,
    /// Instance rows it replaces: they become `retiring`.
    pub retire: &'a [i64],
    /// Deploys it rolls back from: they become `rolled_back`.
    pub rolled_back: &'a [DeployId],
}

/// A stored leftover.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LeftoverRecord {
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// The deploy (or removal, or prune) that left it.
    pub deploy_id: Option<DeployId>,
    /// What is left, and why.
    pub item: Leftover,
    /// Unix milliseconds.
    pub created_at: i64,
}

/// A failed state-file operation.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The file could not be created or opened.
    #[error(
        "cannot open state file {path}: {source}; check that its directory exists and is writable, or pass --state"
    )]
    Open {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The disk under the state file is full or failing.
    #[error(
        "state file: {op} failed: {source}; the disk holding the state file is full or failing: free space, or pass --state"
    )]
    Disk {
        /// What was being done.
        op: &'static str,
        /// `SQLite`'s error.
        #[source]
        source: rusqlite::Error,
    },
    /// A query failed.
    #[error("state file: {op} failed: {source}")]
    Query {
        /// What was being done.
        op: &'static str,
        /// `SQLite`'s error.
        #[source]
        source: rusqlite::Error,
    },
    /// The file was written by a newer tiny-forge.
    #[error(
        "state file {path} has schema version {found}, newer than this tiny-forge knows ({known}); upgrade tiny-forge"
    )]
    TooNew {
        /// The file.
        path: String,
        /// Its version.
        found: i64,
        /// Ours.
        known: i64,
    },
    /// A row holds a word this tiny-forge cannot read (a status, a trigger, a leftover): a newer
    /// tiny-forge wrote it, or someone edited the file. Never guessed at: a guess could undo or
    /// keep the wrong thing.
    #[error(
        "state file: {table}.{column} holds {value:?}, which this tiny-forge cannot read; a newer tiny-forge probably wrote it: upgrade tiny-forge (or, if the row was edited by hand, repair it)"
    )]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The column.
        column: &'static str,
        /// What it holds.
        value: String,
    },
}

/// The state file. Writes are immediately durable; every method is one transaction.
pub trait Store {
    /// This state file's random id, made when the file was created (DESIGN §8): resources
    /// stamped with another id belong to another state file and are never touched.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn state_id(&self) -> Result<String, StoreError>;
    /// Records a successful deploy's end in one transaction (see [`Success`]).
    ///
    /// # Errors
    /// On any `SQLite` failure; nothing is written then.
    fn finish_success(&self, s: &Success<'_>) -> Result<(), StoreError>;
    /// Records what an undo of `project`'s `stage` left behind.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn add_leftovers(
        &self,
        project: &str,
        stage: &str,
        deploy: Option<DeployId>,
        items: &[Leftover],
    ) -> Result<(), StoreError>;
    /// Leftovers, oldest first (`filter.tag` is ignored).
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    fn leftovers(&self, filter: &Filter) -> Result<Vec<LeftoverRecord>, StoreError>;
    /// Forgets `project`'s `stage`'s leftovers (`prune` records what it still could not finish).
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn clear_leftovers(&self, project: &str, stage: &str) -> Result<(), StoreError>;
    /// Records a deploy as running.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn begin_deploy(&self, new: &NewDeploy) -> Result<DeployId, StoreError>;
    /// Records the digest a deploy pulled.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn set_digest(&self, id: DeployId, digest: &str) -> Result<(), StoreError>;
    /// Records a deploy's end.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn finish_deploy(&self, id: DeployId, end: &DeployEnd<'_>) -> Result<(), StoreError>;
    /// Deletes finished deploys (and their logs) started before `before_ms` that no instance
    /// row refers to; returns how many.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn trim_history(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Appends a log entry.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn append_log(&self, id: DeployId, entry: &LogEntry) -> Result<(), StoreError>;
    /// One deploy.
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    fn deploy(&self, id: DeployId) -> Result<Option<DeployRecord>, StoreError>;
    /// Deploys, newest first.
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    fn deploys(&self, filter: &Filter, limit: usize) -> Result<Vec<DeployRecord>, StoreError>;
    /// Every digest a deploy of this state file recorded (what it pulled): the images image GC
    /// may delete are among these, never another state file's.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn deployed_digests(&self) -> Result<std::collections::BTreeSet<String>, StoreError>;
    /// For every slot with a live instance, its succeeded and rolled-back deploys that recorded
    /// a digest, newest first, at most `per_slot` of each slot. Image GC asks once per run, so
    /// its cost does not grow by a query per live preview (issue 26).
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn live_slot_history(&self, per_slot: usize) -> Result<Vec<SlotDeploy>, StoreError> {
        let mut out = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        for row in self.instances(&Filter::default())? {
            if row.status != crate::domain::InstanceStatus::Live
                || !seen.insert((row.project.clone(), row.stage.clone(), row.tag.clone()))
            {
                continue;
            }
            let slot = Filter { project: Some(row.project), stage: Some(row.stage), tag: Some(row.tag) };
            let done = self.deploys(&slot, 10_000)?.into_iter().filter_map(|d| {
                let kept = matches!(
                    d.status,
                    crate::domain::DeployStatus::Succeeded | crate::domain::DeployStatus::RolledBack
                );
                let digest = d.digest.filter(|_| kept)?;
                Some(SlotDeploy { project: d.project, stage: d.stage, tag: d.tag, id: d.id, image: d.image, digest })
            });
            out.extend(done.take(per_slot));
        }
        Ok(out)
    }
    /// Deploys still marked running, oldest first (uses a partial index: cheap on any history).
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    fn running(&self, filter: &Filter) -> Result<Vec<DeployRecord>, StoreError>;
    /// How many deploys [`Store::trim_history`] would delete.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn count_trimmable(&self, before_ms: i64) -> Result<usize, StoreError>;
    /// Appends a log entry with the typed event it was made from. The default stores the entry
    /// alone; [`SqliteStore`] keeps the event too (for the server's event streams).
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn append_event(&self, id: DeployId, entry: &LogEntry, event: &crate::report::Event) -> Result<(), StoreError> {
        let _ = event;
        self.append_log(id, entry)
    }
    /// A deploy's log entries after the one numbered `after` (0 for all), in order, with their
    /// numbers and events. The default reads [`Store::logs`] and has no events.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn events(&self, id: DeployId, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let entries = self.logs(id, usize::try_from(after).unwrap_or(usize::MAX))?;
        Ok(entries.into_iter().zip(after + 1..).map(|(entry, seq)| StoredEvent { seq, entry, event: None }).collect())
    }
    /// A deploy's log entries after the `after`-th (0 for all), in order.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn logs(&self, id: DeployId, after: usize) -> Result<Vec<LogEntry>, StoreError>;
    /// Records an instance as pending, before its container is created.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn insert_instance(&self, new: &NewInstance) -> Result<i64, StoreError>;
    /// Changes an instance row.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn update_instance(&self, id: i64, patch: &InstancePatch) -> Result<(), StoreError>;
    /// Deletes an instance row.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    fn delete_instance(&self, id: i64) -> Result<(), StoreError>;
    /// Instances, oldest first.
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    fn instances(&self, filter: &Filter) -> Result<Vec<InstanceRecord>, StoreError>;
}

/// Now, in Unix milliseconds.
#[must_use]
pub fn now_ms() -> i64 {
    let d = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
