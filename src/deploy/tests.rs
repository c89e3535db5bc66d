//! The saga against fakes: every step failed in turn, and every compensation checked.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::config::ProbeAddress;
use crate::domain::{DeployStatus, InstanceStatus, ProjectName, StageName, Tag, Trigger};
use crate::engine::{ContainerInfo, ContainerSpec, PullProgress, PulledImage, Removal, RuntimeError};
use crate::engine::{RegistryAuth, RestartPolicy};
use crate::health::{HealthPolicy, ProbeResult};
use crate::proxy::{Deleted, ProxyError, Upstream};
use crate::report::{Event, Step};
use crate::store::{Filter, SqliteStore};

/// How a fake fails an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Answers an error at once.
    Error,
    /// Answers that it timed out.
    Timeout,
    /// Never answers.
    Hang,
}

#[derive(Default)]
struct FakeRuntime {
    fail: RefCell<Option<&'static str>>,
    mode: Cell<Option<Mode>>,
    exit_at_start: Cell<Option<i64>>,
    containers: RefCell<BTreeMap<String, bool>>,
    calls: RefCell<Vec<String>>,
}

impl FakeRuntime {
    async fn check(&self, op: &'static str, subject: &str) -> Result<(), RuntimeError> {
        self.calls.borrow_mut().push(format!("{op} {subject}"));
        if *self.fail.borrow() == Some(op) {
            match self.mode.get().unwrap_or(Mode::Error) {
                Mode::Error => {
                    return Err(RuntimeError::Engine {
                        op,
                        subject: subject.into(),
                        status: 500,
                        message: "injected".into(),
                    });
                }
                Mode::Timeout => {
                    return Err(RuntimeError::Unreachable { message: "injected: request timed out".into() });
                }
                Mode::Hang => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn pull(
        &self,
        image: &str,
        _: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError> {
        self.check("pull", image).await?;
        progress(PullProgress { layer: "l1".into(), status: "Pull complete".into(), current: None, total: None });
        Ok(PulledImage { digest: "sha256:feed".into(), reference: "shop@sha256:feed".into() })
    }
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        self.check("network", name).await.map(|()| false)
    }
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        // The engine creates the container even when the caller fails right after.
        self.containers.borrow_mut().insert(spec.name.clone(), false);
        self.check("create", &spec.name).await?;
        Ok(spec.name.clone())
    }
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.check("start", id).await?;
        self.containers.borrow_mut().insert(id.into(), true);
        Ok(())
    }
    async fn inspect(&self, id: &str, _: &str) -> Result<Option<ContainerInfo>, RuntimeError> {
        self.check("inspect", id).await?;
        Ok(self.containers.borrow().get(id).map(|_| ContainerInfo {
            id: id.into(),
            name: id.into(),
            state: "running".into(),
            exit_code: None,
            ip: Some("10.0.0.2".parse().unwrap()),
            labels: BTreeMap::new(),
            image: String::new(),
        }))
    }
    async fn wait_exit(&self, _: &str) -> Result<i64, RuntimeError> {
        match self.exit_at_start.get() {
            Some(code) => Ok(code),
            None => std::future::pending().await,
        }
    }
    async fn logs_tail(&self, _: &str, _: usize) -> Result<Vec<String>, RuntimeError> {
        Ok(vec!["boom".into()])
    }
    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError> {
        self.check("remove", id).await?;
        Ok(if self.containers.borrow_mut().remove(id).is_some() { Removal::Removed } else { Removal::AlreadyGone })
    }
    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        Ok(Vec::new())
    }
}

type AfterSwitch = Box<dyn Fn(&FakeProxy)>;

#[derive(Default)]
struct FakeProxy {
    fail: RefCell<Option<&'static str>>,
    mode: Cell<Option<Mode>>,
    /// Runs after a successful switch (to inject a failure after the proxy step).
    after_switch: RefCell<Option<AfterSwitch>>,
    hosts: RefCell<BTreeMap<String, String>>,
    next: Cell<u32>,
}

impl FakeProxy {
    async fn check(&self, op: &'static str) -> Result<(), ProxyError> {
        if *self.fail.borrow() == Some(op) {
            match self.mode.get().unwrap_or(Mode::Error) {
                Mode::Error => {
                    return Err(ProxyError::Refused {
                        op,
                        host: "h".into(),
                        status: 500,
                        message: "Internal Error".into(),
                    });
                }
                Mode::Timeout => {
                    return Err(ProxyError::Unreachable {
                        url: "http://npm".into(),
                        message: "no answer within 10s".into(),
                    });
                }
                Mode::Hang => std::future::pending::<()>().await,
            }
        }
        Ok(())
    }
}

impl Proxy for FakeProxy {
    async fn create(&self, _: &str, up: &Upstream) -> Result<Option<String>, ProxyError> {
        self.check("create").await?;
        self.next.set(self.next.get() + 1);
        let id = self.next.get().to_string();
        self.hosts.borrow_mut().insert(id.clone(), up.name.clone());
        Ok(Some(id))
    }
    async fn verify(&self, _: Option<&str>, domain: &str, _: &Upstream) -> Result<String, ProxyError> {
        if *self.fail.borrow() == Some("verify") && self.mode.get().is_none() {
            return Err(ProxyError::Offline { host: domain.into(), message: "nginx -t failed".into() });
        }
        self.check("verify").await?;
        Ok(format!("http://{domain}"))
    }
    async fn list_managed(&self) -> Result<Vec<(String, String)>, ProxyError> {
        Ok(self.hosts.borrow().keys().map(|k| (k.clone(), format!("host-{k}"))).collect())
    }
    async fn check(&self) -> Result<String, ProxyError> {
        Ok(String::new())
    }
    async fn switch(&self, host_id: &str, _: &str, up: &Upstream) -> Result<(), ProxyError> {
        self.check("switch").await?;
        let id = host_id.to_owned();
        self.hosts.borrow_mut().insert(id.clone(), up.name.clone());
        if let Some(f) = self.after_switch.borrow_mut().take() {
            f(self);
        }
        Ok(())
    }
    async fn delete(&self, host_id: &str, _: &str) -> Result<Deleted, ProxyError> {
        self.check("delete").await?;
        Ok(if self.hosts.borrow_mut().remove(host_id).is_some() { Deleted::Deleted } else { Deleted::AlreadyGone })
    }
}

struct FakeProbe(bool);

impl Probe for FakeProbe {
    async fn probe(&self, _: &str, _: Duration) -> ProbeResult {
        ProbeResult { passed: self.0, detail: if self.0 { "200 OK" } else { "500 Internal Server Error" }.into() }
    }
}

#[derive(Default)]
struct Events(RefCell<Vec<Event>>);

impl Reporter for Events {
    fn report(&self, _: i64, e: &Event) {
        self.0.borrow_mut().push(e.clone());
    }
}

fn stage(max_instances: u32) -> ResolvedStage {
    let text = format!(
        "[projects.shop]\nimage = \"shop\"\nport = 8080\nmax_instances = {max_instances}\n[projects.shop.stages.dev]\n[projects.shop.stages.dev.health]\nstart_period = \"0s\"\ninterval = \"1s\"\n"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, text).unwrap();
    let c = crate::config::load(&path).unwrap();
    let r = c.resolve(&ProjectName::new("shop").unwrap(), &StageName::new("dev").unwrap()).unwrap();
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
    }
}

struct Bed {
    runtime: FakeRuntime,
    proxy: FakeProxy,
    store: SqliteStore,
    probe: FakeProbe,
    events: Events,
    dir: tempfile::TempDir,
}

impl Bed {
    fn new() -> Self {
        Self {
            runtime: FakeRuntime::default(),
            proxy: FakeProxy::default(),
            store: SqliteStore::in_memory().unwrap(),
            probe: FakeProbe(true),
            events: Events::default(),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    async fn deploy(&self, tag: &str, max: u32) -> DeployOutcome {
        Deployer::new(&self.runtime, &self.proxy, &self.store, &self.probe, self.dir.path().to_path_buf())
            .with_reporter(&self.events)
            .deploy(&request(tag, max))
            .await
            .unwrap()
    }

    #[track_caller]
    fn assert_nothing_left(&self) {
        assert!(self.runtime.containers.borrow().is_empty(), "containers left: {:?}", self.runtime.containers.borrow());
        assert!(self.proxy.hosts.borrow().is_empty(), "hosts left: {:?}", self.proxy.hosts.borrow());
        assert!(self.store.instances(&Filter::default()).unwrap().is_empty(), "instance rows left");
    }
}

#[tokio::test]
async fn happy_path_leaves_a_live_instance_and_a_succeeded_deploy_with_a_log_per_step() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(ok) = bed.deploy("latest", 3).await else { panic!("failed") };
    assert_eq!(ok.url, "http://stage-dev-shop.localhost");
    let inst = bed.store.instances(&Filter::default()).unwrap();
    assert_eq!(inst.len(), 1);
    assert_eq!(inst[0].status, InstanceStatus::Live);
    assert_eq!(inst[0].proxy_host_id.as_deref(), Some("1"));
    let d = bed.store.deploy(ok.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Succeeded);
    assert_eq!(d.digest.as_deref(), Some("sha256:feed"));
    let logs = bed.store.logs(ok.deploy_id, 0).unwrap();
    for step in ["lock", "pull", "network", "create", "start", "health", "proxy", "finish", "retire"] {
        assert!(logs.iter().any(|l| l.step == step && l.message.contains("done in")), "no finished entry for {step}");
    }
}

#[tokio::test]
async fn each_failing_step_is_rolled_back_completely() {
    for op in ["pull", "network", "create", "start", "inspect"] {
        let bed = Bed::new();
        *bed.runtime.fail.borrow_mut() = Some(op);
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
    bed.probe = FakeProbe(false);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Health);
    assert_eq!(bed.proxy.next.get(), 0, "no host was ever created");
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
async fn a_host_that_does_not_come_online_is_deleted_with_the_container() {
    let bed = Bed::new();
    *bed.proxy.fail.borrow_mut() = Some("verify");
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(f.failed.to_string().contains("offline"), "{}", f.failed);
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_switch_that_does_not_come_online_is_switched_back() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.deploy("latest", 3).await else { panic!() };
    *bed.proxy.fail.borrow_mut() = Some("verify");
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert!(f.rollback.is_complete());
    assert_eq!(bed.proxy.hosts.borrow().get("1"), Some(&first.container), "switched back");
    assert_eq!(bed.runtime.containers.borrow().len(), 1);
}

#[tokio::test]
async fn proxy_failure_removes_the_container() {
    let bed = Bed::new();
    *bed.proxy.fail.borrow_mut() = Some("create");
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_failing_compensation_does_not_stop_the_others_and_is_reported() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe(true);
    *bed.runtime.fail.borrow_mut() = Some("remove");
    *bed.proxy.fail.borrow_mut() = Some("create");
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert!(!f.rollback.is_complete());
    assert!(f.rollback.leftovers[0].contains("container tf-shop-dev-latest-1"), "{:?}", f.rollback);
    let rows = bed.store.instances(&Filter::default()).unwrap();
    assert_eq!(rows[0].status, InstanceStatus::Leftover, "kept for prune, never live");
    let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Failed);
    assert!(d.error.unwrap().contains("rollback incomplete"));
}

#[tokio::test]
async fn when_the_proxy_cannot_be_switched_back_the_new_container_is_kept_and_reported() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.deploy("latest", 3).await else { panic!() };
    // The switch works, then a signal arrives and switching back fails.
    let (handle, cancel) = CancelHandle::new();
    *bed.proxy.after_switch.borrow_mut() = Some(Box::new(move |p: &FakeProxy| {
        handle.cancel();
        *p.fail.borrow_mut() = Some("switch");
    }));
    let DeployOutcome::Failed(f) =
        Deployer::new(&bed.runtime, &bed.proxy, &bed.store, &bed.probe, bed.dir.path().to_path_buf())
            .with_cancel(cancel)
            .deploy(&request("latest", 3))
            .await
            .unwrap()
    else {
        panic!()
    };
    assert!(!f.rollback.is_complete());
    let new_container = format!("tf-shop-dev-latest-{}", f.deploy_id);
    assert!(
        bed.runtime.containers.borrow().contains_key(&new_container),
        "a host must never point at a removed container"
    );
    assert!(bed.runtime.containers.borrow().contains_key(&first.container), "the old instance is untouched");
    let rows = bed.store.instances(&Filter::default()).unwrap();
    assert_eq!(rows.iter().filter(|r| r.status == InstanceStatus::Leftover).count(), 1);
}

#[tokio::test]
async fn redeploy_of_an_occupied_slot_switches_the_host_and_retires_the_old_container() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.deploy("latest", 3).await else { panic!() };
    let DeployOutcome::Succeeded(second) = bed.deploy("latest", 3).await else { panic!() };
    assert_eq!(bed.proxy.hosts.borrow().get("1"), Some(&second.container), "host switched, not recreated");
    assert_eq!(bed.proxy.next.get(), 1);
    assert!(!bed.runtime.containers.borrow().contains_key(&first.container), "old container retired");
    assert_eq!(bed.store.instances(&Filter::default()).unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn failed_redeploy_switches_nothing_and_keeps_the_old_instance() {
    let mut bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.deploy("latest", 3).await else { panic!() };
    bed.probe = FakeProbe(false);
    let DeployOutcome::Failed(_) = bed.deploy("latest", 3).await else { panic!() };
    assert_eq!(bed.proxy.hosts.borrow().get("1"), Some(&first.container));
    assert!(bed.runtime.containers.borrow().contains_key(&first.container));
    let rows = bed.store.instances(&Filter::default()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, InstanceStatus::Live);
}

#[tokio::test]
async fn max_instances_evicts_the_oldest_but_never_the_new_one() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(a) = bed.deploy("a", 2).await else { panic!() };
    bed.deploy("b", 2).await;
    let DeployOutcome::Succeeded(c) = bed.deploy("c", 2).await else { panic!() };
    let tags: Vec<String> = bed.store.instances(&Filter::default()).unwrap().into_iter().map(|i| i.tag).collect();
    assert_eq!(tags, ["b", "c"]);
    assert!(!bed.runtime.containers.borrow().contains_key(&a.container));
    assert!(bed.runtime.containers.borrow().contains_key(&c.container));
    assert_eq!(bed.proxy.hosts.borrow().len(), 2, "a's host deleted");
}

#[tokio::test]
async fn cancellation_rolls_back_and_marks_the_deploy_interrupted() {
    let bed = Bed::new();
    bed.runtime.exit_at_start.set(None);
    let (handle, cancel) = CancelHandle::new();
    // Never healthy, so the deploy waits in the health step until cancelled.
    let probe = FakeProbe(false);
    let deployer =
        Deployer::new(&bed.runtime, &bed.proxy, &bed.store, &probe, bed.dir.path().to_path_buf()).with_cancel(cancel);
    let mut req = request("latest", 3);
    req.stage.health.retries = 1000;
    let run = deployer.deploy(&req);
    let stop = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.cancel();
    };
    let (outcome, ()) = tokio::join!(run, stop);
    let DeployOutcome::Failed(f) = outcome.unwrap() else { panic!() };
    assert!(f.interrupted);
    bed.assert_nothing_left();
    assert_eq!(bed.store.deploy(f.deploy_id).unwrap().unwrap().status, DeployStatus::Interrupted);
}

#[tokio::test]
async fn a_busy_lock_fails_before_anything_is_recorded() {
    let bed = Bed::new();
    let path = bed.dir.path().join("shop.dev.lock");
    let _held = crate::lock::StageLock::acquire(&path, "shop/dev", LockWait::NoWait).await.unwrap();
    let r = Deployer::new(&bed.runtime, &bed.proxy, &bed.store, &bed.probe, bed.dir.path().to_path_buf())
        .deploy(&request("latest", 3))
        .await;
    assert!(matches!(r, Err(DeployError::Lock(crate::lock::LockError::Busy { .. }))));
    assert!(bed.store.deploys(&Filter::default(), 10).unwrap().is_empty());
}

#[tokio::test]
async fn an_abandoned_deploy_is_rolled_back_by_the_next_one() {
    let bed = Bed::new();
    // A deploy that died after creating its container.
    let slot = crate::domain::Slot {
        project: ProjectName::new("shop").unwrap(),
        stage: StageName::new("dev").unwrap(),
        tag: Tag::new("latest").unwrap(),
    };
    let dead = bed
        .store
        .begin_deploy(&crate::store::NewDeploy {
            slot: slot.clone(),
            image: "shop:latest".into(),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
        })
        .unwrap();
    bed.store
        .insert_instance(&crate::store::NewInstance {
            deploy_id: dead,
            slot,
            container_name: "tf-shop-dev-latest-1".into(),
            digest: "d".into(),
        })
        .unwrap();
    bed.runtime.containers.borrow_mut().insert("tf-shop-dev-latest-1".into(), true);
    let DeployOutcome::Succeeded(ok) = bed.deploy("latest", 3).await else { panic!() };
    assert!(!bed.runtime.containers.borrow().contains_key("tf-shop-dev-latest-1"));
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    assert_eq!(bed.store.instances(&Filter::default()).unwrap().len(), 1);
    assert_eq!(bed.store.instances(&Filter::default()).unwrap()[0].deploy_id, ok.deploy_id);
}

#[tokio::test]
async fn a_failed_deploy_is_never_reported_as_a_success() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe(false);
    let mut req = request("latest", 3);
    req.stage.health.retries = 1;
    let outcome = Deployer::new(&bed.runtime, &bed.proxy, &bed.store, &bed.probe, bed.dir.path().to_path_buf())
        .with_reporter(&bed.events)
        .deploy(&req)
        .await
        .unwrap();
    assert!(matches!(outcome, DeployOutcome::Failed(_)));
    let events = bed.events.0.borrow();
    assert!(!events.iter().any(|e| matches!(e, Event::StepStarted { step: Step::Finish })));
    assert!(events.iter().any(|e| matches!(e, Event::StepFailed { step: Step::Health, .. })));
    let d = bed.store.deploys(&Filter::default(), 1).unwrap();
    assert_ne!(d[0].status, DeployStatus::Succeeded);
    assert_eq!(d[0].url, None);
}

/// Every step × {error, timeout, hang}: each ends with the rollback complete and the failed step
/// named in history. Hangs are cut by the step bounds (on a paused clock: no waiting).
#[tokio::test(start_paused = true)]
async fn fault_matrix_every_step_by_error_timeout_and_hang_rolls_back_completely() {
    let runtime_ops =
        [("pull", "pull"), ("network", "network"), ("create", "create"), ("start", "start"), ("inspect", "health")];
    let proxy_ops = [("create", "proxy"), ("verify", "proxy")];
    for mode in [Mode::Error, Mode::Timeout, Mode::Hang] {
        for (op, step) in runtime_ops.iter().map(|o| (o, true)).chain(proxy_ops.iter().map(|o| (o, false))) {
            let ((op, step_name), is_runtime) = (op, step);
            let bed = Bed::new();
            if is_runtime {
                *bed.runtime.fail.borrow_mut() = Some(op);
                bed.runtime.mode.set(Some(mode));
            } else {
                *bed.proxy.fail.borrow_mut() = Some(op);
                bed.proxy.mode.set(Some(mode));
            }
            let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("{op} {mode:?}: succeeded") };
            let case = format!("{op} {mode:?}");
            assert_eq!(f.failed.step.as_str(), *step_name, "{case}");
            assert!(f.rollback.is_complete(), "{case}: {:?}", f.rollback);
            assert!(!f.interrupted, "{case}");
            bed.assert_nothing_left();
            let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
            assert_eq!(d.status, DeployStatus::Failed, "{case}");
            assert!(d.error.as_deref().unwrap().starts_with(&format!("{step_name} failed")), "{case}: {:?}", d.error);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_hangs_is_cut_off_and_reported_as_a_leftover() {
    let bed = Bed::new();
    *bed.proxy.fail.borrow_mut() = Some("create");
    *bed.runtime.fail.borrow_mut() = Some("remove");
    bed.runtime.mode.set(Some(Mode::Hang));
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(!f.rollback.is_complete());
    assert!(f.rollback.leftovers[0].contains("no answer within"), "{:?}", f.rollback);
}
