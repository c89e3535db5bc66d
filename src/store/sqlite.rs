//! [`Store`] on `SQLite`: WAL, a busy timeout, file mode 0600, migrations by `user_version`.

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::{
    DeployEnd, DeployRecord, Filter, InstancePatch, InstanceRecord, LeftoverRecord, LogEntry, NewDeploy, NewInstance,
    Store, StoreError, Success, now_ms,
};
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Leftover, Trigger};
use crate::report::Level;

/// How long a call waits for another process's lock on the state file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Migrations, applied in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/001_init.sql"),
    include_str!("migrations/002_reconcile.sql"),
    include_str!("migrations/003_spec_hash.sql"),
    include_str!("migrations/004_server.sql"),
    include_str!("migrations/005_swarm_slots.sql"),
    include_str!("migrations/006_webhook_deliveries.sql"),
];

/// The `SQLite` state file.
#[derive(Debug)]
pub struct SqliteStore {
    pub(super) conn: Connection,
}

pub(super) fn q(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| match source.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => StoreError::Disk { op, source },
        _ => StoreError::Query { op, source },
    }
}

impl SqliteStore {
    /// Opens (creating with mode 0600, and its directory with 0700) and migrates the state file.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be created or opened, [`StoreError::TooNew`]
    /// when a newer tiny-forge wrote it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let open_err =
            |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open { path: shown.clone(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty() && !d.exists()) {
            std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(|e| open_err(e.into()))?;
        }
        // Only when missing: closing a plain descriptor of the file drops every POSIX lock this
        // process holds on it, including those of another open connection (`serve` keeps two),
        // and another process may then checkpoint and delete the WAL under that connection.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| open_err(e.into()))?;
        }
        let conn = Connection::open(path).map_err(|e| open_err(e.into()))?;
        Self::init(conn, &shown)
    }

    /// An in-memory store, for tests.
    ///
    /// # Errors
    /// Only if `SQLite` cannot allocate.
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory().map_err(q("open in-memory database"))?;
        Self::init(conn, ":memory:")
    }

    /// `journal_mode = WAL`, retried while another process holds the new file: `SQLite` answers
    /// that switch with `SQLITE_BUSY` at once, without its busy handler, when waiting could
    /// deadlock (two processes opening a new state file together).
    fn enable_wal(conn: &Connection) -> Result<(), StoreError> {
        let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
        loop {
            match conn.pragma_update(None, "journal_mode", "WAL") {
                Err(rusqlite::Error::SqliteFailure(e, _))
                    if e.code == rusqlite::ErrorCode::DatabaseBusy && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                other => return other.map_err(q("enable WAL")),
            }
        }
    }

    fn init(conn: Connection, shown: &str) -> Result<Self, StoreError> {
        conn.busy_timeout(BUSY_TIMEOUT).map_err(q("set busy timeout"))?;
        // Before the file's first page is written (WAL writes it): lets `prune` give trimmed
        // history's pages back to the disk. A no-op on an existing file.
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL").map_err(q("set auto_vacuum"))?;
        Self::enable_wal(&conn)?;
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(q("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("enable foreign keys"))?;
        // Read the version and migrate inside one write transaction, so that two processes
        // opening a new state file at once cannot both apply the same migration.
        conn.execute_batch("BEGIN IMMEDIATE").map_err(q("lock state file for migration"))?;
        let migrated = Self::migrate(&conn, shown);
        let end = if migrated.is_ok() { "COMMIT" } else { "ROLLBACK" };
        conn.execute_batch(end).map_err(q("finish migration"))?;
        migrated?;
        Ok(Self { conn })
    }

    fn migrate(conn: &Connection, shown: &str) -> Result<(), StoreError> {
        let version: i64 =
            conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(q("read schema version"))?;

        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StoreError::TooNew { path: shown.to_owned(), found: version, known });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(usize::try_from(version).unwrap_or(0)) {
            conn.execute_batch(sql).map_err(q("migrate state file"))?;
            conn.pragma_update(None, "user_version", i + 1).map_err(q("record schema version"))?;
        }
        Ok(())
    }

    /// Runs `SQLite`'s integrity check; `ok` when sound.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn integrity_check(&self) -> Result<String, StoreError> {
        self.conn.query_row("PRAGMA integrity_check", [], |r| r.get(0)).map_err(q("integrity check"))
    }
}

const DEPLOY_COLS: &str = "id, project, stage, tag, image, digest, status, pid, host, started_at, finished_at, error, trigger, url, leftovers, actor";

fn deploy_row(r: &Row<'_>) -> rusqlite::Result<DeployRecord> {
    let status: String = r.get(6)?;
    let trigger: String = r.get(12)?;
    Ok(DeployRecord {
        id: DeployId(r.get(0)?),
        project: r.get(1)?,
        stage: r.get(2)?,
        tag: r.get(3)?,
        image: r.get(4)?,
        digest: r.get(5)?,
        status: DeployStatus::parse(&status).unwrap_or(DeployStatus::Failed),
        pid: r.get(7)?,
        host: r.get(8)?,
        started_at: r.get(9)?,
        finished_at: r.get(10)?,
        error: r.get(11)?,
        trigger: Trigger::parse(&trigger).unwrap_or(Trigger::Deploy),
        url: r.get(13)?,
        leftovers: r.get::<_, Option<String>>(14)?.map(|l| l.lines().map(str::to_owned).collect()).unwrap_or_default(),
        actor: r.get(15)?,
    })
}

const INSTANCE_COLS: &str = "id, deploy_id, project, stage, tag, container_name, container_id, proxy_host_id, digest, url, status, created_at, updated_at, domain, port, spec_hash";

fn instance_row(r: &Row<'_>) -> rusqlite::Result<InstanceRecord> {
    let status: String = r.get(10)?;
    Ok(InstanceRecord {
        id: r.get(0)?,
        deploy_id: DeployId(r.get(1)?),
        project: r.get(2)?,
        stage: r.get(3)?,
        tag: r.get(4)?,
        container_name: r.get(5)?,
        container_id: r.get(6)?,
        proxy_host_id: r.get(7)?,
        digest: r.get(8)?,
        url: r.get(9)?,
        status: InstanceStatus::parse(&status).unwrap_or(InstanceStatus::Retiring),
        domain: r.get(13)?,
        port: r.get::<_, Option<i64>>(14)?.and_then(|p| u16::try_from(p).ok()),
        spec_hash: r.get(15)?,
        created_at: r.get(11)?,
        updated_at: r.get(12)?,
    })
}

/// `WHERE` clause and parameters for a filter (project, then stage, then tag).
fn filter_sql(f: &Filter) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut params = Vec::new();
    for (col, v) in [("project", &f.project), ("stage", &f.stage), ("tag", &f.tag)] {
        if let Some(v) = v {
            params.push(v.clone());
            clauses.push(format!("{col} = ?{}", params.len()));
        }
    }
    let sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
    (sql, params)
}

impl Store for SqliteStore {
    fn state_id(&self) -> Result<String, StoreError> {
        self.conn
            .query_row("SELECT value FROM meta WHERE key = 'state_id'", [], |r| r.get(0))
            .map_err(q("read state id"))
    }

    fn finish_success(&self, s: &Success<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        let tx = self.conn.unchecked_transaction().map_err(q("begin finish"))?;
        tx.execute(
            "UPDATE instances SET status = 'live', url = ?1, proxy_host_id = COALESCE(?2, proxy_host_id), updated_at = ?3
             WHERE id = ?4",
            params![s.url, s.proxy_host_id, now, s.instance],
        )
        .map_err(q("mark instance live"))?;
        for row in s.retire {
            tx.execute("UPDATE instances SET status = 'retiring', updated_at = ?1 WHERE id = ?2", params![now, row])
                .map_err(q("mark replaced instance retiring"))?;
        }
        for id in s.rolled_back {
            tx.execute("UPDATE deploys SET status = 'rolled_back' WHERE id = ?1", [id.0])
                .map_err(q("mark deploy rolled back"))?;
        }
        tx.execute(
            "UPDATE deploys SET status = 'succeeded', error = NULL, url = ?1, finished_at = ?2, leftovers = NULL
             WHERE id = ?3",
            params![s.url, now, s.deploy_id.0],
        )
        .map_err(q("record deploy result"))?;
        tx.commit().map_err(q("commit finish"))
    }

    fn add_leftovers(
        &self,
        project: &str,
        stage: &str,
        deploy: Option<DeployId>,
        items: &[Leftover],
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let tx = self.conn.unchecked_transaction().map_err(q("record leftovers"))?;
        for item in items {
            // Serialising a plain enum cannot fail; its text is kept if it ever did.
            let json = serde_json::to_string(item).unwrap_or_else(|_| item.to_string());
            tx.execute(
                "INSERT INTO leftovers (project, stage, deploy_id, item, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![project, stage, deploy.map(|d| d.0), json, now],
            )
            .map_err(q("record leftovers"))?;
        }
        tx.commit().map_err(q("record leftovers"))
    }

    fn leftovers(&self, filter: &Filter) -> Result<Vec<LeftoverRecord>, StoreError> {
        let (where_sql, params) = filter_sql(&Filter { tag: None, ..filter.clone() });
        let sql = format!("SELECT project, stage, deploy_id, item, created_at FROM leftovers {where_sql} ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list leftovers"))?;
        let rows = stmt
            .query_map(rusqlite::params_from_iter(params), |r| {
                Ok((r.get(0)?, r.get(1)?, r.get::<_, Option<i64>>(2)?, r.get::<_, String>(3)?, r.get(4)?))
            })
            .map_err(q("list leftovers"))?;
        let mut out = Vec::new();
        for row in rows {
            let (project, stage, deploy_id, item, created_at) = row.map_err(q("list leftovers"))?;
            // A row this version cannot read is shown as what it says, not dropped.
            let item = serde_json::from_str(&item).unwrap_or(Leftover::Row {
                row: 0,
                container: String::new(),
                cause: crate::domain::LeftoverCause::Failed { error: format!("unreadable leftover: {item}") },
            });
            out.push(LeftoverRecord { project, stage, deploy_id: deploy_id.map(DeployId), item, created_at });
        }
        Ok(out)
    }

    fn clear_leftovers(&self, project: &str, stage: &str) -> Result<(), StoreError> {
        self.conn
            .execute("DELETE FROM leftovers WHERE project = ?1 AND stage = ?2", params![project, stage])
            .map_err(q("clear leftovers"))?;
        Ok(())
    }

    fn begin_deploy(&self, new: &NewDeploy) -> Result<DeployId, StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO deploys (project, stage, tag, slot, image, status, pid, host, started_at, trigger, actor)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'running', ?6, ?7, ?8, ?9, ?10)",
            )
            .and_then(|mut s| {
                s.execute(params![
                    new.slot.project.as_str(),
                    new.slot.stage.as_str(),
                    new.slot.tag.as_str(),
                    new.slot.key(),
                    new.image,
                    new.pid,
                    new.host,
                    now_ms(),
                    new.trigger.as_str(),
                    new.actor
                ])
            })
            .map_err(q("record deploy"))?;
        Ok(DeployId(self.conn.last_insert_rowid()))
    }

    fn set_digest(&self, id: DeployId, digest: &str) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE deploys SET digest = ?1 WHERE id = ?2", params![digest, id.0])
            .map_err(q("record digest"))?;
        Ok(())
    }

    fn finish_deploy(&self, id: DeployId, end: &DeployEnd<'_>) -> Result<(), StoreError> {
        let leftovers = (!end.leftovers.is_empty()).then(|| end.leftovers.join("\n"));
        self.conn
            .execute(
                "UPDATE deploys SET status = ?1, error = ?2, url = ?3, finished_at = ?4, leftovers = ?5 WHERE id = ?6",
                params![end.status.as_str(), end.error, end.url, now_ms(), leftovers, id.0],
            )
            .map_err(q("record deploy result"))?;
        Ok(())
    }

    fn trim_history(&self, before_ms: i64) -> Result<usize, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM deploys WHERE started_at < ?1 AND status != 'running'
                   AND id NOT IN (SELECT deploy_id FROM instances)",
                [before_ms],
            )
            .map_err(q("trim history"))?;
        if n > 0 {
            // Each step of incremental_vacuum frees pages; step it to the end.
            let mut stmt = self.conn.prepare("PRAGMA incremental_vacuum").map_err(q("reclaim space"))?;
            let mut rows = stmt.query([]).map_err(q("reclaim space"))?;
            while rows.next().map_err(q("reclaim space"))?.is_some() {}
            drop(rows);
            drop(stmt);
            self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).map_err(q("reclaim space"))?;
        }
        Ok(n)
    }

    fn append_log(&self, id: DeployId, e: &LogEntry) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO deploy_logs (deploy_id, seq, ts, level, step, message)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_logs WHERE deploy_id = ?1), ?2, ?3, ?4, ?5)",
            )
            .and_then(|mut s| s.execute(params![id.0, e.ts, e.level.as_str(), e.step, e.message]))
            .map_err(q("append deploy log"))?;
        Ok(())
    }

    fn append_event(&self, id: DeployId, e: &LogEntry, event: &crate::report::Event) -> Result<(), StoreError> {
        // Serialising a plain enum cannot fail; the entry is stored without its event if it did.
        let json = serde_json::to_string(event).ok();
        self.conn
            .prepare_cached(
                "INSERT INTO deploy_logs (deploy_id, seq, ts, level, step, message, event)
                 VALUES (?1, (SELECT COALESCE(MAX(seq), 0) + 1 FROM deploy_logs WHERE deploy_id = ?1), ?2, ?3, ?4, ?5, ?6)",
            )
            .and_then(|mut s| s.execute(params![id.0, e.ts, e.level.as_str(), e.step, e.message, json]))
            .map_err(q("append deploy log"))?;
        Ok(())
    }

    fn events(&self, id: DeployId, after: u64) -> Result<Vec<super::StoredEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT seq, ts, level, step, message, event FROM deploy_logs WHERE deploy_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(q("read deploy log"))?;
        let rows = stmt
            .query_map(params![id.0, i64::try_from(after).unwrap_or(i64::MAX)], |r| {
                let level: String = r.get(2)?;
                let event: Option<String> = r.get(5)?;
                Ok(super::StoredEvent {
                    seq: r.get(0)?,
                    entry: LogEntry { ts: r.get(1)?, level: Level::parse(&level), step: r.get(3)?, message: r.get(4)? },
                    event: event.and_then(|e| serde_json::from_str(&e).ok()),
                })
            })
            .map_err(q("read deploy log"))?;
        rows.collect::<Result<_, _>>().map_err(q("read deploy log"))
    }

    fn deploy(&self, id: DeployId) -> Result<Option<DeployRecord>, StoreError> {
        self.conn
            .query_row(&format!("SELECT {DEPLOY_COLS} FROM deploys WHERE id = ?1"), [id.0], deploy_row)
            .optional()
            .map_err(q("read deploy"))
    }

    fn deploys(&self, filter: &Filter, limit: usize) -> Result<Vec<DeployRecord>, StoreError> {
        let (where_sql, params) = filter_sql(filter);
        let sql = format!("SELECT {DEPLOY_COLS} FROM deploys {where_sql} ORDER BY id DESC LIMIT {limit}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list deploys"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), deploy_row).map_err(q("list deploys"))?;
        rows.collect::<Result<_, _>>().map_err(q("list deploys"))
    }

    fn running(&self, filter: &Filter) -> Result<Vec<DeployRecord>, StoreError> {
        let (where_sql, params) = filter_sql(filter);
        let status = if where_sql.is_empty() { "WHERE status = 'running'" } else { " AND status = 'running'" };
        let sql = format!("SELECT {DEPLOY_COLS} FROM deploys {where_sql}{status} ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list running deploys"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), deploy_row).map_err(q("list running deploys"))?;
        rows.collect::<Result<_, _>>().map_err(q("list running deploys"))
    }

    fn count_trimmable(&self, before_ms: i64) -> Result<usize, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM deploys WHERE started_at < ?1 AND status != 'running'
                   AND id NOT IN (SELECT deploy_id FROM instances)",
                [before_ms],
                |r| r.get(0),
            )
            .map_err(q("count old deploys"))
    }

    fn logs(&self, id: DeployId, after: usize) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT ts, level, step, message FROM deploy_logs WHERE deploy_id = ?1 AND seq > ?2 ORDER BY seq",
            )
            .map_err(q("read deploy log"))?;
        let rows = stmt
            .query_map(params![id.0, i64::try_from(after).unwrap_or(i64::MAX)], |r| {
                let level: String = r.get(1)?;
                Ok(LogEntry { ts: r.get(0)?, level: Level::parse(&level), step: r.get(2)?, message: r.get(3)? })
            })
            .map_err(q("read deploy log"))?;
        rows.collect::<Result<_, _>>().map_err(q("read deploy log"))
    }

    fn insert_instance(&self, n: &NewInstance) -> Result<i64, StoreError> {
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO instances (deploy_id, project, stage, tag, slot, container_name, digest, domain, port, spec_hash, status, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?10, ?11, 'pending', ?8, ?8)",
                params![
                    n.deploy_id.0,
                    n.slot.project.as_str(),
                    n.slot.stage.as_str(),
                    n.slot.tag.as_str(),
                    n.slot.key(),
                    n.container_name,
                    n.digest,
                    now,
                    n.domain,
                    n.port,
                    n.spec_hash
                ],
            )
            .map_err(q("record instance"))?;
        Ok(self.conn.last_insert_rowid())
    }

    fn update_instance(&self, id: i64, p: &InstancePatch) -> Result<(), StoreError> {
        let clear_proxy = matches!(p.proxy_host_id, Some(None));
        self.conn
            .execute(
                "UPDATE instances SET
                    container_id = COALESCE(?1, container_id),
                    proxy_host_id = CASE WHEN ?2 THEN NULL ELSE COALESCE(?3, proxy_host_id) END,
                    url = COALESCE(?4, url),
                    status = COALESCE(?5, status),
                    updated_at = ?6
                 WHERE id = ?7",
                params![
                    p.container_id,
                    clear_proxy,
                    p.proxy_host_id.clone().flatten(),
                    p.url,
                    p.status.map(InstanceStatus::as_str),
                    now_ms(),
                    id
                ],
            )
            .map_err(q("update instance"))?;
        Ok(())
    }

    fn delete_instance(&self, id: i64) -> Result<(), StoreError> {
        self.conn.execute("DELETE FROM instances WHERE id = ?1", [id]).map_err(q("delete instance"))?;
        Ok(())
    }

    fn instances(&self, filter: &Filter) -> Result<Vec<InstanceRecord>, StoreError> {
        let (where_sql, params) = filter_sql(filter);
        let sql = format!("SELECT {INSTANCE_COLS} FROM instances {where_sql} ORDER BY created_at, id");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list instances"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), instance_row).map_err(q("list instances"))?;
        rows.collect::<Result<_, _>>().map_err(q("list instances"))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;

    use super::*;
    use crate::domain::{ProjectName, Slot, StageName, Tag};

    fn slot(tag: &str) -> Slot {
        Slot {
            project: ProjectName::new("shop").unwrap(),
            stage: StageName::new("dev").unwrap(),
            tag: Tag::new(tag).unwrap(),
        }
    }

    fn new_deploy(tag: &str) -> NewDeploy {
        NewDeploy {
            slot: slot(tag),
            image: format!("shop:{tag}"),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        }
    }

    #[test]
    fn state_file_is_created_with_mode_0600_and_migrated() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("state.db");
        let store = SqliteStore::open(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: i64 = store.conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
        assert_eq!(v, i64::try_from(MIGRATIONS.len()).unwrap());
        let jm: String = store.conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
        assert_eq!(jm, "wal");
        let av: i64 = store.conn.pragma_query_value(None, "auto_vacuum", |r| r.get(0)).unwrap();
        assert_eq!(av, 2, "incremental auto-vacuum, so that trimming history shrinks the file");
        drop(store);
        SqliteStore::open(&path).unwrap();
    }

    #[test]
    fn processes_opening_a_new_state_file_at_once_migrate_it_once() {
        // Eight connections, released together, race to migrate a new file: a migration run
        // twice fails (its tables exist) or leaves the version wrong. Repeated, since a race
        // is not lost every time.
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    let (path, start) = (path.clone(), std::sync::Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteStore::open(&path).map(|_| ())
                    })
                })
                .collect();
            for t in threads {
                t.join().unwrap().unwrap();
            }
            let conn = Connection::open(&path).unwrap();
            let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
            assert_eq!(version, 6, "every migration applied, and recorded once");
            assert_eq!(usize::try_from(version).unwrap(), MIGRATIONS.len());
        }
    }

    #[test]
    fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        drop(SqliteStore::open(&path).unwrap());
        Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
        assert!(matches!(SqliteStore::open(&path), Err(StoreError::TooNew { found: 99, .. })));
    }

    #[test]
    fn deploy_rows_record_their_lifecycle() {
        let s = SqliteStore::in_memory().unwrap();
        let id = s.begin_deploy(&new_deploy("v1")).unwrap();
        s.set_digest(id, "sha256:abc").unwrap();
        let left = vec!["container x".to_owned()];
        s.finish_deploy(
            id,
            &DeployEnd { status: DeployStatus::Failed, error: Some("health: 500"), url: None, leftovers: &left },
        )
        .unwrap();
        let d = s.deploy(id).unwrap().unwrap();
        assert_eq!(d.status, DeployStatus::Failed);
        assert_eq!(d.leftovers, left);
        assert_eq!(d.digest.as_deref(), Some("sha256:abc"));
        assert_eq!(d.error.as_deref(), Some("health: 500"));
        assert!(d.finished_at.is_some());
    }

    #[test]
    fn logs_come_back_in_order_and_after_an_offset() {
        let s = SqliteStore::in_memory().unwrap();
        let id = s.begin_deploy(&new_deploy("v1")).unwrap();
        for i in 0..3 {
            s.append_log(id, &LogEntry { ts: i, level: Level::Info, step: "pull".into(), message: format!("m{i}") })
                .unwrap();
        }
        let all = s.logs(id, 0).unwrap();
        assert_eq!(all.iter().map(|e| e.message.as_str()).collect::<Vec<_>>(), ["m0", "m1", "m2"]);
        assert_eq!(s.logs(id, 2).unwrap().len(), 1);
    }

    #[test]
    fn deploys_are_listed_newest_first_and_filtered() {
        let s = SqliteStore::in_memory().unwrap();
        let a = s.begin_deploy(&new_deploy("a")).unwrap();
        let b = s.begin_deploy(&new_deploy("b")).unwrap();
        let all = s.deploys(&Filter::default(), 10).unwrap();
        assert_eq!(all.iter().map(|d| d.id).collect::<Vec<_>>(), [b, a]);
        let only = s
            .deploys(&Filter { project: Some("shop".into()), stage: Some("dev".into()), tag: Some("a".into()) }, 10)
            .unwrap();
        assert_eq!(only.len(), 1);
        assert_eq!(s.deploys(&Filter { project: Some("blog".into()), ..Filter::default() }, 10).unwrap().len(), 0);
    }

    #[test]
    fn trimming_history_keeps_running_deploys_and_those_instances_refer_to() {
        let s = SqliteStore::in_memory().unwrap();
        let old = s.begin_deploy(&new_deploy("a")).unwrap();
        s.append_log(old, &LogEntry { ts: 0, level: Level::Info, step: "pull".into(), message: "m".into() }).unwrap();
        s.finish_deploy(old, &DeployEnd { status: DeployStatus::Failed, error: None, url: None, leftovers: &[] })
            .unwrap();
        let running = s.begin_deploy(&new_deploy("b")).unwrap();
        let serving = s.begin_deploy(&new_deploy("c")).unwrap();
        s.finish_deploy(
            serving,
            &DeployEnd { status: DeployStatus::Succeeded, error: None, url: None, leftovers: &[] },
        )
        .unwrap();
        s.insert_instance(&NewInstance {
            deploy_id: serving,
            slot: slot("c"),
            container_name: "x".into(),
            digest: "d".into(),
            domain: "h.example".into(),
            port: 8080,
            spec_hash: None,
        })
        .unwrap();
        assert_eq!(s.trim_history(now_ms() + 1000).unwrap(), 1);
        let free: i64 = s.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).unwrap();
        assert_eq!(free, 0, "freed pages are given back");
        assert!(s.deploy(old).unwrap().is_none());
        assert!(s.logs(old, 0).unwrap().is_empty(), "logs go with their deploy");
        assert!(s.deploy(running).unwrap().is_some());
        assert!(s.deploy(serving).unwrap().is_some());
    }

    #[test]
    fn running_deploys_are_found_by_stage_and_old_ones_counted() {
        let s = SqliteStore::in_memory().unwrap();
        let done = s.begin_deploy(&new_deploy("a")).unwrap();
        s.finish_deploy(done, &DeployEnd { status: DeployStatus::Failed, error: None, url: None, leftovers: &[] })
            .unwrap();
        let running = s.begin_deploy(&new_deploy("b")).unwrap();
        let f = Filter { project: Some("shop".into()), stage: Some("dev".into()), tag: None };
        assert_eq!(s.running(&f).unwrap().iter().map(|d| d.id).collect::<Vec<_>>(), [running]);
        assert_eq!(s.running(&Filter::default()).unwrap().len(), 1);
        assert!(s.running(&Filter { project: Some("blog".into()), ..Filter::default() }).unwrap().is_empty());
        assert_eq!(s.count_trimmable(now_ms() + 1000).unwrap(), 1);
    }

    #[test]
    fn the_swarm_migration_keeps_rows_and_never_hands_out_a_deleted_row_s_id_again() {
        let dir2 = tempfile::tempdir().unwrap();
        let old = dir2.path().join("state.db");
        {
            let conn = Connection::open(&old).unwrap();
            for m in &MIGRATIONS[..4] {
                conn.execute_batch(m).unwrap();
            }
            conn.pragma_update(None, "user_version", 4).unwrap();
            conn.execute_batch(
                "INSERT INTO deploys (id, project, stage, tag, slot, image, status, trigger, started_at, pid, host)
                     VALUES (1, 'shop', 'dev', 'a', 'shop/dev/a', 'i', 'succeeded', 'deploy', 0, 1, 'h');
                 INSERT INTO instances (deploy_id, project, stage, tag, slot, container_name, digest, status, created_at, updated_at)
                     VALUES (1, 'shop', 'dev', 'a', 'shop/dev/a', 'c1', 'd', 'live', 0, 0),
                            (1, 'shop', 'dev', 'a', 'shop/dev/a', 'c2', 'd', 'live', 0, 0);
                 DELETE FROM instances WHERE container_name = 'c2';",
            )
            .unwrap();
        }
        let s = SqliteStore::open(&old).unwrap();
        let rows = s.instances(&Filter::default()).unwrap();
        assert_eq!(rows.iter().map(|r| (r.id, r.container_name.as_str())).collect::<Vec<_>>(), [(1, "c1")]);
        let d = s.begin_deploy(&new_deploy("a")).unwrap();
        let id = s
            .insert_instance(&NewInstance {
                deploy_id: d,
                slot: slot("a"),
                container_name: "c3".into(),
                digest: "d".into(),
                domain: "h.example".into(),
                port: 8080,
                spec_hash: None,
            })
            .unwrap();
        assert_eq!(id, 3, "id 2 belonged to a deleted row");
    }

    #[test]
    fn a_swarm_slot_s_rows_share_its_service_name_but_one_deploy_names_it_once() {
        let s = SqliteStore::in_memory().unwrap();
        let row = |deploy| NewInstance {
            deploy_id: deploy,
            slot: slot("a"),
            container_name: "tf-shop-dev-a".into(),
            digest: "sha256:x".into(),
            domain: "h.example".into(),
            port: 8080,
            spec_hash: None,
        };
        let first = s.begin_deploy(&new_deploy("a")).unwrap();
        let second = s.begin_deploy(&new_deploy("a")).unwrap();
        s.insert_instance(&row(first)).unwrap();
        s.insert_instance(&row(second)).unwrap();
        assert!(s.insert_instance(&row(second)).is_err(), "one deploy, one row per name");
        assert_eq!(s.instances(&Filter::default()).unwrap().len(), 2);
    }

    #[test]
    fn instance_rows_are_patched_and_deleted() {
        let s = SqliteStore::in_memory().unwrap();
        let d = s.begin_deploy(&new_deploy("a")).unwrap();
        let id = s
            .insert_instance(&NewInstance {
                deploy_id: d,
                slot: slot("a"),
                container_name: "tf-shop-dev-a-1".into(),
                digest: "sha256:x".into(),
                domain: "h.example".into(),
                port: 8080,
                spec_hash: None,
            })
            .unwrap();
        s.update_instance(
            id,
            &InstancePatch {
                container_id: Some("c1".into()),
                proxy_host_id: Some(Some("7".into())),
                ..Default::default()
            },
        )
        .unwrap();
        s.update_instance(id, &InstancePatch { status: Some(InstanceStatus::Live), ..Default::default() }).unwrap();
        let i = &s.instances(&Filter::default()).unwrap()[0];
        assert_eq!(
            (i.container_id.as_deref(), i.proxy_host_id.as_deref(), i.status),
            (Some("c1"), Some("7"), InstanceStatus::Live)
        );
        s.update_instance(id, &InstancePatch { proxy_host_id: Some(None), ..Default::default() }).unwrap();
        assert_eq!(s.instances(&Filter::default()).unwrap()[0].proxy_host_id, None);
        s.delete_instance(id).unwrap();
        assert!(s.instances(&Filter::default()).unwrap().is_empty());
    }

    #[test]
    fn each_state_file_has_its_own_id_and_keeps_it() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.db"), dir.path().join("b.db"));
        let id = SqliteStore::open(&a).unwrap().state_id().unwrap();
        assert_eq!(id.len(), 16);
        assert_eq!(SqliteStore::open(&a).unwrap().state_id().unwrap(), id, "stable across opens");
        assert_ne!(SqliteStore::open(&b).unwrap().state_id().unwrap(), id, "another file is a stranger");
    }

    #[test]
    fn a_version_1_state_file_migrates_and_keeps_its_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.db");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(MIGRATIONS[0]).unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
            conn.execute(
                "INSERT INTO instances (deploy_id, project, stage, tag, slot, container_name, digest, status, created_at, updated_at)
                 VALUES (1, 'shop', 'dev', 'a', 'shop/dev/a', 'tf-shop-dev-a-1', 'd', 'leftover', 1, 1)",
                [],
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        let rows = store.instances(&Filter::default()).unwrap();
        assert_eq!(rows[0].status, InstanceStatus::Retiring);
        assert_eq!((rows[0].domain.clone(), rows[0].port), (None, None));
        assert!(!store.state_id().unwrap().is_empty());
    }

    #[test]
    fn finish_is_one_transaction_over_instance_replaced_and_deploys() {
        let s = SqliteStore::in_memory().unwrap();
        let old = s.begin_deploy(&new_deploy("a")).unwrap();
        let new = s.begin_deploy(&new_deploy("a")).unwrap();
        let inst = |d: DeployId, name: &str| NewInstance {
            deploy_id: d,
            slot: slot("a"),
            container_name: name.into(),
            digest: "d".into(),
            domain: "h.example".into(),
            port: 8080,
            spec_hash: None,
        };
        let old_row = s.insert_instance(&inst(old, "x")).unwrap();
        let new_row = s.insert_instance(&inst(new, "y")).unwrap();
        s.finish_success(&Success {
            deploy_id: new,
            instance: new_row,
            url: "http://h.example",
            proxy_host_id: Some("7"),
            retire: &[old_row],
            rolled_back: &[old],
        })
        .unwrap();
        let rows = s.instances(&Filter::default()).unwrap();
        assert_eq!(rows[0].status, InstanceStatus::Retiring);
        assert_eq!(rows[1].status, InstanceStatus::Live);
        assert_eq!(rows[1].proxy_host_id.as_deref(), Some("7"));
        assert_eq!(s.deploy(new).unwrap().unwrap().status, DeployStatus::Succeeded);
        assert_eq!(s.deploy(old).unwrap().unwrap().status, DeployStatus::RolledBack);
    }

    #[test]
    fn leftovers_round_trip_typed_and_are_cleared_per_stage() {
        use crate::domain::{Leftover, LeftoverCause};
        let s = SqliteStore::in_memory().unwrap();
        let item = Leftover::Container { name: "c".into(), cause: LeftoverCause::InUse { host: "h".into() } };
        s.add_leftovers("shop", "dev", Some(DeployId(3)), std::slice::from_ref(&item)).unwrap();
        s.add_leftovers("shop", "qa", None, std::slice::from_ref(&item)).unwrap();
        let all = s.leftovers(&Filter::default()).unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].item, item);
        assert_eq!(all[0].deploy_id, Some(DeployId(3)));
        s.clear_leftovers("shop", "dev").unwrap();
        let left = s.leftovers(&Filter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].stage, "qa");
    }
}
