//! The saga, the undo executor, recovery and prune against the fakes of [`crate::testing`]:
//! every step failed in turn, in every mode, and the outside world (the fakes' containers and
//! hosts) checked afterwards, not only the state file.
//!
//! This file holds the shared bed: [`FakeProbe`], [`FlakyStore`], [`Events`], the stage and
//! request builders, [`Bed`] with its `#[track_caller]` assertions, and the swarm helpers. The
//! suites are its children, one per file, each reading the bed through `use super::*;`.

use std::cell::RefCell;
use std::time::Duration;

use super::*;
use crate::domain::Address;
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

/// A probe that passes, fails, or never answers; the `Route…` ones pass the health check and
/// then answer the verify step's requests through the proxy badly.
#[derive(Clone, Copy)]
enum FakeProbe {
    Pass,
    Fail,
    Hang,
    /// The proxy's route answers 500.
    Route500,
    /// Nothing listens where the proxy is said to be.
    RouteRefused,
    /// The proxy's route never answers.
    RouteHangs,
}

impl Probe for FakeProbe {
    async fn probe(&self, _: &str, _: Duration) -> ProbeResult {
        match self {
            Self::Pass | Self::Route500 | Self::RouteRefused | Self::RouteHangs => {
                ProbeResult { passed: true, detail: "200 OK".into() }
            }
            Self::Fail => ProbeResult { passed: false, detail: "500 Internal Server Error".into() },
            Self::Hang => std::future::pending().await,
        }
    }

    async fn fetch(&self, _: &str, _: Option<std::net::SocketAddr>, timeout: Duration) -> crate::health::Answer {
        use crate::health::Answer;
        match self {
            Self::Pass => Answer { status: Some(200), detail: "200 OK".into() },
            Self::Fail | Self::Route500 => Answer { status: Some(500), detail: "500 Internal Server Error".into() },
            Self::RouteRefused => Answer { status: None, detail: "connection refused".into() },
            Self::Hang | Self::RouteHangs => {
                tokio::time::sleep(timeout).await;
                Answer { status: None, detail: format!("timed out after {}", humantime::format_duration(timeout)) }
            }
        }
    }
}

/// A prune of `stage` with the defaults (no `--older-than`, default slots spared, not a dry
/// run, a day of history).
fn prune_of(stage: crate::config::ResolvedStage) -> PruneRequest {
    PruneRequest {
        stages: vec![stage],
        older_than: None,
        include_default: false,
        dry_run: false,
        history_retention: Duration::from_secs(86_400),
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
    assert_eq!(r.probe_address, Address::Ip);
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
        verify: true,
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
        let req = prune_of(stage(3));
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

fn slot(tag: &str) -> Slot {
    Slot {
        project: ProjectName::new("shop").unwrap(),
        stage: StageName::new("dev").unwrap(),
        tag: Tag::new(tag).unwrap(),
    }
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

mod could_not_look;
mod day_two;
mod fault_matrix;
mod hooks;
mod image_gc;
mod lifecycle;
mod no_op;
mod one_offs;
mod recovery;
mod saga;
mod swarm;
mod verify;
