//! The `SQLite` store against real files and in-memory databases, one per test: creation and
//! migration, each table's round trips, and rows this version cannot read.

use std::os::unix::fs::PermissionsExt as _;

use rusqlite::Connection;

use super::*;
use crate::domain::{DeployId, DeployStatus, InstanceStatus, ProjectName, Slot, StageName, Tag, Trigger};
use crate::report::Level;
use crate::store::{DeployEnd, Filter, InstancePatch, LogEntry, NewDeploy, NewInstance, Store, Success, now_ms};

/// Review F12: a dry run reads an older state file through a copy; the file keeps its
/// version, so the older tiny-forge that wrote it can still open it.
#[test]
fn a_snapshot_of_an_older_state_file_migrates_only_the_copy() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
    }
    let snap = SqliteStore::snapshot(&path).unwrap();
    assert!(snap.instances(&Filter::default()).unwrap().is_empty(), "the copy has today's schema");
    let version: i64 = Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 1, "the file was not migrated");
    let names: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names, ["state.db"]);
    let missing = SqliteStore::snapshot(&dir.path().join("nope").join("state.db")).unwrap();
    assert!(missing.deploys(&Filter::default(), 10).unwrap().is_empty());
    assert!(!dir.path().join("nope").exists(), "a missing state file is an empty state, and stays missing");
}

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
        assert_eq!(version, 7, "every migration applied, and recorded once");
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
    s.finish_deploy(old, &DeployEnd { status: DeployStatus::Failed, error: None, url: None, leftovers: &[] }).unwrap();
    let running = s.begin_deploy(&new_deploy("b")).unwrap();
    let serving = s.begin_deploy(&new_deploy("c")).unwrap();
    s.finish_deploy(serving, &DeployEnd { status: DeployStatus::Succeeded, error: None, url: None, leftovers: &[] })
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
    s.finish_deploy(done, &DeployEnd { status: DeployStatus::Failed, error: None, url: None, leftovers: &[] }).unwrap();
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
        &InstancePatch { container_id: Some("c1".into()), proxy_host_id: Some(Some("7".into())), ..Default::default() },
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

/// `result` is [`StoreError::Corrupt`] for `value` in `table`.`column`.
#[track_caller]
fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, StoreError>, table: &str, column: &str, value: &str) {
    match result {
        Err(StoreError::Corrupt { table: t, column: c, value: v }) => {
            assert_eq!((t, c, v.as_str()), (table, column, value));
        }
        other => panic!("expected {table}.{column} = {value:?} to be unreadable, got {other:?}"),
    }
}

/// Architecture review §1.4: a status this version does not know (a newer tiny-forge wrote it)
/// is an error that says so, never read as `failed`.
#[test]
fn a_deploy_status_this_version_does_not_know_is_an_error_not_a_failed_deploy() {
    let s = SqliteStore::in_memory().unwrap();
    let id = s.begin_deploy(&new_deploy("a")).unwrap();
    s.conn.execute("UPDATE deploys SET status = 'paused' WHERE id = ?1", [id.0]).unwrap();
    assert_corrupt(s.deploy(id), "deploys", "status", "paused");
    assert_corrupt(s.deploys(&Filter::default(), 10), "deploys", "status", "paused");
    let msg = s.deploy(id).unwrap_err().to_string();
    assert!(msg.contains(r#"deploys.status holds "paused""#) && msg.contains("upgrade tiny-forge"), "{msg}");
}

/// Architecture review §1.4: an unknown trigger is an error, never read as `deploy`.
#[test]
fn a_trigger_this_version_does_not_know_is_an_error_not_a_deploy() {
    let s = SqliteStore::in_memory().unwrap();
    let id = s.begin_deploy(&new_deploy("a")).unwrap();
    s.conn.execute("UPDATE deploys SET trigger = 'cron' WHERE id = ?1", [id.0]).unwrap();
    assert_corrupt(s.deploy(id), "deploys", "trigger", "cron");
    assert_corrupt(s.running(&Filter::default()), "deploys", "trigger", "cron");
}

/// Architecture review §1.4: an unknown instance status is an error, never read as `retiring`
/// (which would have the next run take the instance down).
#[test]
fn an_instance_status_this_version_does_not_know_is_an_error_not_retiring() {
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
    s.conn.execute("UPDATE instances SET status = 'draining' WHERE id = ?1", [id]).unwrap();
    assert_corrupt(s.instances(&Filter::default()), "instances", "status", "draining");
}

/// Architecture review §1.4: a leftover this version cannot read is an error, never a made-up
/// instance row.
#[test]
fn a_leftover_this_version_cannot_read_is_an_error_not_a_made_up_row() {
    let s = SqliteStore::in_memory().unwrap();
    let item = r#"{"kind":"volume","name":"v","cause":{"why":"abandoned"}}"#;
    s.conn
        .execute(
            "INSERT INTO leftovers (project, stage, deploy_id, item, created_at) VALUES ('shop', 'dev', NULL, ?1, 0)",
            [item],
        )
        .unwrap();
    assert_corrupt(s.leftovers(&Filter::default()), "leftovers", "item", item);
}

#[test]
fn a_conversion_failure_of_rusqlite_s_own_stays_a_query_error() {
    let e = rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, "not a number".into());
    assert!(matches!(q("read deploy")(e), StoreError::Query { op: "read deploy", .. }));
}

/// Issue 26: a slot's deploys (what retire, `remove` and `prune` read for every live slot) are
/// found through the slot index, not by walking every deploy of the stage; with hundreds of
/// previews in one stage, the walk made those commands grow with the square of their number.
#[test]
fn a_slot_s_deploys_are_read_through_the_slot_index() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(&dir.path().join("state.db")).unwrap();
    let (where_sql, _) = super::queries::filter_sql(&Filter {
        project: Some("shop".into()),
        stage: Some("pr".into()),
        tag: Some("t1".into()),
    });
    let sql = format!("EXPLAIN QUERY PLAN SELECT id FROM deploys {where_sql} ORDER BY id DESC LIMIT 500");
    let mut stmt = store.conn.prepare(&sql).unwrap();
    let plan: Vec<String> = stmt
        .query_map(["shop", "pr", "t1"], |r| r.get::<_, String>("detail"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(plan.iter().any(|d| d.contains("deploys_by_slot")), "{plan:?}");
    assert!(!plan.iter().any(|d| d.contains("TEMP B-TREE")), "no sort: {plan:?}");
}

/// Issue 26: image GC reads every live slot's history in one statement, through the slot
/// index.
#[test]
fn live_slot_history_is_one_indexed_read_of_every_live_slot() {
    let s = SqliteStore::in_memory().unwrap();
    // Slot a: three succeeded deploys (digests d1, d2, d2), a failed one; live. Slot b: one
    // succeeded deploy, its row retiring only (not live). Slot c: live, one deploy.
    let mut ids = Vec::new();
    for (tag, digest, end) in [
        ("a", "sha256:d1", DeployStatus::Succeeded),
        ("a", "sha256:d2", DeployStatus::Succeeded),
        ("a", "sha256:bad", DeployStatus::Failed),
        ("a", "sha256:d2", DeployStatus::Succeeded),
        ("b", "sha256:b1", DeployStatus::Succeeded),
        ("c", "sha256:c1", DeployStatus::Succeeded),
    ] {
        let id = s.begin_deploy(&new_deploy(tag)).unwrap();
        s.set_digest(id, digest).unwrap();
        s.finish_deploy(id, &DeployEnd { status: end, error: None, url: None, leftovers: &[] }).unwrap();
        ids.push((tag, id));
    }
    for (tag, id) in [("a", ids[3].1), ("b", ids[4].1), ("c", ids[5].1)] {
        let row = s
            .insert_instance(&NewInstance {
                deploy_id: id,
                slot: slot(tag),
                container_name: format!("c-{tag}"),
                digest: "x".into(),
                domain: "h.example".into(),
                port: 8080,
                spec_hash: None,
            })
            .unwrap();
        if tag != "b" {
            s.finish_success(&Success {
                deploy_id: id,
                instance: row,
                url: "http://h.example",
                proxy_host_id: None,
                retire: &[],
                rolled_back: &[],
            })
            .unwrap();
        }
    }
    let got = s.live_slot_history(2).unwrap();
    let short: Vec<(&str, &str)> = got.iter().map(|p| (p.tag.as_str(), p.digest.as_str())).collect();
    assert_eq!(short, [("a", "sha256:d2"), ("a", "sha256:d2"), ("c", "sha256:c1")], "newest first, 2 a slot");
    assert_eq!(got[0].id, ids[3].1);
    let all: Vec<DeployId> = s.live_slot_history(500).unwrap().iter().map(|p| p.id).collect();
    assert_eq!(all, [ids[3].1, ids[1].1, ids[0].1, ids[5].1], "every kept deploy of the live slots, no failed one");
    // And it is read through the slot index, with no scan of the deploys.
    let mut stmt = s.conn.prepare("EXPLAIN QUERY PLAN SELECT d.id FROM (SELECT DISTINCT project, stage, tag FROM instances WHERE status = 'live') s JOIN deploys d ON d.project = s.project AND d.stage = s.stage AND d.tag = s.tag WHERE d.status IN ('succeeded', 'rolled_back')").unwrap();
    let plan: Vec<String> =
        stmt.query_map([], |r| r.get::<_, String>("detail")).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(plan.iter().any(|d| d.contains("deploys_by_slot")), "{plan:?}");
    assert!(!plan.iter().any(|d| d.starts_with("SCAN d")), "{plan:?}");
}
