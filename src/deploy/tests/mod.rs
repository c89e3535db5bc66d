//! The saga, the undo executor, recovery and prune against the fakes of [`crate::testing`]:
//! every step failed in turn, in every mode, and the outside world (the fakes' containers and
//! hosts) checked afterwards, not only the state file.

use std::cell::RefCell;
use std::time::Duration;

use super::*;
use crate::config::ProbeAddress;
use crate::domain::{
    DeployId, DeployStatus, InstanceStatus, Leftover, LeftoverCause, ProjectName, Slot, StageName, Tag, Trigger,
};
use crate::engine::RestartPolicy;
use crate::health::{HealthPolicy, ProbeResult};
use crate::proxy::{Marker, Owner, Target};
use crate::report::{Event, Step};
use crate::store::{
    DeployEnd, DeployRecord, Filter, InstancePatch, InstanceRecord, LeftoverRecord, LogEntry, NewDeploy, NewInstance,
    SqliteStore, StoreError, Success,
};
use crate::testing::{FAKE_TIMEOUT, FakeProxy, FakeRuntime, Mode};

/// A probe that passes, fails, or never answers.
#[derive(Clone, Copy)]
enum FakeProbe {
    Pass,
    Fail,
    Hang,
}

impl Probe for FakeProbe {
    async fn probe(&self, _: &str, _: Duration) -> ProbeResult {
        match self {
            Self::Pass => ProbeResult { passed: true, detail: "200 OK".into() },
            Self::Fail => ProbeResult { passed: false, detail: "500 Internal Server Error".into() },
            Self::Hang => std::future::pending().await,
        }
    }
}

/// The real store, with operations that can be made to fail.
struct FlakyStore {
    inner: SqliteStore,
    fail: RefCell<Option<&'static str>>,
}

impl FlakyStore {
    fn check(&self, op: &'static str) -> Result<(), StoreError> {
        if *self.fail.borrow() == Some(op) {
            return Err(StoreError::Query { op, source: rusqlite::Error::InvalidQuery });
        }
        Ok(())
    }
}

impl Store for FlakyStore {
    fn state_id(&self) -> Result<String, StoreError> {
        self.inner.state_id()
    }
    fn finish_success(&self, s: &Success<'_>) -> Result<(), StoreError> {
        self.check("finish")?;
        self.inner.finish_success(s)
    }
    fn add_leftovers(&self, p: &str, s: &str, d: Option<DeployId>, i: &[Leftover]) -> Result<(), StoreError> {
        self.inner.add_leftovers(p, s, d, i)
    }
    fn leftovers(&self, f: &Filter) -> Result<Vec<LeftoverRecord>, StoreError> {
        self.inner.leftovers(f)
    }
    fn clear_leftovers(&self, p: &str, s: &str) -> Result<(), StoreError> {
        self.inner.clear_leftovers(p, s)
    }
    fn begin_deploy(&self, n: &NewDeploy) -> Result<DeployId, StoreError> {
        self.inner.begin_deploy(n)
    }
    fn set_digest(&self, id: DeployId, d: &str) -> Result<(), StoreError> {
        self.inner.set_digest(id, d)
    }
    fn finish_deploy(&self, id: DeployId, e: &DeployEnd<'_>) -> Result<(), StoreError> {
        self.inner.finish_deploy(id, e)
    }
    fn trim_history(&self, b: i64) -> Result<usize, StoreError> {
        self.inner.trim_history(b)
    }
    fn append_log(&self, id: DeployId, e: &LogEntry) -> Result<(), StoreError> {
        self.inner.append_log(id, e)
    }
    fn deploy(&self, id: DeployId) -> Result<Option<DeployRecord>, StoreError> {
        self.inner.deploy(id)
    }
    fn deploys(&self, f: &Filter, l: usize) -> Result<Vec<DeployRecord>, StoreError> {
        self.inner.deploys(f, l)
    }
    fn running(&self, f: &Filter) -> Result<Vec<DeployRecord>, StoreError> {
        self.inner.running(f)
    }
    fn deployed_digests(&self) -> Result<std::collections::BTreeSet<String>, StoreError> {
        self.inner.deployed_digests()
    }
    fn count_trimmable(&self, b: i64) -> Result<usize, StoreError> {
        self.inner.count_trimmable(b)
    }
    fn logs(&self, id: DeployId, a: usize) -> Result<Vec<LogEntry>, StoreError> {
        self.inner.logs(id, a)
    }
    fn insert_instance(&self, n: &NewInstance) -> Result<i64, StoreError> {
        self.check("insert")?;
        self.inner.insert_instance(n)
    }
    fn update_instance(&self, id: i64, p: &InstancePatch) -> Result<(), StoreError> {
        self.inner.update_instance(id, p)
    }
    fn delete_instance(&self, id: i64) -> Result<(), StoreError> {
        self.check("delete")?;
        self.inner.delete_instance(id)
    }
    fn instances(&self, f: &Filter) -> Result<Vec<InstanceRecord>, StoreError> {
        self.inner.instances(f)
    }
}

#[derive(Default)]
struct Events(RefCell<Vec<Event>>);

impl Reporter for Events {
    fn report(&self, _: i64, e: &Event) {
        self.0.borrow_mut().push(e.clone());
    }
}

fn stage_with(project: &str, max_instances: u32, extra: &str) -> crate::config::ResolvedStage {
    let text = format!(
        "[projects.{project}]\nimage = \"shop\"\nport = 8080\nmax_instances = {max_instances}\n{extra}\n[projects.{project}.stages.dev]\n[projects.{project}.stages.dev.health]\nstart_period = \"0s\"\ninterval = \"1s\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let c = crate::config::load(&path).unwrap();
    c.resolve(&ProjectName::new(project).unwrap(), &StageName::new("dev").unwrap()).unwrap()
}

fn stage(max_instances: u32) -> crate::config::ResolvedStage {
    let r = stage_with("shop", max_instances, "");
    assert_eq!(r.restart, RestartPolicy::UnlessStopped);
    assert_eq!(r.probe_address, ProbeAddress::Ip);
    assert_eq!(
        r.health,
        HealthPolicy { start_period: Duration::ZERO, interval: Duration::from_secs(1), ..HealthPolicy::default() }
    );
    r
}

fn request(tag: &str, max: u32) -> DeployRequest {
    DeployRequest {
        stage: stage(max),
        tag: Tag::new(tag).unwrap(),
        trigger: Trigger::Deploy,
        image_override: None,
        lock_wait: LockWait::NoWait,
        // The pipeline under test: a redeploy of the same digest and spec is not skipped.
        force: true,
    }
}

const DOMAIN: &str = "stage-dev-shop.localhost";

struct Bed {
    runtime: FakeRuntime,
    proxy: FakeProxy,
    store: FlakyStore,
    probe: FakeProbe,
    events: Events,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Self {
        Self {
            runtime: FakeRuntime::default(),
            proxy: FakeProxy::default(),
            store: FlakyStore { inner: SqliteStore::in_memory().unwrap(), fail: RefCell::new(None) },
            probe: FakeProbe::Pass,
            events: Events::default(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn deployer(&self) -> Deployer<'_, FakeRuntime, FakeProxy, FlakyStore, FakeProbe> {
        Deployer::new(&self.runtime, &self.proxy, &self.store, &self.probe, self.dir.path().to_path_buf())
            .with_reporter(&self.events)
    }

    async fn deploy(&self, tag: &str, max: u32) -> DeployOutcome {
        self.deployer().deploy(&request(tag, max)).await.unwrap()
    }

    async fn ok(&self, tag: &str) -> DeploySuccess {
        match self.deploy(tag, 3).await {
            DeployOutcome::Succeeded(s) => s,
            DeployOutcome::Failed(f) => panic!("deploy failed: {}", f.failed),
        }
    }

    async fn prune(&self) -> PruneReport {
        let req = PruneRequest {
            stages: vec![stage(3)],
            older_than: None,
            include_default: false,
            dry_run: false,
            history_retention: Duration::from_secs(86_400),
        };
        self.deployer().prune(&req).await.unwrap()
    }

    fn state(&self) -> String {
        self.store.state_id().unwrap()
    }

    fn rows(&self) -> Vec<InstanceRecord> {
        self.store.instances(&Filter::default()).unwrap()
    }

    /// The host of `domain` forwards to `container`.
    #[track_caller]
    fn assert_host(&self, domain: &str, container: &str) {
        let h = self.proxy.host(domain).unwrap_or_else(|| panic!("no host {domain}"));
        assert_eq!(h.target.host, container, "host {domain}");
        assert!(h.problem.is_none(), "host {domain}: {:?}", h.problem);
        assert_eq!(h.owner, Owner::Marked(Marker { state: self.state(), slot: format!("shop/dev/{}", "latest") }));
    }

    #[track_caller]
    fn assert_nothing_left(&self) {
        assert!(self.runtime.containers.borrow().is_empty(), "containers left: {:?}", self.runtime.containers.borrow());
        assert!(self.proxy.hosts.borrow().is_empty(), "hosts left: {:?}", self.proxy.hosts.borrow());
        assert!(self.rows().is_empty(), "instance rows left: {:?}", self.rows());
    }

    /// Every live row's host exists, is ours and forwards to its running container; no
    /// container or host of ours without a row.
    #[track_caller]
    fn assert_consistent(&self) {
        let rows = self.rows();
        for r in rows.iter().filter(|r| r.status == InstanceStatus::Live) {
            assert!(self.runtime.containers.borrow().get(&r.container_name).is_some_and(|c| c.running));
            let h = self.proxy.host(r.domain.as_deref().unwrap()).expect("live instance without host");
            assert_eq!(h.target.host, r.container_name);
        }
        for name in self.runtime.containers.borrow().keys() {
            assert!(rows.iter().any(|r| &r.container_name == name), "container {name} without a row");
        }
        for h in self.proxy.hosts.borrow().values() {
            assert!(
                rows.iter().any(|r| r.status == InstanceStatus::Live && r.domain.as_deref() == Some(&h.domain)),
                "host {} without a live instance",
                h.domain
            );
        }
    }
}

#[tokio::test]
async fn happy_path_leaves_a_live_instance_a_marked_host_and_a_log_per_step() {
    let bed = Bed::new();
    let ok = bed.ok("latest").await;
    assert_eq!(ok.url, format!("http://{DOMAIN}"));
    let rows = bed.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, InstanceStatus::Live);
    assert_eq!(rows[0].port, Some(8080));
    assert_eq!(rows[0].domain.as_deref(), Some(DOMAIN));
    bed.assert_host(DOMAIN, &ok.container);
    let c = bed.runtime.containers.borrow()[&ok.container].clone();
    assert_eq!(c.labels.get(crate::engine::LABEL_STATE), Some(&bed.state()));
    let d = bed.store.deploy(ok.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Succeeded);
    assert_eq!(d.digest.as_deref(), Some("sha256:feed"));
    let logs = bed.store.logs(ok.deploy_id, 0).unwrap();
    for step in ["lock", "pull", "network", "create", "start", "health", "proxy", "finish", "retire"] {
        assert!(logs.iter().any(|l| l.step == step && l.message.contains("done in")), "no finished entry for {step}");
    }
}

#[tokio::test]
async fn each_failing_engine_step_is_rolled_back_completely() {
    for op in ["pull", "network", "create", "start", "inspect"] {
        let bed = Bed::new();
        bed.runtime.fail_times(op, Mode::Error, 1);
        let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("{op}: succeeded") };
        assert!(f.rollback.is_complete(), "{op}: {:?}", f.rollback);
        bed.assert_nothing_left();
        let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
        assert_eq!(d.status, DeployStatus::Failed, "{op}");
        assert!(d.error.as_deref().unwrap().contains("injected"), "{op}: {:?}", d.error);
    }
}

#[tokio::test(start_paused = true)]
async fn unhealthy_container_is_removed_and_never_published() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Health);
    assert_eq!(bed.proxy.created.get(), 0, "no host was ever created");
    bed.assert_nothing_left();
}

#[tokio::test]
async fn container_that_exits_fails_the_health_step_with_its_code_and_logs() {
    let bed = Bed::new();
    bed.runtime.exit_at_start.set(Some(2));
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    let msg = f.failed.to_string();
    assert!(msg.contains("exited with code 2") && msg.contains("boom"), "{msg}");
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_host_that_does_not_serve_after_create_is_deleted_with_the_container() {
    let bed = Bed::new();
    bed.proxy.offline.set(true);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(f.failed.to_string().contains("nginx -t failed"), "{}", f.failed);
    bed.assert_nothing_left();
}

/// Issue 11, scenario 11: a switch-back is read back like any switch; one that the proxy does
/// not serve (NPM's `nginx_online: false`) is not reported complete.
#[tokio::test]
async fn a_switch_back_that_does_not_serve_is_not_reported_complete() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    bed.proxy.offline.set(true);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(!f.rollback.is_complete(), "{:?}", f.rollback);
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    bed.assert_consistent();
}

#[tokio::test]
async fn a_proxy_that_refuses_the_create_leaves_nothing() {
    let bed = Bed::new();
    bed.proxy.fail("create", Mode::Error);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(f.rollback.is_complete());
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_failing_compensation_does_not_stop_the_others_and_is_a_typed_leftover() {
    let bed = Bed::new();
    bed.runtime.fail("remove", Mode::Error);
    bed.proxy.fail("create", Mode::Error);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(
        f.rollback.leftovers,
        vec![Leftover::Container {
            name: "tf-shop-dev-latest-1".into(),
            cause: LeftoverCause::Failed { error: "remove tf-shop-dev-latest-1 failed: injected".into() },
        }]
    );
    let rows = bed.rows();
    assert_eq!(rows[0].status, InstanceStatus::Retiring, "kept for prune, never live");
    let stored = bed.store.leftovers(&Filter::default()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].deploy_id, Some(f.deploy_id));
    let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Failed);
    assert!(d.error.unwrap().contains("rollback incomplete"));
    // Prune finishes the job and forgets the leftover.
    bed.runtime.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_nothing_left();
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
}

/// Issue 11, scenario 4: a redeploy whose switch-back fails keeps the new container (the host
/// points at it); prune repairs the host first and only then removes it.
#[tokio::test]
async fn a_failed_switch_back_keeps_the_container_the_host_points_at_and_prune_repairs_the_host_first() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    // The switch works; finish fails; switching back fails.
    *bed.store.fail.borrow_mut() = Some("finish");
    bed.proxy.fail_after("update", Mode::Error, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    *bed.store.fail.borrow_mut() = None;
    let new_container = format!("tf-shop-dev-latest-{}", f.deploy_id);
    assert!(f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Host { .. })), "{:?}", f.rollback);
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Container { name, .. } if *name == new_container)),
        "{:?}",
        f.rollback
    );
    assert!(bed.runtime.has(&new_container), "a host must never point at a removed container");
    assert_eq!(bed.proxy.host(DOMAIN).unwrap().target.host, new_container);
    // Cron prune: the host goes back to the live instance first, then the container goes.
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    assert!(!bed.runtime.has(&new_container));
    bed.assert_consistent();
}

#[tokio::test]
async fn redeploy_of_an_occupied_slot_switches_the_host_and_retires_the_old_container() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let second = bed.ok("latest").await;
    bed.assert_host(DOMAIN, &second.container);
    assert_eq!(bed.proxy.created.get(), 1, "switched, not recreated");
    assert!(!bed.runtime.has(&first.container), "old container retired");
    assert_eq!(bed.rows().len(), 1);
    bed.assert_consistent();
}

#[tokio::test(start_paused = true)]
async fn failed_redeploy_switches_nothing_and_keeps_the_old_instance() {
    let mut bed = Bed::new();
    let first = bed.ok("latest").await;
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(_) = bed.deploy("latest", 3).await else { panic!() };
    bed.assert_host(DOMAIN, &first.container);
    let rows = bed.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, InstanceStatus::Live);
    bed.assert_consistent();
}

#[tokio::test]
async fn max_instances_evicts_the_oldest_but_never_the_new_one() {
    let bed = Bed::new();
    let a = bed.deploy("a", 2).await;
    bed.deploy("b", 2).await;
    let c = bed.deploy("c", 2).await;
    let (DeployOutcome::Succeeded(a), DeployOutcome::Succeeded(c)) = (a, c) else { panic!() };
    let tags: Vec<String> = bed.rows().into_iter().map(|i| i.tag).collect();
    assert_eq!(tags, ["b", "c"]);
    assert!(!bed.runtime.has(&a.container));
    assert!(bed.runtime.has(&c.container));
    assert_eq!(bed.proxy.hosts.borrow().len(), 2, "a's host deleted");
    bed.assert_consistent();
}

#[tokio::test]
async fn cancellation_rolls_back_and_marks_the_deploy_interrupted() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let (handle, cancel) = CancelHandle::new();
    let deployer = bed.deployer().with_cancel(cancel);
    let mut req = request("latest", 3);
    req.stage.health.retries = 1000;
    let stop = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.cancel();
    };
    let (outcome, ()) = tokio::join!(deployer.deploy(&req), stop);
    let DeployOutcome::Failed(f) = outcome.unwrap() else { panic!() };
    assert!(f.interrupted);
    assert!(f.rollback.is_complete());
    bed.assert_nothing_left();
    assert_eq!(bed.store.deploy(f.deploy_id).unwrap().unwrap().status, DeployStatus::Interrupted);
}

/// Issue 11, scenario 11: a second signal stops the rollback; what it did not undo is
/// recorded (never a clean 130), and prune finishes it.
#[tokio::test(start_paused = true)]
async fn a_second_signal_stops_the_rollback_and_records_what_is_left() {
    let bed = Bed::new();
    bed.runtime.fail("remove", Mode::Hang);
    bed.proxy.fail("create", Mode::Error);
    let (handle, cancel) = CancelHandle::new();
    let deployer = bed.deployer().with_cancel(cancel);
    let stop = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        handle.abort();
    };
    let req = request("latest", 3);
    let (outcome, ()) = tokio::join!(deployer.deploy(&req), stop);
    let DeployOutcome::Failed(f) = outcome.unwrap() else { panic!() };
    assert!(!f.rollback.is_complete());
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Container { cause: LeftoverCause::Abandoned, .. }))
    );
    assert!(!bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    bed.runtime.heal();
    bed.prune().await;
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_busy_lock_fails_before_anything_is_recorded() {
    let bed = Bed::new();
    let path = bed.dir.path().join("shop.dev.lock");
    let _held = crate::lock::StageLock::acquire(&path, "shop/dev", LockWait::NoWait).await.unwrap();
    let r = bed.deployer().deploy(&request("latest", 3)).await;
    assert!(matches!(r, Err(DeployError::Lock(crate::lock::LockError::Busy { .. }))));
    assert!(bed.store.deploys(&Filter::default(), 10).unwrap().is_empty());
}

fn slot(tag: &str) -> Slot {
    Slot {
        project: ProjectName::new("shop").unwrap(),
        stage: StageName::new("dev").unwrap(),
        tag: Tag::new(tag).unwrap(),
    }
}

/// A deploy that died (kill -9) after creating its container and switching the host to it,
/// before recording the switch.
fn dead_deploy_that_switched(bed: &Bed) -> (DeployId, String) {
    let dead = bed
        .store
        .begin_deploy(&NewDeploy {
            slot: slot("latest"),
            image: "shop:latest".into(),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        })
        .unwrap();
    let name = format!("tf-shop-dev-latest-{dead}");
    bed.store
        .insert_instance(&NewInstance {
            deploy_id: dead,
            slot: slot("latest"),
            container_name: name.clone(),
            digest: "d".into(),
            domain: DOMAIN.into(),
            port: 8080,
            spec_hash: None,
        })
        .unwrap();
    bed.runtime.add(
        &name,
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, &bed.state()),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
        ],
    );
    if let Some(id) = bed.proxy.host(DOMAIN).map(|_| bed.proxy.hosts.borrow().keys().next().unwrap().clone()) {
        bed.proxy.hosts.borrow_mut().get_mut(&id).unwrap().target = Target { host: name.clone(), port: 8080 };
    }
    (dead, name)
}

/// Issue 11, scenario 5: recovery points the host back at the live instance before it removes
/// the dead deploy's container (the host pointed at it).
#[tokio::test]
async fn an_abandoned_deploy_that_switched_the_host_is_recovered_by_the_next_deploy() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    assert_eq!(bed.proxy.host(DOMAIN).unwrap().target.host, name);
    // The next deploy of another tag of the stage recovers it first.
    let other = bed.deploy("other", 3).await;
    assert!(matches!(other, DeployOutcome::Succeeded(_)));
    assert!(!bed.runtime.has(&name));
    bed.assert_host(DOMAIN, &first.container);
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.assert_consistent();
}

#[tokio::test]
async fn an_abandoned_deploy_is_recovered_by_prune_the_same_way() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    assert!(r.actions.iter().any(|a| a.contains(&format!("mark deploy {dead}"))), "{r:?}");
    assert!(!bed.runtime.has(&name));
    bed.assert_host(DOMAIN, &first.container);
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.assert_consistent();
    assert!(bed.prune().await.actions.is_empty(), "a second prune finds nothing to do");
}

/// Issue 11, scenario 7: a switch-back that fails during recovery leaves a leftover, a
/// non-zero prune, and is repaired by the next run.
#[tokio::test]
async fn a_switch_back_that_fails_during_recovery_is_a_leftover_and_repaired_next_time() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    bed.proxy.fail("update", Mode::Error);
    let r = bed.prune().await;
    assert!(!r.failures.is_empty(), "prune must say it could not finish");
    assert!(bed.runtime.has(&name), "kept: the host points at it");
    assert!(!bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    assert!(!bed.runtime.has(&name));
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    bed.assert_consistent();
}

/// Issue 11, scenario 1: a host deleted behind our back (Caddy restarted, NPM UI) is
/// recreated by the next redeploy, and by prune.
#[tokio::test]
async fn a_vanished_host_is_recreated_by_the_redeploy_and_by_prune() {
    let bed = Bed::new();
    bed.ok("latest").await;
    bed.proxy.hosts.borrow_mut().clear();
    let second = bed.ok("latest").await;
    bed.assert_host(DOMAIN, &second.container);
    bed.assert_consistent();
    bed.proxy.hosts.borrow_mut().clear();
    let r = bed.prune().await;
    assert!(r.actions.iter().any(|a| a.contains("has no proxy host")), "{r:?}");
    bed.assert_host(DOMAIN, &second.container);
    // Pointed elsewhere: repaired.
    bed.proxy.hosts.borrow_mut().values_mut().for_each(|h| h.target = Target { host: "elsewhere".into(), port: 1 });
    bed.prune().await;
    bed.assert_host(DOMAIN, &second.container);
    bed.assert_consistent();
}

/// Issue 11, scenario 2: two slots fold to one host name; the second is refused, nothing of
/// the first is touched, and the message names both slots and the pattern to change.
#[tokio::test]
async fn a_host_of_another_slot_is_refused_and_left_untouched() {
    let bed = Bed::new();
    let other = Marker { state: bed.state(), slot: "web-2/dev/latest".into() };
    let target = Target { host: "tf-web-2-dev-latest-1".into(), port: 8080 };
    bed.proxy.add(DOMAIN, Owner::Marked(other.clone()), target.clone());
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("took over another slot's host") };
    let msg = f.failed.to_string();
    assert!(
        msg.contains("web-2/dev/latest") && msg.contains("shop/dev/latest") && msg.contains("tag_subdomain"),
        "{msg}"
    );
    assert!(f.rollback.is_complete());
    let h = bed.proxy.host(DOMAIN).unwrap();
    assert_eq!((h.owner, h.target), (Owner::Marked(other), target), "untouched");
    assert!(bed.runtime.containers.borrow().is_empty());
    assert!(bed.rows().is_empty());
    // Nor does remove or prune touch it.
    bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    bed.prune().await;
    assert!(bed.proxy.host(DOMAIN).is_some());
}

/// Issue 11, scenario 9: what another state file made is a stranger's.
#[tokio::test]
async fn another_state_files_containers_and_hosts_are_never_touched() {
    let bed = Bed::new();
    bed.runtime.add(
        "tf-shop-dev-latest-1",
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, "someone-else"),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
            (crate::engine::LABEL_SLOT, "shop/dev/latest"),
        ],
    );
    let theirs = Marker { state: "someone-else".into(), slot: "shop/dev/x".into() };
    bed.proxy.add("stage-dev-shop-x.localhost", Owner::Marked(theirs), Target { host: "c".into(), port: 1 });
    // Our deploy 1 wants the same container name: create conflicts, and the rollback must not
    // remove the stranger's container by name.
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert_eq!(f.failed.step, Step::Create);
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "the other state file's container was removed");
    let r = bed.prune().await;
    // Only the image our failed deploy pulled goes (no container uses it).
    assert!(r.actions.iter().all(|a| a.starts_with("delete image shop@")), "{r:?}");
    assert!(bed.runtime.has("tf-shop-dev-latest-1"));
    assert_eq!(bed.proxy.hosts.borrow().len(), 1);
}

/// A container of the same name that tiny-forge did not make (no managed label): the create is
/// refused with a line saying so, and neither the rollback nor prune touches that container.
#[tokio::test]
async fn a_container_name_someone_else_took_is_refused_and_never_removed() {
    let bed = Bed::new();
    bed.runtime.add("tf-shop-dev-latest-1", &[(crate::engine::LABEL_PROJECT, "shop")]);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Create);
    assert!(
        f.failed.to_string().contains("container tf-shop-dev-latest-1 already exists and tiny-forge did not make it"),
        "{}",
        f.failed
    );
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "the rollback removed a container it did not make");
    assert!(bed.rows().is_empty());
    assert!(bed.proxy.hosts.borrow().is_empty());
    bed.prune().await;
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "prune removed a container tiny-forge did not make");
}

/// Another run's image cleanup takes the image between the pull and the create: the deploy pulls
/// it again, says so, and goes on.
#[tokio::test]
async fn an_image_gone_before_the_create_is_pulled_again_and_the_deploy_goes_on() {
    let bed = Bed::new();
    bed.runtime.images_vanish.set(1);
    let ok = bed.ok("latest").await;
    let calls: Vec<String> = bed
        .runtime
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("pull ") || c.starts_with("create "))
        .cloned()
        .collect();
    assert_eq!(calls.len(), 4, "pull, create, pull again, create again: {calls:?}");
    let logs = bed.store.logs(ok.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "create" && l.message.contains("pulling it again")), "{logs:?}");
    bed.assert_host(DOMAIN, &ok.container);
    bed.assert_consistent();
}

/// Issue 11, scenario 8: each instance keeps its port; a switch-back after a release that
/// changed `port` uses the old instance's.
#[tokio::test]
async fn a_switch_back_uses_the_old_instances_own_port() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let mut req = request("latest", 3);
    req.stage.port = 9090;
    *bed.store.fail.borrow_mut() = Some("finish");
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    let h = bed.proxy.host(DOMAIN).unwrap();
    assert_eq!(h.target, Target { host: first.container, port: 8080 });
}

/// Issue 11, scenario 6: a create whose answer is lost (it happened) is found by name and
/// deleted; one that has not shown up yet is reported (exit 3), not claimed done.
#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_was_lost_is_found_by_name_or_reported() {
    let bed = Bed::new();
    bed.proxy.fail_times("create", Mode::ActThenFail, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    bed.assert_nothing_left();

    let bed = Bed::new();
    bed.proxy.fail_times("create", Mode::Timeout, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Host { cause: LeftoverCause::Unsettled, .. })),
        "{:?}",
        f.rollback
    );
    bed.prune().await;
    bed.assert_nothing_left();
}

/// Issue 11, scenario 10: `rollback` twice does not return to the version just rolled back
/// from; `--to` still can.
#[tokio::test]
async fn a_deploy_that_was_rolled_back_is_never_an_automatic_rollback_target() {
    let bed = Bed::new();
    let v1 = bed.ok("latest").await;
    // v2 of the same tag: another digest.
    let mut req = request("latest", 3);
    req.image_override = Some("shop@sha256:v2".into());
    let DeployOutcome::Succeeded(v2) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let st = stage(3);
    let tag = Tag::new("latest").unwrap();
    let d = bed.deployer();
    let back = d.rollback_source(&st, &tag, None).unwrap();
    assert_eq!(back.id, v1.deploy_id);
    let mut rb = request("latest", 3);
    rb.trigger = Trigger::Rollback;
    rb.image_override = Some("shop@sha256:feed".into());
    assert!(matches!(d.deploy(&rb).await.unwrap(), DeployOutcome::Succeeded(_)));
    assert_eq!(bed.store.deploy(v2.deploy_id).unwrap().unwrap().status, DeployStatus::RolledBack);
    assert!(matches!(d.rollback_source(&st, &tag, None), Err(RollbackError::Nothing { .. })));
    assert_eq!(d.rollback_source(&st, &tag, Some(v2.deploy_id)).unwrap().id, v2.deploy_id);
}

#[tokio::test]
async fn remove_takes_the_slot_down_host_first() {
    let bed = Bed::new();
    bed.ok("latest").await;
    let r = bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    assert!(r.leftovers.is_empty(), "{r:?}");
    bed.assert_nothing_left();
    let calls = bed.proxy.calls.borrow().clone();
    let delete = calls.iter().position(|c| c.starts_with("delete")).unwrap();
    let removed = bed.runtime.calls.borrow().iter().any(|c| c.starts_with("remove"));
    assert!(removed && delete > 0);
    let again = bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    assert_eq!(again.deploy_id, None, "nothing to remove the second time");
}

#[tokio::test]
async fn a_failed_deploy_is_never_reported_as_a_success() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let mut req = request("latest", 3);
    req.stage.health.retries = 1;
    let outcome = bed.deployer().deploy(&req).await.unwrap();
    assert!(matches!(outcome, DeployOutcome::Failed(_)));
    let events = bed.events.0.borrow();
    assert!(!events.iter().any(|e| matches!(e, Event::StepStarted { step: Step::Finish })));
    assert!(events.iter().any(|e| matches!(e, Event::StepFailed { step: Step::Health, .. })));
    let d = bed.store.deploys(&Filter::default(), 1).unwrap();
    assert_ne!(d[0].status, DeployStatus::Succeeded);
    assert_eq!(d[0].url, None);
}

/// Where a fault is injected, and the step that must be named as failed.
#[derive(Debug, Clone, Copy)]
enum Site {
    Runtime(&'static str),
    Proxy(&'static str),
    /// Redeploy: the proxy switch of an occupied slot.
    Switch(&'static str),
    Store(&'static str),
    Probe,
}

/// Every step × {error, timeout, hang, act-then-fail}: each ends with the outside world as it
/// was (nothing new, the old instance serving) and the failed step named in history. The
/// rollback is complete, except where a proxy change got no answer (it may still land): then
/// it says so (exit 3) and keeps what that change touches, and `prune` finishes. Timeouts take
/// their time and hangs are cut by the step bounds, on a paused clock.
#[tokio::test(start_paused = true)]
async fn fault_matrix_every_step_by_every_mode_rolls_back_completely() {
    let sites = [
        (Site::Runtime("pull"), "pull"),
        (Site::Runtime("network"), "network"),
        (Site::Runtime("create"), "create"),
        (Site::Runtime("start"), "start"),
        (Site::Runtime("inspect"), "health"),
        (Site::Proxy("find"), "proxy"),
        (Site::Proxy("create"), "proxy"),
        (Site::Switch("update"), "proxy"),
        (Site::Switch("find"), "proxy"),
        (Site::Store("finish"), "finish"),
        (Site::Probe, "health"),
    ];
    for mode in [Mode::Error, Mode::Timeout, Mode::Hang, Mode::ActThenFail] {
        for (site, step_name) in sites {
            let case = format!("{site:?} {mode:?}");
            let mut bed = Bed::new();
            let first = match site {
                Site::Switch(_) | Site::Store(_) => Some(bed.ok("latest").await),
                _ => None,
            };
            match site {
                Site::Runtime(op) => bed.runtime.fail_times(op, mode, 1),
                Site::Proxy(op) | Site::Switch(op) => bed.proxy.fail_times(op, mode, 1),
                Site::Store(op) => *bed.store.fail.borrow_mut() = Some(op),
                Site::Probe => {
                    if mode != Mode::Hang {
                        continue;
                    }
                    bed.probe = FakeProbe::Hang;
                }
            }
            if let (Site::Store(_), Mode::Timeout | Mode::Hang | Mode::ActThenFail) = (site, mode) {
                continue; // the state file fails at once or not at all
            }
            let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("{case}: succeeded") };
            assert_eq!(f.failed.step.as_str(), step_name, "{case}: {}", f.failed);
            assert!(!f.interrupted, "{case}");
            let unanswered_change = matches!(site, Site::Proxy("create") | Site::Switch("update"))
                && matches!(mode, Mode::Timeout | Mode::Hang);
            if unanswered_change {
                assert!(!f.rollback.is_complete(), "{case}: an unanswered change may still land");
                assert!(
                    f.rollback.leftovers.iter().all(|l| l.to_string().contains("may still land")),
                    "{case}: {:?}",
                    f.rollback
                );
                bed.proxy.heal();
                let r = bed.prune().await;
                assert!(r.failures.is_empty(), "{case}: {r:?}");
            } else {
                assert!(f.rollback.is_complete(), "{case}: {:?}", f.rollback);
            }
            match &first {
                None => bed.assert_nothing_left(),
                Some(first) => {
                    bed.assert_host(DOMAIN, &first.container);
                    assert_eq!(bed.runtime.containers.borrow().len(), 1, "{case}");
                    bed.assert_consistent();
                }
            }
            let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
            assert_eq!(d.status, DeployStatus::Failed, "{case}");
            assert!(d.error.as_deref().unwrap().starts_with(&format!("{step_name} failed")), "{case}: {:?}", d.error);
            *bed.store.fail.borrow_mut() = None;
        }
    }
}

/// The retire step after a healthy deploy: its failures never undo the deploy; they are
/// warnings and leftovers, and prune finishes them.
#[tokio::test(start_paused = true)]
async fn a_retire_that_fails_keeps_the_deploy_and_leaves_the_old_container_to_prune() {
    for mode in [Mode::Error, Mode::Timeout, Mode::Hang, Mode::ActThenFail] {
        let bed = Bed::new();
        let first = bed.ok("latest").await;
        bed.runtime.fail_times("remove", mode, 1);
        let second = bed.ok("latest").await;
        bed.assert_host(DOMAIN, &second.container);
        if mode != Mode::ActThenFail {
            assert!(!second.leftovers.is_empty(), "{mode:?}");
            assert!(bed.runtime.has(&first.container), "{mode:?}");
        }
        bed.runtime.heal();
        let r = bed.prune().await;
        assert!(r.failures.is_empty(), "{mode:?}: {r:?}");
        assert!(!bed.runtime.has(&first.container), "{mode:?}");
        bed.assert_consistent();
    }
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_hangs_is_cut_off_and_reported_as_a_leftover() {
    let bed = Bed::new();
    bed.proxy.fail("create", Mode::Error);
    bed.runtime.fail("remove", Mode::Hang);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(!f.rollback.is_complete());
    assert!(f.rollback.leftovers[0].to_string().contains("no answer within"), "{:?}", f.rollback);
    assert!(FAKE_TIMEOUT < Duration::from_secs(120));
}

/// Issue 12: after retire, only the last `keep_images` digests of a live slot stay; an image a
/// container uses (managed or not) and one of a repository the config does not name are never
/// deleted.
#[tokio::test]
async fn images_no_container_uses_go_after_retire_except_the_slots_last_digests() {
    let bed = Bed::new();
    let mut req = request("latest", 3);
    for n in 1..=6 {
        req.image_override = Some(format!("shop@sha256:d{n}"));
        assert!(matches!(bed.deployer().deploy(&req).await.unwrap(), DeployOutcome::Succeeded(_)));
    }
    let ids: Vec<String> = bed.runtime.images.borrow().keys().cloned().collect();
    assert_eq!(ids, ["img-sha256:d4", "img-sha256:d5", "img-sha256:d6"], "keep_images = 3, newest first");
    // Someone else's image, an image that is also another repository's, and one a container
    // outside tiny-forge uses.
    let other = |id: &str, digests: &[&str]| crate::engine::ImageInfo {
        id: id.into(),
        repo_digests: digests.iter().map(|d| (*d).to_owned()).collect(),
        repo_tags: Vec::new(),
        size: 10,
    };
    bed.runtime.images.borrow_mut().insert("img-x".into(), other("img-x", &["unrelated@sha256:x"]));
    bed.runtime.images.borrow_mut().insert("img-y".into(), other("img-y", &["shop@sha256:y", "mirror/shop@sha256:y"]));
    bed.runtime.images.borrow_mut().insert("img-sha256:z".into(), other("img-sha256:z", &["shop@sha256:z"]));
    bed.runtime.add("bystander", &[]);
    bed.runtime.containers.borrow_mut().get_mut("bystander").unwrap().image = "shop@sha256:z".into();
    req.image_override = Some("shop@sha256:d7".into());
    bed.deployer().deploy(&req).await.unwrap();
    let ids: Vec<String> = bed.runtime.images.borrow().keys().cloned().collect();
    assert_eq!(ids, ["img-sha256:d5", "img-sha256:d6", "img-sha256:d7", "img-sha256:z", "img-x", "img-y"]);
    // A rollback to a kept digest needs no pull from a registry that is gone.
    bed.runtime.fail("pull", Mode::Error);
    assert!(bed.runtime.images.borrow().contains_key("img-sha256:d5"));
}

#[tokio::test]
async fn prune_reports_the_bytes_it_frees_and_a_dry_run_the_bytes_it_would() {
    let bed = Bed::new();
    let mut req = request("latest", 3);
    req.stage.keep_images = 5;
    for n in 1..=4 {
        req.image_override = Some(format!("shop@sha256:d{n}"));
        bed.deployer().deploy(&req).await.unwrap();
    }
    assert_eq!(bed.runtime.images.borrow().len(), 4, "keep_images = 5 kept them all");
    let mut prune = PruneRequest {
        stages: vec![stage(3)],
        older_than: None,
        include_default: false,
        dry_run: true,
        history_retention: Duration::from_secs(86_400),
    };
    let dry = bed.deployer().prune(&prune).await.unwrap();
    assert_eq!(dry.bytes_freed, 1 << 20, "with keep_images = 3, one image goes");
    assert_eq!(dry.actions.iter().filter(|a| a.starts_with("delete image shop@sha256:d1")).count(), 1, "{dry:?}");
    assert_eq!(bed.runtime.images.borrow().len(), 4, "a dry run deletes nothing");
    prune.dry_run = false;
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert_eq!(done.bytes_freed, 1 << 20);
    assert!(!bed.runtime.images.borrow().contains_key("img-sha256:d1"));
    assert_eq!(bed.deployer().prune(&prune).await.unwrap().bytes_freed, 0, "nothing more the second time");
}

#[tokio::test]
async fn images_of_a_repository_a_running_deploy_pulls_from_are_left_alone() {
    let bed = Bed::new();
    bed.runtime.images.borrow_mut().insert(
        "img-old".into(),
        crate::engine::ImageInfo {
            id: "img-old".into(),
            repo_digests: vec!["shop@sha256:old".into()],
            repo_tags: Vec::new(),
            size: 1,
        },
    );
    bed.store
        .begin_deploy(&NewDeploy {
            slot: slot("other"),
            image: "shop:other".into(),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        })
        .unwrap();
    let tidied = bed.deployer().tidy(&stage(3), None, &bed.state()).await;
    assert!(tidied.notes.iter().any(|n| n.contains("is running")), "{tidied:?}");
    assert!(bed.runtime.images.borrow().contains_key("img-old"));
}

/// Issue 12: `settings.remove_idle_network` removes the stage's network once its last instance
/// is gone; without it the network stays.
#[tokio::test]
async fn the_idle_network_goes_only_when_asked_and_only_when_nothing_is_left() {
    for remove_it in [false, true] {
        let bed = Bed::new();
        let mut st = stage(3);
        st.remove_idle_network = remove_it;
        let mut req = request("latest", 3);
        req.stage = st.clone();
        bed.deployer().deploy(&req).await.unwrap();
        let mut other = req.clone();
        other.tag = Tag::new("b").unwrap();
        bed.deployer().deploy(&other).await.unwrap();
        bed.deployer().remove(&st, &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
        assert!(bed.runtime.networks.borrow().contains(&st.network), "another instance still uses it");
        bed.deployer().remove(&st, &Tag::new("b").unwrap(), LockWait::NoWait).await.unwrap();
        assert_eq!(bed.runtime.networks.borrow().contains(&st.network), !remove_it);
    }
}

/// Issue 12: a redeploy of the digest the slot already runs, with the same settings, deploys
/// nothing (and repairs the host); a changed env, a stopped container or `--force` redeploy.
#[tokio::test]
async fn a_redeploy_of_what_already_runs_does_nothing_unless_something_changed() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let mut req = request("latest", 3);
    req.force = false;
    let DeployOutcome::Succeeded(same) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(same.unchanged);
    assert_eq!(same.container, first.container);
    assert_eq!(bed.runtime.containers.borrow().len(), 1);
    assert_eq!(bed.runtime.calls.borrow().iter().filter(|c| c.starts_with("pull")).count(), 1, "nothing pulled");
    assert_eq!(bed.store.deploy(same.deploy_id).unwrap().unwrap().status, DeployStatus::Succeeded);
    // The host vanished: the no-op repairs it.
    bed.proxy.hosts.borrow_mut().clear();
    let DeployOutcome::Succeeded(repaired) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(repaired.unchanged);
    bed.assert_host(DOMAIN, &first.container);
    // A changed env redeploys.
    req.stage.env.push(("NEW".into(), "1".into()));
    let DeployOutcome::Succeeded(changed) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!changed.unchanged);
    assert_ne!(changed.container, first.container);
    // A stopped container redeploys.
    bed.runtime.containers.borrow_mut().get_mut(&changed.container).unwrap().running = false;
    let DeployOutcome::Succeeded(restarted) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!restarted.unchanged);
    // --force redeploys.
    req.force = true;
    let DeployOutcome::Succeeded(forced) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!forced.unchanged);
    bed.assert_consistent();
}

fn with_hooks(release: bool, on_create: bool, on_remove: bool) -> crate::config::ResolvedStage {
    let mut extra = String::new();
    if release {
        extra.push_str("release = { command = [\"/migrate\"], timeout = \"30s\" }\n");
    }
    if on_create {
        extra.push_str("on_create = { command = [\"/createdb\"] }\n");
    }
    if on_remove {
        extra.push_str("on_remove = { command = [\"/dropdb\"] }\n");
    }
    extra.push_str("env = { DATABASE_URL = \"postgres://db/{slot}\", APP_URL = \"{url}\" }\n");
    stage_with("shop", 3, &extra)
}

fn created(bed: &Bed) -> Vec<String> {
    bed.runtime.calls.borrow().iter().filter(|c| c.starts_with("create ")).cloned().collect()
}

/// Issue 15: the release runs from the digest before the instance is created, `on_create` only
/// on a slot's first deploy, both with the instance's env; their containers never stay.
#[tokio::test]
async fn release_runs_before_the_instance_and_on_create_only_on_a_slots_first_deploy() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(true, true, false);
    let DeployOutcome::Succeeded(first) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let names = created(&bed);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].ends_with("-release") && names[1].ends_with("-on-create"), "{names:?}");
    assert_eq!(names[2], format!("create {}", first.container));
    assert_eq!(bed.runtime.containers.borrow().len(), 1, "one-offs are gone");
    let env = bed.runtime.containers.borrow()[&first.container].labels.clone();
    assert!(env.contains_key(crate::engine::LABEL_STATE));
    let logs = bed.store.logs(first.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "release" && l.message == "boom"), "output streams into the log");
    // A redeploy runs the release, not on_create.
    let DeployOutcome::Succeeded(_) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let names = created(&bed);
    assert_eq!(names.iter().filter(|n| n.ends_with("-on-create")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with("-release")).count(), 2, "{names:?}");
    bed.assert_consistent();
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_hanging_release_fails_the_deploy_and_leaves_nothing() {
    for hang in [false, true] {
        let bed = Bed::new();
        if hang {
            bed.runtime.one_off_hangs.set(true);
        } else {
            bed.runtime.one_off_code.set(4);
        }
        let mut req = request("latest", 3);
        req.stage = with_hooks(true, false, false);
        let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
        assert_eq!(f.failed.step, Step::Release);
        let msg = f.failed.to_string();
        let expected = if hang { "did not finish within 30s" } else { "exited with code 4" };
        assert!(msg.contains(expected) && msg.contains("boom"), "{msg}");
        assert!(f.rollback.is_complete(), "{:?}", f.rollback);
        bed.assert_nothing_left();
        assert!(!created(&bed).iter().any(|c| c.ends_with(&format!("-{}", 1))), "no instance was created");
    }
}

/// Issue 15: the instance knows itself (TF_* env), and `{slot}`/`{url}` are substituted.
#[tokio::test]
async fn the_instance_env_holds_its_own_names_and_substitutions() {
    let stage = with_hooks(false, false, false);
    let tag = Tag::new("Feature/Login").unwrap_or_else(|_| Tag::new("Feature.Login").unwrap());
    let env: std::collections::BTreeMap<String, String> =
        stage.env_for(&tag, "https://x.example").into_iter().collect();
    assert_eq!(env["TF_PROJECT"], "shop");
    assert_eq!(env["TF_TAG"], "Feature.Login");
    assert_eq!(env["TF_URL"], "https://x.example");
    assert_eq!(env["APP_URL"], "https://x.example");
    let slot = &env["TF_SLOT"];
    assert!(slot.starts_with("shop-dev-feature-login"), "{slot}");
    assert!(slot.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{slot}");
    assert_eq!(env["DATABASE_URL"], format!("postgres://db/{slot}"));
    assert_eq!(env["TF_HOST"], stage.host_name(&tag));
}

/// Issue 15: a failed `on_remove` is reported (a leftover, exit 3 for `remove`), the instance
/// still goes, and prune runs the hook again.
#[tokio::test]
async fn a_failed_on_remove_is_a_leftover_the_instance_still_goes_and_prune_retries_it() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, false, true);
    bed.deployer().deploy(&req).await.unwrap();
    bed.runtime.one_off_code.set(1);
    let r = bed.deployer().remove(&req.stage, &req.tag, LockWait::NoWait).await.unwrap();
    assert!(matches!(r.leftovers.as_slice(), [Leftover::Hook { hook, .. }] if hook == "on_remove"), "{r:?}");
    assert!(bed.rows().is_empty(), "the instance went anyway");
    assert_eq!(bed.runtime.containers.borrow().len(), 0, "no instance, no one-off left");
    bed.runtime.one_off_code.set(0);
    let prune = PruneRequest {
        stages: vec![req.stage.clone()],
        older_than: None,
        include_default: false,
        dry_run: false,
        history_retention: Duration::from_secs(86_400),
    };
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    assert!(done.actions.iter().any(|a| a.contains("on_remove")), "{done:?}");
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
}

/// A deploy of `digest` to slot `latest` of a stage on the swarm engine.
fn swarm_request(digest: &str) -> DeployRequest {
    DeployRequest {
        stage: stage_with("shop", 3, "engine = { kind = \"swarm\" }"),
        image_override: Some(format!("shop@{digest}")),
        ..request("latest", 3)
    }
}

const SERVICE: &str = "tfs-shop-dev-latest";

impl Bed {
    async fn swarm_deploy(&self, digest: &str) -> DeployOutcome {
        self.deployer().deploy(&swarm_request(digest)).await.unwrap()
    }

    fn service_image(&self) -> Option<String> {
        self.runtime.services.borrow().get(SERVICE).map(|s| s.image.clone())
    }
}

#[tokio::test]
async fn swarm_a_new_slot_is_a_service_and_a_redeploy_updates_it_in_place() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.swarm_deploy("sha256:aaa").await else { panic!("first failed") };
    assert_eq!(first.container, SERVICE);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"));
    let labels = bed.runtime.services.borrow()[SERVICE].labels.clone();
    assert_eq!(labels.get(crate::engine::LABEL_SLOT).map(String::as_str), Some("shop/dev/latest"));
    bed.assert_host(DOMAIN, SERVICE);
    assert!(bed.runtime.containers.borrow().is_empty(), "no container of our own on swarm");

    let DeployOutcome::Succeeded(second) = bed.swarm_deploy("sha256:bbb").await else { panic!("update failed") };
    assert_eq!(second.container, SERVICE);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:bbb"));
    assert_eq!(bed.runtime.services.borrow()[SERVICE].update, Some(crate::engine::UpdateState::Completed));
    let rows = bed.rows();
    assert_eq!(rows.len(), 1, "the replaced row goes, the service stays: {rows:?}");
    assert_eq!((rows[0].deploy_id, rows[0].status), (second.deploy_id, InstanceStatus::Live));
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_an_update_swarm_rolled_back_is_a_failed_deploy_and_the_slot_keeps_serving() {
    let bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let before = bed.rows();
    bed.runtime.swarm.set(crate::testing::SwarmBehaviour::RollsBack);
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:bbb").await else {
        panic!("a rolled-back update succeeded")
    };
    assert_eq!(f.failed.step, Step::Health);
    assert!(f.failed.to_string().contains("did not complete the update"), "{}", f.failed);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"));
    assert_eq!(bed.rows().iter().map(|r| r.id).collect::<Vec<_>>(), before.iter().map(|r| r.id).collect::<Vec<_>>());
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_a_task_that_fails_ends_the_deploy_with_its_exit_code_and_a_new_service_goes() {
    let bed = Bed::new();
    bed.runtime.swarm.set(crate::testing::SwarmBehaviour::TaskFails(3));
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:aaa").await else { panic!("succeeded") };
    assert!(
        matches!(&f.failed.cause, StepError::Health(crate::health::HealthError::Exited { code: 3, .. })),
        "{}",
        f.failed
    );
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert!(bed.runtime.services.borrow().is_empty(), "the service it created is removed");
    bed.assert_nothing_left();
}

#[tokio::test(start_paused = true)]
async fn swarm_an_update_whose_tasks_fail_our_probe_is_taken_back_to_the_previous_spec() {
    let mut bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let before = bed.rows();
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:bbb").await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Health);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"), "Swarm's rollback, asked for by the undo");
    assert!(bed.runtime.calls.borrow().iter().any(|c| c == &format!("rollback_service {SERVICE}")));
    assert_eq!(bed.rows().iter().map(|r| r.id).collect::<Vec<_>>(), before.iter().map(|r| r.id).collect::<Vec<_>>());
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_the_plan_of_a_redeploy_keeps_the_host_on_the_service_that_swarm_updates() {
    let bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let plan = bed.deployer().plan_deploy(&swarm_request("sha256:bbb")).await.unwrap();
    assert_eq!(plan.running.as_deref(), Some(SERVICE));
    assert!(plan.proxy.starts_with(&format!("keep proxy host {DOMAIN} on service {SERVICE}")), "{}", plan.proxy);
    assert!(!plan.unchanged);
}

mod could_not_look;
mod image_gc;
mod no_op;
mod one_offs;
