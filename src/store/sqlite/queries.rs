//! The [`Store`] trait's queries on [`SqliteStore`]: one method, one statement or one
//! transaction. Rows become records in `rows.rs`.

use rusqlite::{OptionalExtension as _, params};

use super::rows::{
    DEPLOY_COLS, EVENT_COLS, INSTANCE_COLS, LEFTOVER_COLS, LOG_COLS, deploy_row, event_row, instance_row, leftover_row,
    log_row,
};
use super::{SqliteStore, q};
use crate::domain::{DeployId, InstanceStatus, Leftover};
use crate::store::{
    DeployEnd, DeployRecord, Filter, InstancePatch, InstanceRecord, LeftoverRecord, LogEntry, NewDeploy, NewInstance,
    Store, StoreError, StoredEvent, Success, now_ms,
};

/// `WHERE` clause and parameters for a filter (project, then stage, then tag).
pub(super) fn filter_sql(f: &Filter) -> (String, Vec<String>) {
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
        let sql = format!("SELECT {LEFTOVER_COLS} FROM leftovers {where_sql} ORDER BY id");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list leftovers"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(params), leftover_row).map_err(q("list leftovers"))?;
        rows.collect::<Result<_, _>>().map_err(q("list leftovers"))
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

    fn events(&self, id: DeployId, after: u64) -> Result<Vec<StoredEvent>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {EVENT_COLS} FROM deploy_logs WHERE deploy_id = ?1 AND seq > ?2 ORDER BY seq"
            ))
            .map_err(q("read deploy log"))?;
        let rows = stmt
            .query_map(params![id.0, i64::try_from(after).unwrap_or(i64::MAX)], event_row)
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

    fn live_slot_history(&self, per_slot: usize) -> Result<Vec<crate::store::SlotDeploy>, StoreError> {
        // One statement: the live slots, then each one's deploys through `deploys_by_slot`.
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT project, stage, tag, id, image, digest FROM (
                   SELECT d.project, d.stage, d.tag, d.id, d.image, d.digest,
                          ROW_NUMBER() OVER (PARTITION BY d.project, d.stage, d.tag ORDER BY d.id DESC) AS n
                   FROM (SELECT DISTINCT project, stage, tag FROM instances WHERE status = 'live') s
                   JOIN deploys d ON d.project = s.project AND d.stage = s.stage AND d.tag = s.tag
                   WHERE d.status IN ('succeeded', 'rolled_back') AND d.digest IS NOT NULL
                 ) WHERE n <= ?1 ORDER BY project, stage, tag, id DESC",
            )
            .map_err(q("read live slots' history"))?;
        let limit = i64::try_from(per_slot).unwrap_or(i64::MAX);
        let rows = stmt
            .query_map([limit], |r| {
                Ok(crate::store::SlotDeploy {
                    project: r.get(0)?,
                    stage: r.get(1)?,
                    tag: r.get(2)?,
                    id: DeployId(r.get(3)?),
                    image: r.get(4)?,
                    digest: r.get(5)?,
                })
            })
            .map_err(q("read live slots' history"))?;
        rows.collect::<Result<_, _>>().map_err(q("read live slots' history"))
    }

    fn deployed_digests(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT DISTINCT digest FROM deploys WHERE digest IS NOT NULL")
            .map_err(q("list deployed digests"))?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(q("list deployed digests"))?;
        rows.collect::<Result<_, _>>().map_err(q("list deployed digests"))
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
            .prepare_cached(&format!(
                "SELECT {LOG_COLS} FROM deploy_logs WHERE deploy_id = ?1 AND seq > ?2 ORDER BY seq"
            ))
            .map_err(q("read deploy log"))?;
        let rows = stmt
            .query_map(params![id.0, i64::try_from(after).unwrap_or(i64::MAX)], log_row)
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
