//! [`FakeRuntime`]: an in-memory container engine (containers, images, networks, services and
//! their tasks) that records its calls and fails an operation when told to.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;

use super::{Faults, Injected, Mode, before};
use crate::engine::{
    ContainerInfo, ContainerSpec, Containers, EngineLook, ImageInfo, Images, LogStream, LogsRequest, Networks,
    PullProgress, PulledImage, RegistryAuth, Removal, RuntimeError, Services,
};
use crate::look::Look;

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
    /// What [`Containers::vitals`] answers once asked this many more times (then on): a
    /// container that crashes, restarts or is OOM-killed after it was healthy.
    pub sickens: Cell<Option<(u32, crate::engine::Vitals)>>,
}

impl FakeRuntime {
    /// Makes `op` (`pull`, `network`, `create`, `start`, `inspect`, `vitals`, `remove`, `list`) fail in
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
            addresses: BTreeMap::new(),
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
            addresses: BTreeMap::from([(c.network.clone(), c.ip)]),
            labels: c.labels.clone(),
            image: c.image.clone(),
            is_service: false,
            created: None,
        }
    }
}

impl Images for FakeRuntime {
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

    async fn resolve_digest(&self, image: &str, _: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        if let Some(i) = self.check("resolve", image).await? {
            return Err(Self::error("resolve", image, &i));
        }
        Ok(Self::split(image).1)
    }

    async fn list_images(&self) -> Result<Vec<ImageInfo>, RuntimeError> {
        Ok(self.images.borrow().values().cloned().collect())
    }

    async fn images_in_use(
        &self,
        among: &std::collections::BTreeSet<String>,
    ) -> Result<std::collections::BTreeSet<String>, RuntimeError> {
        Ok(self
            .containers
            .borrow()
            .values()
            .filter(|c| c.image.contains('@'))
            .map(|c| Self::image_id(&Self::split(&c.image).1))
            .filter(|id| among.contains(id))
            .collect())
    }

    async fn remove_image(&self, id: &str, _: &[String]) -> Result<Removal, RuntimeError> {
        if let Some(i) = self.check("remove_image", id).await? {
            return Err(Self::error("remove_image", id, &i));
        }
        if self.images_in_use(&std::collections::BTreeSet::from([id.to_owned()])).await?.contains(id) {
            return Err(RuntimeError::Engine {
                op: "remove image",
                subject: id.into(),
                status: 409,
                message: "image is being used by a container".into(),
            });
        }
        Ok(if self.images.borrow_mut().remove(id).is_some() { Removal::Removed } else { Removal::AlreadyGone })
    }

    async fn image_has_healthcheck(&self, _: &str) -> Result<bool, RuntimeError> {
        Ok(true)
    }
}

impl Networks for FakeRuntime {
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        if let Some(i) = self.check("network", name).await? {
            return Err(Self::error("network", name, &i));
        }
        Ok(self.networks.borrow_mut().insert(name.to_owned()))
    }

    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        self.ensure_network(name).await
    }

    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError> {
        if self.containers.borrow().values().any(|c| c.network == name) {
            return Ok(false);
        }
        Ok(self.networks.borrow_mut().remove(name))
    }
}

impl Containers for FakeRuntime {
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

    async fn vitals(&self, id: &str) -> EngineLook<crate::engine::Vitals> {
        match self.check("vitals", id).await {
            Ok(None) => {}
            Ok(Some(i)) => return Look::Unknown(Self::error("vitals", id, &i)),
            Err(e) => return Look::Unknown(e),
        }
        let Some(running) = self.containers.borrow().get(id).map(|c| c.running) else { return Look::Absent };
        if let Some((left, sick)) = self.sickens.get() {
            if left == 0 {
                return Look::Found(sick);
            }
            self.sickens.set(Some((left - 1, sick)));
        }
        let exit_code = if running { None } else { Some(self.exit_at_start.get().unwrap_or(0)) };
        Look::Found(crate::engine::Vitals { running, exit_code, restarts: 0, oom_killed: false })
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        self.check("wait_exit", id).await?;
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

    async fn logs(
        &self,
        id: &str,
        _: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError> {
        if self.faults.take("logs").is_some() {
            return Err(RuntimeError::Other {
                op: "read logs of",
                subject: id.into(),
                message: "injected: stream reset".into(),
            });
        }
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
}

impl Services for FakeRuntime {
    async fn swarm_info(&self) -> Result<crate::engine::SwarmInfo, RuntimeError> {
        Ok(crate::engine::SwarmInfo { state: "active".into(), manager: true, nodes: 1, ready: 1 })
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

    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        if let Some(i) = self.check("list_services", "services").await? {
            return Err(Self::error("list", "services", &i));
        }
        Ok(self.services.borrow().iter().map(|(n, s)| Self::service_info(n, s)).collect())
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
}
