//! The reads of the web page (`server/ui/`), shaped so that a page costs the same on a state
//! file of a hundred deploys as on one of a hundred thousand: history by keyset pages (an id to
//! start before, never an offset), a token's scope applied in the query, a slot's last deploy
//! by one index seek (`deploys_by_slot`, migration 7).

use rusqlite::{OptionalExtension as _, params};

use super::rows::{DEPLOY_COLS, deploy_row};
use super::{SqliteStore, q};
use crate::store::{DeployRecord, Filter, StoreError};

/// Which projects and stages a reader may see; an empty list means "any" (a token's scope).
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// Projects; empty: any.
    pub projects: &'a [String],
    /// Stages; empty: any.
    pub stages: &'a [String],
}

impl SqliteStore {
    /// Up to `limit` deploys with an id below `before` (all, when `None`), newest first, of
    /// `filter`'s project and stage (its tag is ignored) and inside `scope`.
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when a row holds a word this version
    /// cannot read.
    pub fn deploys_page(
        &self,
        scope: Scope<'_>,
        filter: &Filter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, StoreError> {
        let mut clauses: Vec<String> = Vec::new();
        let mut values: Vec<rusqlite::types::Value> = Vec::new();
        let bind = |v: rusqlite::types::Value, values: &mut Vec<rusqlite::types::Value>| {
            values.push(v);
            format!("?{}", values.len())
        };
        for (col, v) in [("project", &filter.project), ("stage", &filter.stage)] {
            if let Some(v) = v {
                let p = bind(v.clone().into(), &mut values);
                clauses.push(format!("{col} = {p}"));
            }
        }
        for (col, list) in [("project", scope.projects), ("stage", scope.stages)] {
            if !list.is_empty() {
                let ps: Vec<String> = list.iter().map(|v| bind(v.clone().into(), &mut values)).collect();
                clauses.push(format!("{col} IN ({})", ps.join(", ")));
            }
        }
        if let Some(b) = before {
            let p = bind(b.into(), &mut values);
            clauses.push(format!("id < {p}"));
        }
        let where_sql = if clauses.is_empty() { String::new() } else { format!("WHERE {}", clauses.join(" AND ")) };
        let sql = format!("SELECT {DEPLOY_COLS} FROM deploys {where_sql} ORDER BY id DESC LIMIT {limit}");
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("list deploys"))?;
        let rows = stmt.query_map(rusqlite::params_from_iter(values), deploy_row).map_err(q("list deploys"))?;
        rows.collect::<Result<_, _>>().map_err(q("list deploys"))
    }

    /// The last deploy of `project`'s `stage` with `tag`, if any.
    ///
    /// # Errors
    /// As [`SqliteStore::deploys_page`].
    pub fn last_deploy(&self, project: &str, stage: &str, tag: &str) -> Result<Option<DeployRecord>, StoreError> {
        let sql = format!(
            "SELECT {DEPLOY_COLS} FROM deploys WHERE project = ?1 AND stage = ?2 AND tag = ?3 ORDER BY id DESC LIMIT 1"
        );
        let mut stmt = self.conn.prepare_cached(&sql).map_err(q("read last deploy"))?;
        stmt.query_row(params![project, stage, tag], deploy_row).optional().map_err(q("read last deploy"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ProjectName, Slot, StageName, Tag, Trigger};
    use crate::store::{NewDeploy, Store as _};

    fn begin(s: &SqliteStore, project: &str, stage: &str, tag: &str) -> i64 {
        let slot = Slot {
            project: ProjectName::new(project).unwrap(),
            stage: StageName::new(stage).unwrap(),
            tag: Tag::new(tag).unwrap(),
        };
        let new = NewDeploy {
            slot,
            image: format!("r/x:{tag}"),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        };
        s.begin_deploy(&new).unwrap().0
    }

    #[test]
    fn history_pages_by_id_within_the_scope_and_the_last_deploy_of_a_slot_is_found() {
        let s = SqliteStore::in_memory().unwrap();
        let mut dev = Vec::new();
        for i in 0..5 {
            dev.push(begin(&s, "shop", "dev", &format!("v{i}")));
            begin(&s, "shop", "prod", "v1");
            begin(&s, "blog", "dev", "v1");
        }
        let (shop, only_dev) = (["shop".to_owned()], ["dev".to_owned()]);
        let scope = Scope { projects: &shop, stages: &only_dev };
        let first = s.deploys_page(scope, &Filter::default(), None, 3).unwrap();
        let ids: Vec<i64> = first.iter().map(|d| d.id.0).collect();
        assert_eq!(ids, [dev[4], dev[3], dev[2]]);
        let next = s.deploys_page(scope, &Filter::default(), Some(dev[2]), 3).unwrap();
        let ids: Vec<i64> = next.iter().map(|d| d.id.0).collect();
        assert_eq!(ids, [dev[1], dev[0]]);
        let all = s.deploys_page(Scope::default(), &Filter::default(), None, 100).unwrap();
        assert_eq!(all.len(), 15);
        let prod = Filter { project: Some("shop".into()), stage: Some("prod".into()), tag: None };
        assert!(s.deploys_page(scope, &prod, None, 100).unwrap().is_empty(), "a filter never widens the scope");
        let last = s.last_deploy("shop", "prod", "v1").unwrap().unwrap();
        assert_eq!(last.id.0, dev[4] + 1);
        assert!(s.last_deploy("shop", "prod", "v9").unwrap().is_none());
    }
}
