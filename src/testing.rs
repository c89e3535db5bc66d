//! Fakes of the engine and the proxy, for the saga's unit tests and the contract suite
//! (`tests/contract/`), which runs the same behaviour against these and the real adapters, so a
//! fake cannot drift from the real thing unnoticed. Compiled for tests and with the
//! `test-hooks` feature only.
//!
//! Each fake records its calls and can be told to fail one operation in a [`Mode`].

#![allow(clippy::missing_panics_doc, reason = "test support: a poisoned fake may panic")]

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::{
    ContainerInfo, ContainerRuntime, ContainerSpec, EngineLook, ImageInfo, LogStream, LogsRequest, PullProgress,
    PulledImage, RegistryAuth, Removal, RuntimeError,
};
use crate::look::Look;
use crate::proxy::{Deleted, HostAccess, HostView, Marker, Owner, Proxy, ProxyError, Target, Upstream};

/// How a fake fails an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Answers an error at once; nothing is changed.
    Error,
    /// Waits as a client timeout would (10 s, on tokio's clock), then answers that it timed
    /// out; nothing is changed.
    Timeout,
    /// Never answers.
    Hang,
    /// Makes the change, then loses the answer: waits as [`Mode::Timeout`] and answers that it
    /// timed out (the remote did it anyway).
    ActThenFail,
}

/// How long [`Mode::Timeout`] and [`Mode::ActThenFail`] wait before answering.
pub const FAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// One failure to inject: after `skip` calls that work, `op` fails in `mode`, `times` times
/// (then works again).
#[derive(Debug, Clone, Copy)]
struct Fault {
    op: &'static str,
    mode: Mode,
    skip: u32,
    times: u32,
}

#[derive(Debug, Default)]
struct Faults(RefCell<Vec<Fault>>);

impl Faults {
    fn set(&self, op: &'static str, mode: Mode, skip: u32, times: u32) {
        self.0.borrow_mut().push(Fault { op, mode, skip, times });
    }

    fn clear(&self) {
        self.0.borrow_mut().clear();
    }

    /// The mode `op` fails in now, if any (consumes one of its times).
    fn take(&self, op: &str) -> Option<Mode> {
        let mut faults = self.0.borrow_mut();
        let i = faults.iter().position(|f| f.op == op && f.times > 0)?;
        if faults[i].skip > 0 {
            faults[i].skip -= 1;
            return None;
        }
        faults[i].times -= 1;
        Some(faults[i].mode)
    }
}

/// What went wrong, before or after acting.
enum Injected {
    Error,
    TimedOut,
}

/// Applies `mode` around an operation: `Err` before acting (`Error`, `Timeout`, `Hang`), or
/// `Ok(Some(TimedOut))` meaning "act, then answer that it timed out".
async fn before(mode: Option<Mode>) -> Result<Option<Injected>, Injected> {
    match mode {
        None => Ok(None),
        Some(Mode::Error) => Err(Injected::Error),
        Some(Mode::Timeout) => {
            tokio::time::sleep(FAKE_TIMEOUT).await;
            Err(Injected::TimedOut)
        }
        Some(Mode::Hang) => std::future::pending().await,
        Some(Mode::ActThenFail) => Ok(Some(Injected::TimedOut)),
    }
}

/// A container in [`FakeRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeContainer {
    /// Running (started and not exited).
    pub running: bool,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its address.
    pub ip: std::net::IpAddr,
    /// The image it was created from (`repo@digest`).
    pub image: String,
    /// The network it joined.
    pub network: String,
}

/// How the fake swarm answers a service create or update.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SwarmBehaviour {
    /// The new tasks run and pass their health check; an update completes.
    #[default]
    Healthy,
    /// An update is rolled back by Swarm (its new tasks are shut down, none failed on its own).
    RollsBack,
    /// The new task exits with this code; an update is being rolled back.
    TaskFails(i64),
    /// No node satisfies the new task's constraints: it stays pending.
    Unplaceable,
}

/// A service in [`FakeRuntime`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeService {
    /// The image its spec runs.
    pub image: String,
    /// The image before its last update.
    pub previous: Option<String>,
    /// The `ForceUpdate` value (deploy id) of its spec, and of the spec before.
    pub generation: u64,
    /// The generation before its last update.
    pub previous_generation: Option<u64>,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Its version.
    pub version: u64,
    /// Its last update's state.
    pub update: Option<crate::engine::UpdateState>,
    /// Its tasks, newest first.
    pub tasks: Vec<crate::engine::TaskInfo>,
}

/// An in-memory container engine.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    /// Services by name (a swarm stage's slots).
    pub services: RefCell<BTreeMap<String, FakeService>>,
    /// How the fake swarm answers.
    pub swarm: Cell<SwarmBehaviour>,
    faults: Faults,
    /// Exit code every started container exits with at once (`None`: it keeps running).
    pub exit_at_start: Cell<Option<i64>>,
    /// Containers by name.
    pub containers: RefCell<BTreeMap<String, FakeContainer>>,
    /// Every call, as `op subject`.
    pub calls: RefCell<Vec<String>>,
    /// Networks made so far.
    pub networks: RefCell<std::collections::BTreeSet<String>>,
    /// The exit code of one-off containers (`release`, hooks); they end at once.
    pub one_off_code: Cell<i64>,
    /// One-off containers never end.
    pub one_off_hangs: Cell<bool>,
    /// Images by id (`img-<digest>`), as pulls leave them.
    pub images: RefCell<BTreeMap<String, ImageInfo>>,
    /// The next this many creates find the images gone (another run's cleanup took them after
    /// the pull).
    pub images_vanish: Cell<u32>,
    next_ip: Cell<u8>,
}

impl FakeRuntime {
    /// Makes `op` (`pull`, `network`, `create`, `start`, `inspect`, `remove`, `list`) fail in
    /// `mode`, every time.
    pub fn fail(&self, op: &'static str, mode: Mode) {
        self.faults.set(op, mode, 0, u32::MAX);
    }

    /// Makes `op` fail in `mode` the next `times` times.
    pub fn fail_times(&self, op: &'static str, mode: Mode, times: u32) {
        self.faults.set(op, mode, 0, times);
    }

    /// Lets `op` work `skip` more times, then makes it fail in `mode` every time.
    pub fn fail_after(&self, op: &'static str, mode: Mode, skip: u32) {
        self.faults.set(op, mode, skip, u32::MAX);
    }

    /// Makes every operation work again.
    pub fn heal(&self) {
        self.faults.clear();
    }

    /// Does a container of this name exist?
    pub fn has(&self, name: &str) -> bool {
        self.containers.borrow().contains_key(name)
    }

    /// Adds a running container (as another tool, or another state file, would have made it).
    pub fn add(&self, name: &str, labels: &[(&str, &str)]) {
        let ip = self.ip();
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.containers.borrow_mut().insert(
            name.to_owned(),
            FakeContainer { running: true, labels, ip, image: String::new(), network: String::new() },
        );
    }

    /// `repo@digest` or `repo:tag` (whose digest is `sha256:feed`) into (repo, digest).
    fn split(image: &str) -> (String, String) {
        match image.split_once('@') {
            Some((repo, digest)) => (repo.to_owned(), digest.to_owned()),
            None => (image.rsplit_once(':').map_or(image, |(r, _)| r).to_owned(), "sha256:feed".to_owned()),
        }
    }

    /// The id of the image with `digest`.
    pub fn image_id(digest: &str) -> String {
        format!("img-{digest}")
    }

    fn ip(&self) -> std::net::IpAddr {
        self.next_ip.set(self.next_ip.get().wrapping_add(1));
        std::net::IpAddr::from([10, 0, 0, self.next_ip.get().max(2)])
    }

    async fn check(&self, op: &'static str, subject: &str) -> Result<Option<Injected>, RuntimeError> {
        self.calls.borrow_mut().push(format!("{op} {subject}"));
        before(self.faults.take(op)).await.map_err(|i| Self::error(op, subject, &i))
    }

    fn error(op: &'static str, subject: &str, i: &Injected) -> RuntimeError {
        match i {
            Injected::Error => {
                RuntimeError::Engine { op, subject: subject.into(), status: 500, message: "injected".into() }
            }
            Injected::TimedOut => RuntimeError::Unreachable { message: "injected: request timed out".into() },
        }
    }

    fn task(&self, image: &str, generation: u64, state: &str, exit_code: Option<i64>) -> crate::engine::TaskInfo {
        crate::engine::TaskInfo {
            id: format!("task-{generation}"),
            node: "node-1".into(),
            image: image.to_owned(),
            generation,
            state: state.into(),
            desired: if state == "running" { "running" } else { "shutdown" }.into(),
            exit_code,
            message: if exit_code.is_some() { "task: non-zero exit".into() } else { String::new() },
            container: None,
            ip: None,
            gateway: Some(self.ip()),
        }
    }

    fn unplaced_task(&self, image: &str, generation: u64) -> crate::engine::TaskInfo {
        let mut t = self.task(image, generation, "pending", None);
        t.desired = "running".into();
        t.message = "no suitable node (scheduling constraints not satisfied on 1 node)".into();
        t.gateway = None;
        t
    }

    fn service_info(name: &str, s: &FakeService) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            state: if s.tasks.iter().any(|t| t.state == "running") { "running" } else { "pending" }.into(),
            exit_code: None,
            restarts: 0,
            ip: None,
            labels: s.labels.clone(),
            image: s.image.clone(),
            is_service: true,
            created: None,
        }
    }

    fn info(name: &str, c: &FakeContainer, exit_code: Option<i64>) -> ContainerInfo {
        ContainerInfo {
            id: name.into(),
            name: name.into(),
            state: if c.running { "running" } else { "exited" }.into(),
            exit_code: if c.running { None } else { exit_code.or(Some(0)) },
            restarts: 0,
            ip: Some(c.ip),
            labels: c.labels.clone(),
            image: c.image.clone(),
            is_service: false,
            created: None,
        }
    }
}

impl ContainerRuntime for FakeRuntime {
    async fn registry_auth(
        &self,
        _: &str,
        configured: Option<&RegistryAuth>,
    ) -> Result<Option<(String, RegistryAuth)>, String> {
        Ok(configured.map(|a| ("the config".to_owned(), a.clone())))
    }

    async fn pull(
        &self,
        image: &str,
        _: Option<&RegistryAuth>,
        progress: &mut dyn FnMut(PullProgress),
    ) -> Result<PulledImage, RuntimeError> {
        if let Some(i) = self.check("pull", image).await? {
            return Err(Self::error("pull", image, &i));
        }
        progress(PullProgress { layer: "l1".into(), status: "Pull complete".into(), current: None, total: None });
        let (repo, digest) = Self::split(image);
        let reference = format!("{repo}@{digest}");
        let mut images = self.images.borrow_mut();
        let entry = images.entry(Self::image_id(&digest)).or_insert_with(|| ImageInfo {
            id: Self::image_id(&digest),
            repo_digests: Vec::new(),
            repo_tags: Vec::new(),
            size: 1 << 20,
        });
        if !entry.repo_digests.contains(&reference) {
            entry.repo_digests.push(reference.clone());
        }
        Ok(PulledImage { digest, reference })
    }

    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        if let Some(i) = self.check("network", name).await? {
            return Err(Self::error("network", name, &i));
        }
        Ok(self.networks.borrow_mut().insert(name.to_owned()))
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let acted = self.check("create", &spec.name).await?;
        if self.has(&spec.name) {
            return Err(RuntimeError::NameTaken { name: spec.name.clone() });
        }
        if self.images_vanish.get() > 0 {
            self.images_vanish.set(self.images_vanish.get() - 1);
            self.images.borrow_mut().clear();
            return Err(RuntimeError::MissingImage { name: spec.name.clone(), image: spec.image.clone() });
        }
        let ip = self.ip();
        self.containers.borrow_mut().insert(
            spec.name.clone(),
            FakeContainer {
                running: false,
                labels: spec.labels.clone(),
                ip,
                image: spec.image.clone(),
                network: spec.network.clone(),
            },
        );
        match acted {
            Some(i) => Err(Self::error("create", &spec.name, &i)),
            None => Ok(spec.name.clone()),
        }
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let acted = self.check("start", id).await?;
        let exits = self.exit_at_start.get().is_some();
        match self.containers.borrow_mut().get_mut(id) {
            Some(c) => c.running = !exits,
            None => {
                return Err(RuntimeError::Engine {
                    op: "start container",
                    subject: id.into(),
                    status: 404,
                    message: "No such container".into(),
                });
            }
        }
        match acted {
            Some(i) => Err(Self::error("start", id, &i)),
            None => Ok(()),
        }
    }

    async fn inspect(&self, id: &str, _: &str) -> EngineLook<ContainerInfo> {
        match self.check("inspect", id).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("inspect", id, &i)),
            Err(e) => return Look::Unknown(e),
        }
        match self.containers.borrow().get(id) {
            Some(c) => Look::Found(Self::info(id, c, self.exit_at_start.get())),
            None => Look::Absent,
        }
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        self.calls.borrow_mut().push(format!("wait_exit {id}"));
        let one_off =
            self.containers.borrow().get(id).is_some_and(|c| c.labels.contains_key(crate::engine::LABEL_ROLE));
        if one_off {
            if self.one_off_hangs.get() {
                std::future::pending::<()>().await;
            }
            return Ok(self.one_off_code.get());
        }
        match (self.exit_at_start.get(), self.has(id)) {
            (Some(code), true) => Ok(code),
            _ => std::future::pending().await,
        }
    }

    async fn logs_tail(&self, _: &str, _: usize) -> Result<Vec<String>, RuntimeError> {
        Ok(vec!["boom".into()])
    }

    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError> {
        let acted = self.check("remove", id).await?;
        let removed = self.containers.borrow_mut().remove(id).is_some();
        match acted {
            Some(i) => Err(Self::error("remove", id, &i)),
            None if removed => Ok(Removal::Removed),
            None => Ok(Removal::AlreadyGone),
        }
    }

    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        if let Some(i) = self.check("list", "containers").await? {
            return Err(Self::error("list", "containers", &i));
        }
        Ok(self
            .containers
            .borrow()
            .iter()
            .filter(|(_, c)| c.labels.get(crate::engine::LABEL_MANAGED).is_some_and(|v| v == "true"))
            .map(|(n, c)| Self::info(n, c, self.exit_at_start.get()))
            .collect())
    }

    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        if let Some(i) = self.check("list_services", "services").await? {
            return Err(Self::error("list", "services", &i));
        }
        Ok(self.services.borrow().iter().map(|(n, s)| Self::service_info(n, s)).collect())
    }

    async fn resolve_digest(&self, image: &str, _: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        if let Some(i) = self.check("resolve", image).await? {
            return Err(Self::error("resolve", image, &i));
        }
        Ok(Self::split(image).1)
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        Ok(self.images.borrow().values().cloned().collect())
    }

    async fn images_in_use(&self) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        Ok(self
            .containers
            .borrow()
            .values()
            .filter(|c| c.image.contains('@'))
            .map(|c| Self::image_id(&Self::split(&c.image).1))
            .collect())
    }

    async fn remove_image(&self, id: &str, _: &[String]) -> Result<Removal, RuntimeError> {
        if let Some(i) = self.check("remove_image", id).await? {
            return Err(Self::error("remove_image", id, &i));
        }
        if self.images_in_use().await?.contains(id) {
            return Err(RuntimeError::Engine {
                op: "remove image",
                subject: id.into(),
                status: 409,
                message: "image is being used by a container".into(),
            });
        }
        Ok(if self.images.borrow_mut().remove(id).is_some() { Removal::Removed } else { Removal::AlreadyGone })
    }

    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError> {
        if self.containers.borrow().values().any(|c| c.network == name) {
            return Ok(false);
        }
        Ok(self.networks.borrow_mut().remove(name))
    }

    async fn swarm_info(&self) -> Result<crate::engine::SwarmInfo, RuntimeError> {
        Ok(crate::engine::SwarmInfo { state: "active".into(), manager: true, nodes: 1, ready: 1 })
    }

    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        self.ensure_network(name).await
    }

    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo> {
        match self.check("service", name).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("service", name, &i)),
            Err(e) => return Look::Unknown(e),
        }
        match self.services.borrow().get(name) {
            Some(s) => Look::Found(Self::service_info(name, s)),
            None => Look::Absent,
        }
    }

    async fn service(&self, name: &str) -> EngineLook<crate::engine::ServiceInfo> {
        match self.check("service", name).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("service", name, &i)),
            Err(e) => return Look::Unknown(e),
        }
        Look::from_result(Ok(self.services.borrow().get(name).map(|s| crate::engine::ServiceInfo {
            id: name.into(),
            name: name.into(),
            version: s.version,
            generation: s.generation,
            image: s.image.clone(),
            labels: s.labels.clone(),
            update: s.update,
            update_message: s.update.map(|u| format!("{u:?}")),
            replicas: 1,
        })))
    }

    async fn create_service(
        &self,
        spec: &crate::engine::ServiceSpec,
        _: Option<&RegistryAuth>,
    ) -> Result<String, RuntimeError> {
        if let Some(i) = self.check("create_service", &spec.name).await? {
            return Err(Self::error("create_service", &spec.name, &i));
        }
        let task = match self.swarm.get() {
            SwarmBehaviour::TaskFails(code) => self.task(&spec.image, spec.generation, "failed", Some(code)),
            SwarmBehaviour::Unplaceable => self.unplaced_task(&spec.image, spec.generation),
            _ => self.task(&spec.image, spec.generation, "running", None),
        };
        self.services.borrow_mut().insert(
            spec.name.clone(),
            FakeService {
                image: spec.image.clone(),
                previous: None,
                generation: spec.generation,
                previous_generation: None,
                labels: spec.labels.clone(),
                version: 1,
                update: None,
                tasks: vec![task],
            },
        );
        Ok(spec.name.clone())
    }

    async fn update_service(
        &self,
        spec: &crate::engine::ServiceSpec,
        version: u64,
        _: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        use crate::engine::UpdateState;
        if let Some(i) = self.check("update_service", &spec.name).await? {
            return Err(Self::error("update_service", &spec.name, &i));
        }
        let behaviour = self.swarm.get();
        let task = match behaviour {
            SwarmBehaviour::Healthy => self.task(&spec.image, spec.generation, "running", None),
            SwarmBehaviour::RollsBack => self.task(&spec.image, spec.generation, "shutdown", None),
            SwarmBehaviour::TaskFails(code) => self.task(&spec.image, spec.generation, "failed", Some(code)),
            SwarmBehaviour::Unplaceable => self.unplaced_task(&spec.image, spec.generation),
        };
        let mut services = self.services.borrow_mut();
        let Some(s) = services.get_mut(&spec.name) else {
            return Err(RuntimeError::Engine {
                op: "update service",
                subject: spec.name.clone(),
                status: 404,
                message: "service not found".into(),
            });
        };
        if s.version != version {
            return Err(RuntimeError::Engine {
                op: "update service",
                subject: spec.name.clone(),
                status: 500,
                message: "update out of sequence".into(),
            });
        }
        s.version += 1;
        s.labels.clone_from(&spec.labels);
        if behaviour == SwarmBehaviour::Healthy {
            s.previous = Some(std::mem::replace(&mut s.image, spec.image.clone()));
            s.previous_generation = Some(std::mem::replace(&mut s.generation, spec.generation));
            for t in &mut s.tasks {
                t.state = "shutdown".into();
                t.desired = "shutdown".into();
            }
            s.update = Some(UpdateState::Completed);
        } else {
            // Swarm went back to the previous spec on its own.
            s.previous = Some(spec.image.clone());
            s.previous_generation = Some(spec.generation);
            s.update = Some(if behaviour == SwarmBehaviour::RollsBack {
                UpdateState::RollbackCompleted
            } else {
                UpdateState::RollbackStarted
            });
        }
        s.tasks.insert(0, task);
        Ok(())
    }

    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError> {
        if let Some(i) = self.check("rollback_service", name).await? {
            return Err(Self::error("rollback_service", name, &i));
        }
        if let Some(s) = self.services.borrow_mut().get_mut(name)
            && let (Some(previous), Some(generation)) = (s.previous.take(), s.previous_generation.take())
        {
            s.previous = Some(std::mem::replace(&mut s.image, previous));
            s.previous_generation = Some(std::mem::replace(&mut s.generation, generation));
            s.version += 1;
            s.update = Some(crate::engine::UpdateState::RollbackCompleted);
        }
        Ok(())
    }

    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError> {
        if let Some(i) = self.check("remove_service", name).await? {
            return Err(Self::error("remove_service", name, &i));
        }
        Ok(if self.services.borrow_mut().remove(name).is_some() { Removal::Removed } else { Removal::AlreadyGone })
    }

    async fn tasks(&self, name: &str, _: &str) -> Result<Vec<crate::engine::TaskInfo>, RuntimeError> {
        Ok(self.services.borrow().get(name).map(|s| s.tasks.clone()).unwrap_or_default())
    }

    async fn task_logs_tail(&self, _: &str, _: usize) -> Result<Vec<String>, RuntimeError> {
        Ok(vec!["boom".into()])
    }

    async fn image_has_healthcheck(&self, _: &str) -> Result<bool, RuntimeError> {
        Ok(true)
    }

    async fn logs(
        &self,
        id: &str,
        _: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError> {
        if !self.has(id) {
            return Err(RuntimeError::Engine {
                op: "read logs of",
                subject: id.into(),
                status: 404,
                message: "No such container".into(),
            });
        }
        on_line(LogStream::Stdout, "boom");
        Ok(())
    }
}

/// A host in [`FakeProxy`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHost {
    /// Host name.
    pub domain: String,
    /// Whose.
    pub owner: Owner,
    /// Where it forwards.
    pub target: Target,
    /// Why it does not serve (set by the `offline` fault).
    pub problem: Option<String>,
    /// Who may open it.
    pub access: HostAccess,
}

/// An in-memory reverse proxy with ids `1`, `2`, … never reused.
#[derive(Debug, Default)]
pub struct FakeProxy {
    faults: Faults,
    /// Hosts by id.
    pub hosts: RefCell<BTreeMap<String, FakeHost>>,
    next: Cell<u32>,
    /// Every call, as `op subject`.
    pub calls: RefCell<Vec<String>>,
    /// Hosts created or updated from now on come out not serving (NPM's `nginx_online: false`).
    pub offline: Cell<bool>,
    /// How many hosts were ever created.
    pub created: Cell<u32>,
}

impl FakeProxy {
    /// Makes `op` (`find`, `list`, `create`, `update`, `delete`) fail in `mode`, every time.
    pub fn fail(&self, op: &'static str, mode: Mode) {
        self.faults.set(op, mode, 0, u32::MAX);
    }

    /// Makes `op` fail in `mode` the next `times` times.
    pub fn fail_times(&self, op: &'static str, mode: Mode, times: u32) {
        self.faults.set(op, mode, 0, times);
    }

    /// Lets `op` work `skip` more times, then makes it fail in `mode` every time.
    pub fn fail_after(&self, op: &'static str, mode: Mode, skip: u32) {
        self.faults.set(op, mode, skip, u32::MAX);
    }

    /// Makes every operation work again.
    pub fn heal(&self) {
        self.faults.clear();
        self.offline.set(false);
    }

    /// The host serving `domain`.
    pub fn host(&self, domain: &str) -> Option<FakeHost> {
        self.hosts.borrow().values().find(|h| h.domain.eq_ignore_ascii_case(domain)).cloned()
    }

    /// Adds a host as someone else (or another state file) would have.
    pub fn add(&self, domain: &str, owner: Owner, target: Target) -> String {
        self.next.set(self.next.get() + 1);
        let id = self.next.get().to_string();
        self.hosts.borrow_mut().insert(
            id.clone(),
            FakeHost { domain: domain.to_ascii_lowercase(), owner, target, problem: None, access: HostAccess::Public },
        );
        id
    }

    async fn check(&self, op: &'static str, subject: &str) -> Result<Option<Injected>, ProxyError> {
        self.calls.borrow_mut().push(format!("{op} {subject}"));
        before(self.faults.take(op)).await.map_err(|i| Self::error(op, subject, &i))
    }

    fn error(op: &'static str, subject: &str, i: &Injected) -> ProxyError {
        match i {
            Injected::Error => {
                ProxyError::Refused { op, host: subject.into(), status: 500, message: "Internal Error".into() }
            }
            Injected::TimedOut => ProxyError::NoAnswer { url: "http://fake-proxy".into(), after: FAKE_TIMEOUT },
        }
    }

    fn view(id: &str, h: &FakeHost) -> HostView {
        HostView {
            id: id.to_owned(),
            domain: h.domain.clone(),
            owner: h.owner.clone(),
            target: Some(h.target.clone()),
            problem: h.problem.clone(),
            access: h.access.clone(),
        }
    }
}

impl Proxy for FakeProxy {
    fn target(&self, _: &str, upstream: &Upstream) -> Result<Target, ProxyError> {
        Ok(Target { host: upstream.name.clone(), port: upstream.port })
    }

    fn url(&self, domain: &str, _: &Upstream) -> String {
        format!("http://{domain}")
    }

    async fn find(&self, domain: &str) -> crate::proxy::ProxyLook<HostView> {
        match self.check("find", domain).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("find", domain, &i)),
            Err(e) => return Look::Unknown(e),
        }
        Look::from_result(Ok(self
            .hosts
            .borrow()
            .iter()
            .find(|(_, h)| h.domain.eq_ignore_ascii_case(domain))
            .map(|(id, h)| Self::view(id, h))))
    }

    async fn list_marked(&self) -> Result<Vec<HostView>, ProxyError> {
        if let Some(i) = self.check("list", "hosts").await? {
            return Err(Self::error("list", "hosts", &i));
        }
        Ok(self
            .hosts
            .borrow()
            .iter()
            .filter(|(_, h)| h.owner != Owner::Unmarked)
            .map(|(id, h)| Self::view(id, h))
            .collect())
    }

    async fn create(
        &self,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<String, ProxyError> {
        let acted = self.check("create", domain).await?;
        if self.host(domain).is_some() {
            return Err(ProxyError::Refused {
                op: "create",
                host: domain.into(),
                status: 400,
                message: format!("{domain} is already in use"),
            });
        }
        let id = self.add(domain, Owner::Marked(marker.clone()), target.clone());
        self.created.set(self.created.get() + 1);
        if let Some(h) = self.hosts.borrow_mut().get_mut(&id) {
            h.access = access.clone();
        }
        if self.offline.get()
            && let Some(h) = self.hosts.borrow_mut().get_mut(&id)
        {
            h.problem = Some("nginx -t failed".into());
        }
        match acted {
            Some(i) => Err(Self::error("create", domain, &i)),
            None => Ok(id),
        }
    }

    async fn update(
        &self,
        id: &str,
        domain: &str,
        marker: &Marker,
        target: &Target,
        access: &HostAccess,
    ) -> Result<(), ProxyError> {
        let acted = self.check("update", domain).await?;
        match self.hosts.borrow_mut().get_mut(id) {
            Some(h) => {
                h.owner = Owner::Marked(marker.clone());
                h.target = target.clone();
                h.access = access.clone();
                h.problem = self.offline.get().then(|| "nginx -t failed".into());
            }
            None => {
                return Err(ProxyError::Refused {
                    op: "update",
                    host: domain.into(),
                    status: 404,
                    message: "Not Found".into(),
                });
            }
        }
        match acted {
            Some(i) => Err(Self::error("update", domain, &i)),
            None => Ok(()),
        }
    }

    async fn delete(&self, id: &str, domain: &str) -> Result<Deleted, ProxyError> {
        let acted = self.check("delete", domain).await?;
        let removed = self.hosts.borrow_mut().remove(id).is_some();
        match acted {
            Some(i) => Err(Self::error("delete", domain, &i)),
            None if removed => Ok(Deleted::Deleted),
            None => Ok(Deleted::AlreadyGone),
        }
    }

    async fn check(&self) -> Result<String, ProxyError> {
        Ok(format!("fake proxy with {} hosts", self.hosts.borrow().len()))
    }
}
