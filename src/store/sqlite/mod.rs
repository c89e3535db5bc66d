//! [`Store`](super::Store) on `SQLite`: the [`SqliteStore`] type and how its file is opened:
//! WAL, a busy timeout, file mode 0600, migrations by `user_version`, a read-only snapshot for
//! dry runs, and the classification of `SQLite`'s errors into [`StoreError`]s. The trait's
//! queries are in `queries.rs`, the mapping of rows to records in `rows.rs`.

mod pages;
mod queries;
pub(in crate::store) mod rows;
#[cfg(test)]
mod tests;

pub use pages::Scope;

use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::StoreError;

/// How long a call waits for another process's lock on the state file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Migrations, applied in order; `user_version` is the number applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/001_init.sql"),
    include_str!("../migrations/002_reconcile.sql"),
    include_str!("../migrations/003_spec_hash.sql"),
    include_str!("../migrations/004_server.sql"),
    include_str!("../migrations/005_swarm_slots.sql"),
    include_str!("../migrations/006_webhook_deliveries.sql"),
    include_str!("../migrations/007_ui_sessions.sql"),
];

/// The `SQLite` state file.
#[derive(Debug)]
pub struct SqliteStore {
    pub(super) conn: Connection,
}

/// The [`StoreError`] for a failed `op`: [`StoreError::Corrupt`] when a row held a word this
/// version cannot read (see `rows.rs`), [`StoreError::Disk`] when the disk is full or failing,
/// [`StoreError::Query`] otherwise.
pub(super) fn q(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| match source {
        rusqlite::Error::FromSqlConversionFailure(column, ty, cause) => match cause.downcast::<rows::Unreadable>() {
            Ok(u) => StoreError::Corrupt { table: u.table, column: u.column, value: u.value },
            Err(cause) => {
                StoreError::Query { op, source: rusqlite::Error::FromSqlConversionFailure(column, ty, cause) }
            }
        },
        source => match source.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DiskFull | rusqlite::ErrorCode::SystemIoFailure) => {
                StoreError::Disk { op, source }
            }
            _ => StoreError::Query { op, source },
        },
    }
}

/// `path` for a `file:` URI: `%`, `?` and `#` escaped.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for c in path.to_string_lossy().chars() {
        match c {
            '%' => out.push_str("%25"),
            '?' => out.push_str("%3f"),
            '#' => out.push_str("%23"),
            c => out.push(c),
        }
    }
    out
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

    /// A copy in memory of the state file at `path`, for a plan that must change nothing
    /// (`deploy --dry-run`): the file is opened read-only, nothing is created, and an older
    /// schema is migrated in the copy only (so an older tiny-forge, a pinned CI image or a
    /// running `serve`, is never locked out by a dry run). A missing file is an empty state.
    ///
    /// # Errors
    /// [`StoreError::Open`] when the file cannot be read, [`StoreError::TooNew`] when a newer
    /// tiny-forge wrote it.
    pub fn snapshot(path: &Path) -> Result<Self, StoreError> {
        let shown = path.display().to_string();
        let mut mem = Connection::open_in_memory().map_err(q("open in-memory database"))?;
        if path.exists() {
            let open_err = |e: rusqlite::Error| StoreError::Open { path: shown.clone(), source: e.into() };
            let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX
                | rusqlite::OpenFlags::SQLITE_OPEN_URI;
            // Without a write-ahead log beside it, every change is in the file: read it as
            // immutable, which creates no `-wal`/`-shm` (a read-only connection could not
            // remove them again). With one, a writer is about: read through it.
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            let src = if Path::new(&wal).exists() {
                Connection::open_with_flags(path, flags)
            } else {
                let uri = format!("file:{}?immutable=1", uri_path(path));
                Connection::open_with_flags(uri, flags)
            }
            .map_err(open_err)?;
            src.busy_timeout(BUSY_TIMEOUT).map_err(q("set busy timeout"))?;
            let copy = rusqlite::backup::Backup::new(&src, &mut mem).map_err(open_err)?;
            copy.run_to_completion(256, Duration::from_millis(10), None).map_err(open_err)?;
        }
        Self::init(mem, &shown)
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
