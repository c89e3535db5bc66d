//! The forward path of a deploy, and its rollback through the undo executor. See the module doc
//! of [`super`].
//!
//! Every step that makes something elsewhere first records what would undo it (a typed
//! [`Compensation`], and the instance row with its deterministic container name, host name and
//! port), then acts. So a rollback, or a later recovery after a crash, finds the resource by
//! name even when the call never answered.
//!
//! `finish` is one transaction (instance live, replaced instances retiring, deploy succeeded)
//! and comes before `retire`: once the new instance serves, a failure while cleaning up the
//! one it replaced can never undo a healthy deploy (it becomes a warning and a leftover, and
//! `prune` finishes the job).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use super::journal::{emit, ms, slot_filter, stage_filter, store_leftovers};
use super::outcome::{DeployError, DeployFailure, DeployOutcome, DeploySuccess, FailedStep, RollbackReport, StepError};
use super::undo::{self, Compensation};
use super::{DeployRequest, Deployer, recover};
use crate::config::{Engine, SwarmSettings};
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Leftover, Slot, Trigger};
use crate::engine::{self, ContainerRuntime, ContainerSpec, PullProgress, PulledImage};
use crate::health::{self, Probe};
use crate::lock::StageLock;
use crate::look::Look;
use crate::naming;
use crate::notify::{Notification, NotifyEvent};
use crate::proxy::{self, Ensured, Marker, Proxy, Upstream};
use crate::report::{Event, Level, Step, one_line};
use crate::store::{DeployEnd, InstancePatch, InstanceRecord, NewDeploy, NewInstance, Store, Success};

/// How long a swarm task may wait for a node before the deploy fails with the scheduler's
/// reason.
const UNPLACED_GRACE: Duration = Duration::from_secs(10);

/// How many log lines of an exited container go into the error.
const EXIT_LOG_LINES: usize = 20;

pub(super) struct Saga<'s, 'a, R, P, S, Pr> {
    d: &'s Deployer<'a, R, P, S, Pr>,
    id: DeployId,
    slot: Slot,
    req: &'s DeployRequest,
    image: String,
    domain: String,
    container_name: String,
    state_id: String,
    /// What undoes what the forward path did so far.
    undo: RefCell<Vec<Compensation>>,
    /// This deploy's instance row, once recorded.
    row: Cell<Option<i64>>,
    /// Live instances of the slot this deploy replaces.
    replaced: RefCell<Vec<InstanceRecord>>,
    /// The proxy host serving the new instance, once published.
    host_id: RefCell<Option<String>>,
    /// What the proxy step may have changed (see [`proxy::ensure_tracked`]).
    progress: proxy::Progress,
    /// The registry credentials the pull used (a swarm service passes them on to its nodes).
    auth: RefCell<Option<engine::RegistryAuth>>,
}

pub(super) async fn run<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    req: &DeployRequest,
) -> Result<DeployOutcome, DeployError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let begin = Instant::now();
    let stage = &req.stage;
    let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: req.tag.clone() };
    let image = req.image_override.clone().unwrap_or_else(|| stage.image_ref(&req.tag));

    // lock: before anything is recorded, so that a deploy waiting here is never mistaken for an
    // abandoned one by the deploy that holds the lock.
    let what = format!("{}/{}", slot.project, slot.stage);
    emit(d, None, &Event::StepStarted { step: Step::Lock });
    let lock_path = d.lock_path(&slot.project, &slot.stage);
    let lock = tokio::select! {
        biased;
        () = d.cancel.cancelled() => return Err(DeployError::Interrupted),
        l = StageLock::acquire(&lock_path, &what, req.lock_wait) => l,
    };
    let lock_ms = ms(begin.elapsed());
    let _lock = match lock {
        Ok(l) => l,
        Err(e) => {
            emit(d, None, &Event::StepFailed { step: Step::Lock, error: e.to_string(), elapsed_ms: lock_ms });
            return Err(e.into());
        }
    };

    // record
    let state_id = d.store.state_id()?;
    let id = d.store.begin_deploy(&NewDeploy {
        slot: slot.clone(),
        image: image.clone(),
        trigger: req.trigger,
        pid: std::process::id(),
        host: d.host.clone(),
        actor: d.actor.clone(),
    })?;
    emit(d, Some(id), &Event::StepFinished { step: Step::Lock, elapsed_ms: lock_ms });
    emit(d, Some(id), &Event::DeployStarted { deploy_id: id.0, slot: slot.to_string(), image: image.clone() });
    recover::abandoned(d, Some(id), stage, &state_id).await;

    let saga = Saga {
        d,
        id,
        domain: stage.host_name(&req.tag),
        container_name: match stage.engine {
            Engine::Docker => naming::container_name(&slot, id),
            Engine::Swarm(_) => naming::service_name(&slot),
        },
        slot,
        req,
        image,
        state_id,
        undo: RefCell::new(Vec::new()),
        row: Cell::new(None),
        replaced: RefCell::new(Vec::new()),
        host_id: RefCell::new(None),
        progress: proxy::Progress::default(),
        auth: RefCell::new(None),
    };
    let outcome = match saga.forward(begin).await {
        Ok(success) => DeployOutcome::Succeeded(success),
        Err(failed) => {
            let interrupted = matches!(failed.cause, StepError::Interrupted);
            let rollback = saga.rollback().await;
            let mut error = one_line(&failed);
            if !rollback.is_complete() {
                let left: Vec<String> = rollback.leftovers.iter().map(ToString::to_string).collect();
                error = format!("{error}; rollback incomplete: {}", left.join("; "));
            }
            let status = if interrupted { DeployStatus::Interrupted } else { DeployStatus::Failed };
            let left: Vec<String> = rollback.leftovers.iter().map(ToString::to_string).collect();
            let end = DeployEnd { status, error: Some(&error), url: None, leftovers: &left };
            if let Err(e) = d.store.finish_deploy(id, &end) {
                // Still `running` in the state file: the next deploy or prune recovers it.
                saga.log(
                    Step::Rollback,
                    Level::Warn,
                    format!("the deploy's end could not be recorded: {}", one_line(&e)),
                );
            }
            DeployOutcome::Failed(DeployFailure {
                deploy_id: id,
                failed,
                rollback,
                interrupted,
                elapsed: begin.elapsed(),
            })
        }
    };
    if d.cancel.is_aborted() {
        saga.log(Step::Notify, Level::Warn, "not notifying: stopped by a second signal".into());
    } else {
        saga.notify(&outcome).await;
    }
    Ok(outcome)
}

impl<R, P, S, Pr> Saga<'_, '_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    fn emit(&self, event: &Event) {
        emit(self.d, Some(self.id), event);
    }

    fn log(&self, step: Step, level: Level, message: String) {
        self.emit(&Event::Log { step, level, message });
    }

    /// Pauses after `step` when a test asked for it (`test-hooks` builds only).
    async fn test_pause(&self, step: Step) -> Result<(), FailedStep> {
        let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == step) else { return Ok(()) };
        self.log(step, Level::Debug, format!("pausing {} (test hook)", humantime::format_duration(pause)));
        tokio::select! {
            biased;
            () = self.d.cancel.cancelled() => Err(FailedStep { step, cause: StepError::Interrupted }),
            () = tokio::time::sleep(pause) => Ok(()),
        }
    }

    /// Runs one step: reports its start and end, bounds it in time, and gives up at once on
    /// cancellation (the step's future is dropped; what it recorded before acting stays).
    async fn step<T>(&self, step: Step, work: impl Future<Output = Result<T, StepError>>) -> Result<T, FailedStep> {
        if self.d.cancel.is_cancelled() {
            return Err(FailedStep { step, cause: StepError::Interrupted });
        }
        self.emit(&Event::StepStarted { step });
        let t0 = Instant::now();
        let limit = match step {
            // The policy bounds the probing; the engine bound covers the inspect around it.
            Step::Health => {
                let h = &self.req.stage.health;
                let probing = h.start_period + (h.interval + h.timeout) * (h.retries + 1) + self.d.timeouts.engine;
                // Swarm replaces tasks one at a time (a node may have to pull first) and watches
                // each for its monitor window before it calls the update complete.
                let swarm = match &self.req.stage.engine {
                    Engine::Docker => Duration::ZERO,
                    Engine::Swarm(sw) => engine::service::update_bound(h, sw.replicas, self.d.timeouts.pull),
                };
                Some(probing + swarm)
            }
            other => self.d.timeouts.of(other),
        };
        let bounded = async {
            match limit {
                Some(limit) => tokio::time::timeout(limit, work).await.unwrap_or(Err(StepError::TimedOut(limit))),
                None => work.await,
            }
        };
        let result = tokio::select! {
            biased;
            () = self.d.cancel.cancelled() => Err(StepError::Interrupted),
            r = bounded => r,
        };
        let elapsed_ms = ms(t0.elapsed());
        match result {
            Ok(v) => {
                self.emit(&Event::StepFinished { step, elapsed_ms });
                self.test_pause(step).await?;
                Ok(v)
            }
            Err(cause) => {
                self.emit(&Event::StepFailed { step, error: one_line(&cause), elapsed_ms });
                Err(FailedStep { step, cause })
            }
        }
    }

    async fn forward(&self, begin: Instant) -> Result<DeploySuccess, FailedStep> {
        if let Some(candidate) = self.unchanged_candidate()
            && let Some((live, upstream, digest)) = self.step(Step::Pull, self.already_running(candidate)).await?
        {
            let url = self.step(Step::Proxy, self.republish(&upstream)).await?;
            self.step(Step::Finish, async {
                let end = DeployEnd { status: DeployStatus::Succeeded, error: None, url: Some(&url), leftovers: &[] };
                Ok(self.d.store.finish_deploy(self.id, &end)?)
            })
            .await?;
            return Ok(DeploySuccess {
                deploy_id: self.id,
                url,
                digest,
                container: live.container_name,
                elapsed: begin.elapsed(),
                warnings: Vec::new(),
                leftovers: Vec::new(),
                unchanged: true,
            });
        }
        let pulled = self.step(Step::Pull, self.pull()).await?;
        self.step(Step::Network, self.network()).await?;
        let stage = &self.req.stage;
        if let Some(release) = &stage.release {
            self.step(Step::Release, self.one_off(Step::Release, "release", release, &pulled)).await?;
        }
        if let Some(hook) = &stage.on_create
            && self.first_of_slot()
        {
            self.step(Step::OnCreate, async {
                self.nobody_else_holds_the_slot().await?;
                self.one_off(Step::OnCreate, "on_create", hook, &pulled).await
            })
            .await?;
            // The slot was made by this deploy: its undo takes it away again.
            if let Some(run) = self.on_remove_run(&pulled.reference) {
                self.undo.borrow_mut().push(Compensation::Hook { slot: self.slot.key(), run: Box::new(run) });
            }
        }
        let upstream = match &stage.engine {
            Engine::Docker => {
                let container_id = self.step(Step::Create, self.create(&pulled)).await?;
                self.step(Step::Start, async { Ok(self.d.runtime.start(&self.container_name).await?) }).await?;
                self.step(Step::Health, self.health(&container_id)).await?
            }
            Engine::Swarm(sw) => {
                let updating = self.step(Step::Create, self.service(&pulled, sw)).await?;
                self.step(Step::Health, self.converge(&pulled, sw, updating)).await?
            }
        };
        let url = self.step(Step::Proxy, self.publish(&upstream)).await?;
        self.step(Step::Finish, async { self.finish(&url) }).await?;
        let (warnings, leftovers) = self.retire().await;
        if !leftovers.is_empty() {
            // History says so too (`history show` gives the same exit code as the run).
            let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
            let end = DeployEnd { status: DeployStatus::Succeeded, error: None, url: Some(&url), leftovers: &left };
            if let Err(e) = self.d.store.finish_deploy(self.id, &end) {
                self.log(Step::Retire, Level::Warn, format!("the leftovers could not be recorded: {}", one_line(&e)));
            }
        }
        Ok(DeploySuccess {
            deploy_id: self.id,
            url,
            digest: pulled.digest,
            container: self.container_name.clone(),
            elapsed: begin.elapsed(),
            warnings,
            leftovers,
            unchanged: false,
        })
    }

    /// The slot's live instance, when it has this deploy's spec (unless `--force`): it may
    /// already run what this deploy would. A state-file read only; a problem means "no".
    fn unchanged_candidate(&self) -> Option<InstanceRecord> {
        if self.req.force {
            return None;
        }
        let rows = self.d.store.instances(&slot_filter(&self.slot)).ok()?;
        let live = rows.into_iter().rfind(|i| i.status == InstanceStatus::Live)?;
        (live.spec_hash.as_deref() == Some(self.spec_hash().as_str())).then_some(live)
    }

    /// The slot's live instance, when it already runs the digest the tag resolves to now with
    /// this spec and its container is running: then there is nothing to deploy. The digest
    /// comes from a manifest lookup (nothing is pulled); when the registry cannot say, the
    /// deploy goes on as usual.
    async fn already_running(
        &self,
        live: InstanceRecord,
    ) -> Result<Option<(InstanceRecord, Upstream, String)>, StepError> {
        let stage = &self.req.stage;
        let digest = match self.d.digest_now(stage, &self.image).await {
            Ok(d) => d,
            Err(e) => {
                let message = format!("cannot resolve the digest first ({}); pulling", one_line(&e));
                self.log(Step::Pull, Level::Debug, message);
                return Ok(None);
            }
        };
        if live.digest != digest {
            return Ok(None);
        }
        let kind = stage.engine.instance_kind();
        let look = super::look_instance(self.d.runtime, kind, &live.container_name, &stage.network).await;
        let Some(info) = look.into_result()? else { return Ok(None) };
        if info.state != "running" {
            return Ok(None);
        }
        // A service whose spec someone changed (`docker service rollback`, `update --image`) or
        // whose update Swarm paused does not run what the live row says (review F15).
        if kind == engine::InstanceKind::Service {
            let Some(svc) = self.d.runtime.service(&live.container_name).await.into_result()? else {
                return Ok(None);
            };
            let settled = matches!(svc.update, None | Some(engine::UpdateState::Completed));
            if !svc.image.ends_with(&format!("@{}", live.digest))
                || svc.generation != live.deploy_id.generation()
                || !settled
            {
                self.log(
                    Step::Pull,
                    Level::Warn,
                    format!(
                        "service {} runs {} (spec of deploy {}, update {:?}), not what deploy {} made; deploying again",
                        live.container_name, svc.image, svc.generation, svc.update, live.deploy_id
                    ),
                );
                return Ok(None);
            }
        }
        self.d.store.set_digest(self.id, &digest)?;
        self.log(
            Step::Pull,
            Level::Info,
            format!(
                "{} is {digest}, which {} already runs with the same settings: nothing to deploy (--force redeploys)",
                self.image, live.container_name
            ),
        );
        let upstream =
            Upstream { name: live.container_name.clone(), ip: info.ip, port: recover::port_of(stage, &live) };
        Ok(Some((live, upstream, digest)))
    }

    /// The proxy step of an unchanged redeploy: the live instance's host, ensured (repaired if
    /// it vanished or points elsewhere).
    async fn republish(&self, upstream: &Upstream) -> Result<String, StepError> {
        let marker = Marker { state: self.state_id.clone(), slot: self.slot.key() };
        let access = recover::host_access(&self.req.stage);
        let (done, url) = proxy::ensure(self.d.proxy, &self.domain, &marker, upstream, &access).await?;
        if let Ensured::Created { id } | Ensured::Switched { id, .. } = &done {
            self.log(Step::Proxy, Level::Warn, format!("repaired proxy host {} (id {id})", self.domain));
        }
        Ok(url)
    }

    async fn pull(&self) -> Result<PulledImage, StepError> {
        let stage = &self.req.stage;
        let lookup = self.d.runtime.registry_auth(stage.image.as_str(), stage.registry_auth.as_ref());
        let auth = match lookup.await {
            Ok(a) => a,
            Err(e) => {
                self.log(Step::Pull, Level::Warn, format!("pulling without credentials: {e}"));
                None
            }
        };
        if let Some((source, a)) = &auth {
            self.log(Step::Pull, Level::Debug, format!("using registry credentials of `{}` from {source}", a.username));
        }
        let mut progress = |p: PullProgress| {
            self.emit(&Event::PullProgress { layer: p.layer, status: p.status, current: p.current, total: p.total });
        };
        let pulled = self.d.runtime.pull(&self.image, auth.as_ref().map(|(_, a)| a), &mut progress).await?;
        self.auth.replace(auth.map(|(_, a)| a));
        self.d.store.set_digest(self.id, &pulled.digest)?;
        self.log(Step::Pull, Level::Info, format!("{} is {}", self.image, pulled.digest));
        Ok(pulled)
    }

    async fn network(&self) -> Result<(), StepError> {
        let network = &self.req.stage.network;
        let created = match self.req.stage.engine {
            Engine::Docker => self.d.runtime.ensure_network(network).await?,
            Engine::Swarm(_) => self.d.runtime.ensure_overlay(network).await?,
        };
        if created {
            self.log(Step::Network, Level::Info, format!("created network {network}"));
        }
        Ok(())
    }

    /// Intent first: the row names the container (or service), host and port before anything
    /// exists.
    fn record_instance(&self, pulled: &PulledImage) -> Result<i64, StepError> {
        let stage = &self.req.stage;
        let row = self.d.store.insert_instance(&NewInstance {
            deploy_id: self.id,
            slot: self.slot.clone(),
            container_name: self.container_name.clone(),
            digest: pulled.digest.clone(),
            domain: self.domain.clone(),
            port: stage.port,
            spec_hash: Some(self.spec_hash()),
        })?;
        self.row.set(Some(row));
        Ok(row)
    }

    /// Ours and the user's labels of an instance.
    fn labels(&self) -> BTreeMap<String, String> {
        super::spec::labels(&self.req.stage, &self.slot, &self.state_id, self.id)
    }

    /// What this deploy's instance is made of besides its image (see [`super::spec::hash`]).
    fn spec_hash(&self) -> String {
        let up = Upstream { name: super::spec::OWN_NAME.to_owned(), ip: None, port: self.req.stage.port };
        let url = self.d.proxy.url(&self.domain, &up);
        super::spec::hash(&self.req.stage, &self.slot, &self.state_id, &url, &self.domain)
    }

    /// A swarm slot's service: created for a new slot, else updated in place (start-first).
    /// The undo is recorded first: remove the service it created, or take the service back to
    /// the image it ran. Returns whether it was an update.
    async fn service(&self, pulled: &PulledImage, sw: &SwarmSettings) -> Result<bool, StepError> {
        let stage = &self.req.stage;
        let name = &self.container_name;
        if stage.health.command.is_none() && !self.d.runtime.image_has_healthcheck(&pulled.reference).await? {
            return Err(StepError::Invalid(format!(
                "{} has no HEALTHCHECK and projects.{}.health.command is not set: Swarm would route to tasks before they are healthy; set health.command (exec form)",
                pulled.reference, stage.project
            )));
        }
        let existing = self.d.runtime.service(name).await.into_result()?;
        if let Some(s) = &existing {
            let label = |k: &str| s.labels.get(k).map(String::as_str);
            if label(engine::LABEL_MANAGED) != Some("true") || label(engine::LABEL_SLOT) != Some(&self.slot.key()) {
                return Err(StepError::Invalid(format!(
                    "service {name} exists and is not this slot's; remove it or rename the project"
                )));
            }
            if label(engine::LABEL_STATE).is_some_and(|x| x != self.state_id) {
                return Err(StepError::Invalid(format!(
                    "service {name} belongs to another state file; deploy it with the config that made it"
                )));
            }
        }
        let row = self.record_instance(pulled)?;
        let undo = match &existing {
            None => Compensation::Container {
                name: name.clone(),
                kind: engine::InstanceKind::Service,
                network: stage.network.clone(),
                domain: None,
            },
            Some(s) => Compensation::Service {
                name: name.clone(),
                image: s.image.clone(),
                generation: s.generation,
                within: recover::swarm_back_within(stage),
            },
        };
        self.undo.borrow_mut().extend([Compensation::Row { row, container: name.clone() }, undo]);
        let url = self.public_url();
        let spec = super::spec::service(
            stage,
            sw,
            &self.slot,
            name,
            &pulled.reference,
            &url,
            self.labels(),
            self.id.generation(),
        );
        let auth = self.auth.borrow().clone();
        let id = match &existing {
            None => self.d.runtime.create_service(&spec, auth.as_ref()).await?,
            Some(s) => {
                self.d.runtime.update_service(&spec, s.version, auth.as_ref()).await?;
                s.id.clone()
            }
        };
        self.d.store.update_instance(row, &InstancePatch { container_id: Some(id), ..InstancePatch::default() })?;
        let message = match &existing {
            None => format!("created service {name} ({} replicas) from {}", sw.replicas, pulled.reference),
            Some(s) => format!("updating service {name} from {} to {} (start-first)", s.image, pulled.reference),
        };
        self.log(Step::Create, Level::Info, message);
        Ok(existing.is_some())
    }

    /// Waits until Swarm runs `replicas` healthy tasks of this deploy's spec (and, for an
    /// update, calls the update complete), failing at once when a task fails or Swarm rolls
    /// the update back; then probes the tasks this host can reach.
    async fn converge(&self, pulled: &PulledImage, sw: &SwarmSettings, updating: bool) -> Result<Upstream, StepError> {
        use engine::UpdateState;
        let stage = &self.req.stage;
        let name = &self.container_name;
        let runtime = self.d.runtime;
        let generation = self.id.generation();
        let mut unplaced_since: Option<Instant> = None;
        let ours = loop {
            let svc = runtime
                .service(name)
                .await
                .into_result()?
                .ok_or_else(|| StepError::Invalid(format!("service {name} vanished while it was starting")))?;
            let tasks = runtime.tasks(name, &stage.network).await?;
            let ours: Vec<engine::TaskInfo> = tasks.into_iter().filter(|t| t.generation == generation).collect();
            if let Some(t) = ours.iter().find(|t| t.failed()) {
                let logs = runtime.task_logs_tail(&t.id, EXIT_LOG_LINES).await.unwrap_or_default();
                self.log(
                    Step::Health,
                    Level::Warn,
                    format!("task {} on node {} {}: {}", t.id, t.node, t.state, t.message),
                );
                return Err(match t.exit_code {
                    Some(code) => health::HealthError::Exited { code, logs }.into(),
                    None => StepError::Invalid(format!("task {} of service {name} {}: {}", t.id, t.state, t.message)),
                });
            }
            // A task the scheduler cannot place stays pending for ever: after a grace (a node
            // may be coming back), the deploy fails with the scheduler's reason (review F10).
            match ours.iter().find_map(|t| t.unschedulable().map(|why| (t, why))) {
                Some((t, why)) if unplaced_since.get_or_insert_with(Instant::now).elapsed() >= UNPLACED_GRACE => {
                    return Err(StepError::Invalid(format!(
                        "Swarm cannot place task {} of service {name}: {why}; check the stage's engine.constraints and the nodes' resources",
                        t.id
                    )));
                }
                Some(_) => {}
                None => unplaced_since = None,
            }
            if updating
                && let Some(
                    state @ (UpdateState::Paused
                    | UpdateState::RollbackStarted
                    | UpdateState::RollbackPaused
                    | UpdateState::RollbackCompleted),
                ) = svc.update
            {
                return Err(StepError::Invalid(format!(
                    "Swarm did not complete the update of service {name} ({state:?}): {}",
                    svc.update_message.unwrap_or_default()
                )));
            }
            let running = ours.iter().filter(|t| t.state == "running" && t.desired == "running").count();
            let enough = u64::try_from(running).unwrap_or(0) >= sw.replicas;
            if enough && (!updating || svc.update == Some(UpdateState::Completed)) {
                break ours;
            }
            // As often as the probes look during the start period (bounded, so that a slow
            // start_interval cannot make the look-ups rare).
            tokio::time::sleep(
                stage.health.start_interval.clamp(Duration::from_millis(50), Duration::from_millis(500)),
            )
            .await;
        };
        self.log(
            Step::Health,
            Level::Info,
            format!("{} tasks of {} run and pass Swarm's health check", ours.len(), pulled.reference),
        );
        let mut probed = 0;
        for t in ours.iter().filter(|t| t.state == "running") {
            let address = match stage.probe_address {
                crate::config::ProbeAddress::Ip => t.gateway,
                crate::config::ProbeAddress::Name => t.ip,
            };
            let Some(ip) = address else { continue };
            let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
            let url = format!("http://{host}:{}{}", stage.port, stage.health.path);
            self.log(Step::Health, Level::Info, format!("probing task {} at {url}", t.id));
            health::wait_healthy(self.d.probe, &url, &stage.health, std::future::pending(), &mut |e| {
                if e.counted && !e.result.passed {
                    self.log(Step::Health, Level::Warn, format!("probe failed: {}", e.result.detail));
                }
            })
            .await?;
            probed += 1;
        }
        if probed == 0 {
            self.log(
                Step::Health,
                Level::Warn,
                "no task is reachable from this host (none runs here, or its address is unknown); only Swarm's health check vouches for them".into(),
            );
        }
        Ok(Upstream { name: name.clone(), ip: None, port: stage.port })
    }

    async fn create(&self, pulled: &PulledImage) -> Result<String, StepError> {
        let stage = &self.req.stage;
        let row = self.record_instance(pulled)?;
        self.undo.borrow_mut().extend([
            Compensation::Row { row, container: self.container_name.clone() },
            Compensation::Container {
                name: self.container_name.clone(),
                kind: engine::InstanceKind::Container,
                network: stage.network.clone(),
                domain: None,
            },
        ]);
        let url = self.public_url();
        let spec =
            super::spec::container(stage, &self.slot, &self.container_name, &pulled.reference, &url, self.labels());
        let created = match self.d.runtime.create(&spec).await {
            // Another run's image cleanup (a prune, another state file's retire) took the image
            // between our pull and this create: pull it again, once.
            Err(engine::RuntimeError::MissingImage { .. }) => {
                self.log(
                    Step::Create,
                    Level::Warn,
                    format!("{} was removed before the container was made; pulling it again", pulled.reference),
                );
                let again = self.pull().await?;
                self.d.runtime.create(&ContainerSpec { image: again.reference, ..spec }).await
            }
            other => other,
        };
        let id = match created {
            Err(engine::RuntimeError::NameTaken { .. }) => {
                // Not made by this deploy: its undo must not touch it.
                self.undo
                    .borrow_mut()
                    .retain(|c| !matches!(c, Compensation::Container { name, .. } if *name == self.container_name));
                return Err(self.name_taken().await);
            }
            other => other?,
        };
        self.d
            .store
            .update_instance(row, &InstancePatch { container_id: Some(id.clone()), ..InstancePatch::default() })?;
        self.log(
            Step::Create,
            Level::Info,
            format!("created container {} from {}", self.container_name, pulled.reference),
        );
        Ok(id)
    }

    /// The create found the container's name taken: says by what, and what to do.
    async fn name_taken(&self) -> StepError {
        let name = &self.container_name;
        let holder = match self.d.runtime.inspect(name, "").await {
            Look::Found(h) => h,
            Look::Absent => {
                return StepError::Invalid(format!("container {name} existed and is gone now; deploy again"));
            }
            Look::Unknown(e) => {
                return StepError::Invalid(format!(
                    "container {name} already exists and could not be looked at ({}); check it with `docker inspect {name}`",
                    one_line(&e)
                ));
            }
        };
        let managed = holder.labels.get(engine::LABEL_MANAGED).is_some_and(|m| m == "true");
        StepError::Invalid(match holder.labels.get(engine::LABEL_STATE) {
            _ if !managed => {
                format!("container {name} already exists and tiny-forge did not make it; remove or rename it")
            }
            Some(state) if *state != self.state_id => format!(
                "container {name} already exists and belongs to another state file ({state}), which deploys {} too; give each state file projects of its own, or share one state file",
                self.slot
            ),
            _ => format!(
                "container {name} already exists, made by this state file but unknown to it (a state file restored from a backup?); `tiny-forge prune` removes such orphans, then deploy again"
            ),
        })
    }

    /// The slot's public URL, as its instance and one-offs see it in `TF_URL` and `{url}`.
    fn public_url(&self) -> String {
        let up = Upstream { name: self.container_name.clone(), ip: None, port: self.req.stage.port };
        self.d.proxy.url(&self.domain, &up)
    }

    /// No live instance serves the slot yet: this deploy makes it.
    fn first_of_slot(&self) -> bool {
        self.d
            .store
            .instances(&slot_filter(&self.slot))
            .is_ok_and(|rows| !rows.iter().any(|r| r.status == InstanceStatus::Live && r.deploy_id != self.id))
    }

    /// Before a slot's first `on_create`: no host, container or service of the slot belongs to
    /// another state file (its data would be this slot's too: the same `TF_SLOT`, and this
    /// deploy's rollback would run `on_remove` on it). A look that fails refuses too.
    async fn nobody_else_holds_the_slot(&self) -> Result<(), StepError> {
        let refuse = |what: String| {
            StepError::Invalid(format!(
                "{what} belongs to another state file, which serves {} already: on_create is not run for it; give each state file projects of its own, or share one state file",
                self.slot
            ))
        };
        match self.d.proxy.find(&self.domain).await {
            Look::Found(h) if matches!(&h.owner, proxy::Owner::Marked(m) if m.state != self.state_id) => {
                return Err(refuse(format!("proxy host {}", self.domain)));
            }
            Look::Unknown(e) => return Err(e.into()),
            Look::Found(_) | Look::Absent => {}
        }
        let key = self.slot.key();
        let stage = &self.req.stage;
        let theirs = self.d.managed_of(stage).await?.into_iter().find(|(c, _)| {
            c.labels.get(engine::LABEL_SLOT) == Some(&key)
                && c.labels.get(engine::LABEL_STATE).is_some_and(|s| *s != self.state_id)
        });
        match theirs {
            Some((c, _)) => Err(refuse(format!("{} {}", if c.is_service { "service" } else { "container" }, c.name))),
            None => Ok(()),
        }
    }

    /// The slot's `on_remove` hook, to run from `image`, when there is one.
    fn on_remove_run(&self, image: &str) -> Option<super::oneoff::OneOffRun> {
        let stage = &self.req.stage;
        let hook = stage.on_remove.clone()?;
        Some(super::oneoff::OneOffRun {
            name: naming::one_off_name(&self.slot, self.id, "on_remove"),
            image: image.to_owned(),
            env: stage.env_for(&self.slot.tag, &self.public_url()),
            labels: super::oneoff::labels(&self.slot, self.id, &self.state_id, "on_remove"),
            network: stage.network.clone(),
            port: stage.port,
            what: hook,
            auth: stage.registry_auth.clone(),
        })
    }

    /// Runs a one-off (`release`, `on_create`) from the pulled digest, its output into the
    /// deploy's log as `step` entries. Its name is recorded for the undo before it exists, and
    /// forgotten again once it is gone.
    async fn one_off(
        &self,
        step: Step,
        role: &str,
        what: &crate::config::OneOff,
        pulled: &PulledImage,
    ) -> Result<(), StepError> {
        let stage = &self.req.stage;
        let run = super::oneoff::OneOffRun {
            name: naming::one_off_name(&self.slot, self.id, role),
            image: pulled.reference.clone(),
            env: stage.env_for(&self.slot.tag, &self.public_url()),
            labels: super::oneoff::labels(&self.slot, self.id, &self.state_id, role),
            network: stage.network.clone(),
            port: stage.port,
            what: what.clone(),
            auth: stage.registry_auth.clone(),
        };
        let undo = Compensation::Container {
            name: run.name.clone(),
            kind: engine::InstanceKind::Container,
            network: stage.network.clone(),
            domain: None,
        };
        self.undo.borrow_mut().push(undo.clone());
        self.log(step, Level::Info, format!("running {} in {}", what.command.join(" "), run.name));
        let bound = what.timeout + self.d.timeouts.engine;
        let mut on_line = |stream: engine::LogStream, line: &str| {
            let level = if stream == engine::LogStream::Stderr { Level::Warn } else { Level::Info };
            self.log(step, level, line.to_owned());
        };
        let ran = tokio::time::timeout(bound, super::oneoff::run(self.d.runtime, &run, &mut on_line)).await;
        match ran {
            Err(_) => Err(StepError::TimedOut(bound)),
            Ok(result) => {
                if result.is_ok() {
                    self.undo.borrow_mut().retain(|c| *c != undo);
                }
                result?;
                self.log(step, Level::Info, format!("{role} succeeded"));
                Ok(())
            }
        }
    }

    async fn health(&self, container_id: &str) -> Result<Upstream, StepError> {
        let stage = &self.req.stage;
        let info = self.d.runtime.inspect(container_id, &stage.network).await.into_result()?.ok_or_else(|| {
            StepError::Invalid(format!("container {} vanished right after it started", self.container_name))
        })?;
        if info.exit_code.is_some() || info.restarts > 0 {
            let logs = self.d.runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default();
            return Err(health::HealthError::Exited { code: info.exit_code.unwrap_or(-1), logs }.into());
        }
        let host = match stage.probe_address {
            crate::config::ProbeAddress::Name => self.container_name.clone(),
            crate::config::ProbeAddress::Ip => match info.ip {
                Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
                Some(ip) => ip.to_string(),
                None => {
                    return Err(StepError::Invalid(format!(
                        "container {} has no address on network `{}`; check settings.network",
                        self.container_name, stage.network
                    )));
                }
            },
        };
        let url = format!("http://{host}:{}{}", stage.port, stage.health.path);
        self.log(Step::Health, Level::Info, format!("probing {url}"));
        let runtime = self.d.runtime;
        let exited = async {
            match runtime.wait_exit(container_id).await {
                Ok(code) => (code, runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default()),
                Err(_) => std::future::pending().await,
            }
        };
        let mut probes = 0u32;
        let took = health::wait_healthy(self.d.probe, &url, &stage.health, exited, &mut |e| {
            probes += 1;
            if e.counted && !e.result.passed {
                self.log(Step::Health, Level::Warn, format!("probe failed: {}", e.result.detail));
            }
        })
        .await?;
        self.log(
            Step::Health,
            Level::Info,
            format!("healthy after {} ({probes} probes)", crate::report::fmt_ms(ms(took))),
        );
        Ok(Upstream { name: self.container_name.clone(), ip: info.ip, port: stage.port })
    }

    /// The proxy step: `ensure` the slot's host name → the new container. The undo (point the
    /// host back at the instance it served, or delete it) is recorded before the call; whether a
    /// change may still land is tracked through the call.
    async fn publish(&self, upstream: &Upstream) -> Result<String, StepError> {
        let stage = &self.req.stage;
        let replaced: Vec<InstanceRecord> = self
            .d
            .store
            .instances(&slot_filter(&self.slot))?
            .into_iter()
            .filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id)
            .collect();
        // The instance serving the slot now is what a rollback points the host back at: when
        // it cannot be looked at, traffic does not move (a failed look never deletes a live
        // slot's host).
        let previous = match recover::upstream_of_newest(self.d, stage, &replaced).await {
            Look::Found(up) => Some(up),
            Look::Absent => None,
            Look::Unknown(e) => {
                return Err(StepError::Invalid(format!(
                    "cannot look at the instance serving {} now ({}); traffic stays on it",
                    self.slot,
                    one_line(&e)
                )));
            }
        };
        self.replaced.replace(replaced);
        {
            let mut undo = self.undo.borrow_mut();
            for c in undo.iter_mut() {
                if let Compensation::Container { domain, .. } = c {
                    *domain = Some(self.domain.clone());
                }
            }
            undo.push(Compensation::Host {
                slot: self.slot.key(),
                domain: self.domain.clone(),
                to: previous,
                unsettled: false,
                access: recover::host_access(stage),
            });
        }
        let marker = Marker { state: self.state_id.clone(), slot: self.slot.key() };
        let access = recover::host_access(stage);
        let result =
            proxy::ensure_tracked(self.d.proxy, &self.domain, &marker, upstream, &access, &self.progress).await;
        self.settle();
        let (done, url) = result?;
        let message = match &done {
            Ensured::NoHost => None,
            Ensured::Created { id } => Some(format!("created proxy host {} (id {id})", self.domain)),
            Ensured::Switched { id, from } => Some(format!(
                "switched proxy host {} (id {id}) from {} to {}",
                self.domain,
                from.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string),
                upstream.name
            )),
            Ensured::Unchanged { id } => {
                Some(format!("proxy host {} (id {id}) already forwards to {}", self.domain, upstream.name))
            }
        };
        if let Some(m) = message {
            self.log(Step::Proxy, Level::Info, m);
        }
        self.host_id.replace(done.id().map(str::to_owned));
        self.log(Step::Proxy, Level::Info, format!("serving at {url}"));
        Ok(url)
    }

    /// One transaction: instance live, the instances it replaces retiring, deploy succeeded
    /// (and, for a rollback, the deploys it returns from rolled back).
    fn finish(&self, url: &str) -> Result<(), StepError> {
        let Some(row) = self.row.get() else {
            return Err(StepError::Invalid("no instance row was recorded".into()));
        };
        let replaced = self.replaced.borrow();
        let retire: Vec<i64> = replaced.iter().map(|i| i.id).collect();
        let rolled_back: Vec<DeployId> = if self.req.trigger == Trigger::Rollback {
            replaced.iter().map(|i| i.deploy_id).collect()
        } else {
            Vec::new()
        };
        let host_id = self.host_id.borrow();
        self.d.store.finish_success(&Success {
            deploy_id: self.id,
            instance: row,
            url,
            proxy_host_id: host_id.as_deref(),
            retire: &retire,
            rolled_back: &rolled_back,
        })?;
        Ok(())
    }

    /// Removes the instances this deploy replaced, then evicts beyond `max_instances`, oldest
    /// first, never this deploy's. Problems are warnings and leftovers, never a failure.
    async fn retire(&self) -> (Vec<String>, Vec<Leftover>) {
        self.emit(&Event::StepStarted { step: Step::Retire });
        let t0 = Instant::now();
        let stage = &self.req.stage;
        let mut comps = Vec::new();
        for old in self.replaced.borrow().iter() {
            // Its host is this deploy's now, unless the slot's host name changed (a new domain
            // or subdomain pattern): then the old name goes with it.
            let moved = old.domain.as_deref().is_some_and(|d| !d.eq_ignore_ascii_case(&self.domain));
            comps.extend(recover::take_down(stage, old, moved));
        }
        let mut warnings = Vec::new();
        match self.d.store.instances(&stage_filter(stage)) {
            Ok(all) => {
                let live: Vec<&InstanceRecord> =
                    all.iter().filter(|i| i.status == InstanceStatus::Live && i.deploy_id != self.id).collect();
                let max = usize::try_from(stage.max_instances).unwrap_or(usize::MAX);
                let excess = (live.len() + 1).saturating_sub(max);
                for old in live.iter().take(excess) {
                    let patch = InstancePatch { status: Some(InstanceStatus::Retiring), ..InstancePatch::default() };
                    if let Err(e) = self.d.store.update_instance(old.id, &patch) {
                        warnings.push(format!("cannot mark {} for eviction: {}", old.container_name, one_line(&e)));
                        continue;
                    }
                    self.log(
                        Step::Retire,
                        Level::Info,
                        format!("evicting {} ({}): beyond max_instances ({max})", old.container_name, old.tag),
                    );
                    let (away, _) = recover::take_slot_away(self.d.proxy, stage, old, &self.state_id);
                    comps.extend(away);
                }
            }
            Err(e) => warnings.push(format!("cannot list instances for eviction: {}", one_line(&e))),
        }
        let leftovers = undo::execute(self.d, &self.state_id, comps, &mut |c, o| {
            self.log(Step::Retire, if o.is_ok() { Level::Info } else { Level::Warn }, undo::line(c, o));
        })
        .await;
        warnings.extend(leftovers.iter().map(ToString::to_string));
        let tidied = self.d.tidy(stage, Some(self.id), &self.state_id).await;
        for line in tidied.done.iter().chain(&tidied.notes) {
            self.log(Step::Retire, Level::Debug, line.clone());
        }
        if tidied.bytes_freed > 0 {
            self.log(Step::Retire, Level::Info, format!("freed {}", crate::report::fmt_bytes(tidied.bytes_freed)));
        }
        store_leftovers(
            self.d,
            Some(self.id),
            Some(self.id),
            (self.slot.project.as_str(), self.slot.stage.as_str()),
            &leftovers,
        );
        self.emit(&Event::StepFinished { step: Step::Retire, elapsed_ms: ms(t0.elapsed()) });
        (warnings, leftovers)
    }

    /// Brings the undo in line with what the proxy step may have changed: nothing (no host
    /// could point at the new container, so the host is left alone), a change (undo it), or a
    /// change that may still land (undo it, and keep what it points at).
    fn settle(&self) {
        let changed = self.progress.may_have_changed();
        let mut undo = self.undo.borrow_mut();
        undo.retain(|c| changed || !matches!(c, Compensation::Host { .. }));
        for c in undo.iter_mut() {
            match c {
                Compensation::Host { unsettled, .. } => *unsettled = self.progress.unsettled(),
                Compensation::Container { domain, .. } if !changed => *domain = None,
                _ => {}
            }
        }
    }

    /// Undoes what [`Self::forward`] did through the one executor (proxy, then container, then
    /// row), running every compensation even when one fails.
    async fn rollback(&self) -> RollbackReport {
        self.emit(&Event::StepStarted { step: Step::Rollback });
        let t0 = Instant::now();
        if let Some(&(_, pause)) = self.d.pauses.iter().find(|(at, _)| *at == Step::Rollback) {
            // Test hook: a window for a second signal.
            self.log(
                Step::Rollback,
                Level::Debug,
                format!("pausing {} (test hook)", humantime::format_duration(pause)),
            );
            tokio::select! {
                () = self.d.cancel.aborted() => {}
                () = tokio::time::sleep(pause) => {}
            }
        }
        // The proxy step may have been dropped mid-call (signal, step bound).
        self.settle();
        let comps = self.undo.borrow().clone();
        let leftovers = undo::execute(self.d, &self.state_id, comps, &mut |c, o| {
            let (ok, message) = match o {
                Ok(m) => (true, m.clone()),
                Err(l) => (false, l.with_logs()),
            };
            self.emit(&Event::Compensation { action: c.describe(), ok, message });
        })
        .await;
        store_leftovers(
            self.d,
            Some(self.id),
            Some(self.id),
            (self.slot.project.as_str(), self.slot.stage.as_str()),
            &leftovers,
        );
        let elapsed_ms = ms(t0.elapsed());
        if leftovers.is_empty() {
            self.emit(&Event::StepFinished { step: Step::Rollback, elapsed_ms });
        } else {
            let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
            self.emit(&Event::StepFailed {
                step: Step::Rollback,
                error: format!("left behind: {}", left.join("; ")),
                elapsed_ms,
            });
        }
        RollbackReport { leftovers }
    }

    /// Tells the notifier how the deploy ended; failures become warnings in the deploy's log
    /// and change nothing else.
    async fn notify(&self, outcome: &DeployOutcome) {
        let digest = match self.d.store.deploy(self.id) {
            Ok(r) => r.and_then(|r| r.digest),
            Err(e) => {
                self.log(Step::Notify, Level::Warn, format!("cannot read the deploy's digest: {}", one_line(&e)));
                None
            }
        };
        let base = |event, url: Option<String>, error: Option<String>, leftovers: Vec<String>, elapsed: Duration| {
            Notification {
                event,
                deploy_id: self.id.0,
                project: self.slot.project.to_string(),
                stage: self.slot.stage.to_string(),
                tag: self.slot.tag.to_string(),
                trigger: self.req.trigger.as_str().to_owned(),
                digest: digest.clone(),
                url,
                duration_ms: ms(elapsed),
                error,
                leftovers,
                logs: Vec::new(),
            }
        };
        let mut n = match outcome {
            DeployOutcome::Succeeded(s) => {
                base(NotifyEvent::Succeeded, Some(s.url.clone()), None, Vec::new(), s.elapsed)
            }
            DeployOutcome::Failed(f) => base(
                if f.rollback.is_complete() { NotifyEvent::Failed } else { NotifyEvent::RollbackIncomplete },
                None,
                Some(one_line(&f.failed)),
                f.rollback.leftovers.iter().map(ToString::to_string).collect(),
                f.elapsed,
            ),
        };
        // A container's log lines, and a release's or hook's output, may hold secrets: they
        // leave the host only for targets that ask (`include_logs`).
        if let DeployOutcome::Failed(f) = outcome {
            let (without, logs) = match &f.failed.cause {
                StepError::Health(h) => (h.without_logs(), h.logs().to_vec()),
                StepError::OneOff(o) => (o.without_logs(), o.logs().to_vec()),
                _ => (String::new(), Vec::new()),
            };
            if !logs.is_empty() {
                n.error = Some(format!("{} failed: {without}", f.failed.step));
                n.logs = logs;
            }
            for l in &f.rollback.leftovers {
                if let Leftover::Hook { logs, .. } = l {
                    n.logs.extend(logs.iter().cloned());
                }
            }
        }
        for warning in self.d.notifier.notify(&n).await {
            self.log(Step::Notify, Level::Warn, warning);
        }
    }
}
