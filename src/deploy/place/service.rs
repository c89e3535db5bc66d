//! The Swarm engine's placement (DESIGN §10): a service per slot, created for a new slot and
//! updated in place (start-first) by each deploy; healthy when Swarm runs the replicas of this
//! deploy's spec and calls the update complete, and the tasks this host reaches pass our probe.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use super::{EXIT_LOG_LINES, Placement};
use crate::config::{ResolvedStage, SwarmSettings};
use crate::deploy::instance;
use crate::deploy::outcome::{FailedStep, StepError};
use crate::deploy::saga::Saga;
use crate::deploy::undo::Compensation;
use crate::domain::{DeployId, Slot};
use crate::engine::{self, ContainerRuntime, InstanceKind, PulledImage, RuntimeError, ServiceSpec};
use crate::health::{self, HealthPolicy, Probe};
use crate::naming;
use crate::proxy::{Proxy, Upstream};
use crate::report::{Level, Step};
use crate::store::{InstancePatch, Store};

/// How long a swarm task may wait for a node before the deploy fails with the scheduler's
/// reason.
const UNPLACED_GRACE: Duration = Duration::from_secs(10);

/// A service per slot, with these settings.
#[derive(Debug, Clone, Copy)]
pub(in crate::deploy) struct ServicePlacement<'s> {
    /// Replicas, constraints, endpoint mode.
    pub(in crate::deploy) settings: &'s SwarmSettings,
}

impl Placement for ServicePlacement<'_> {
    fn kind(&self) -> InstanceKind {
        InstanceKind::Service
    }

    fn replicas(&self) -> u64 {
        self.settings.replicas
    }

    fn instance_name(&self, slot: &Slot, _: DeployId) -> String {
        naming::service_name(slot)
    }

    fn extra_health_bound(&self, health: &HealthPolicy, pull: Duration) -> Duration {
        engine::service::update_bound(health, self.settings.replicas, pull)
    }

    fn spec_text(&self, stage: &ResolvedStage, slot: &Slot, url: &str, labels: BTreeMap<String, String>) -> String {
        format!("{:?}", spec(stage, self.settings, slot, "", "", url, labels, 0))
    }

    async fn drift<R: ContainerRuntime>(
        &self,
        runtime: &R,
        live: &crate::store::InstanceRecord,
    ) -> Result<Option<String>, RuntimeError> {
        // Review F15: `docker service rollback`, `update --image`, or an update Swarm paused.
        let Some(svc) = runtime.service(&live.container_name).await.into_result()? else {
            return Ok(Some(format!("service {} is gone", live.container_name)));
        };
        let settled = matches!(svc.update, None | Some(engine::UpdateState::Completed));
        if svc.image.ends_with(&format!("@{}", live.digest)) && svc.generation == live.deploy_id.generation() && settled
        {
            return Ok(None);
        }
        Ok(Some(format!(
            "service {} runs {} (spec of deploy {}, update {:?}), not what deploy {} made",
            live.container_name, svc.image, svc.generation, svc.update, live.deploy_id
        )))
    }

    async fn network<R: ContainerRuntime>(&self, runtime: &R, name: &str) -> Result<bool, RuntimeError> {
        runtime.ensure_overlay(name).await
    }

    async fn vitals<R: ContainerRuntime>(
        &self,
        runtime: &R,
        name: &str,
        id: DeployId,
    ) -> engine::EngineLook<engine::Vitals> {
        // The network only adds addresses, which vitals do not need.
        let tasks = match runtime.tasks(name, "").await {
            Ok(t) => t,
            Err(e) => return crate::look::Look::Unknown(e),
        };
        let ours: Vec<&engine::TaskInfo> = tasks.iter().filter(|t| t.generation == id.generation()).collect();
        if ours.is_empty() {
            return crate::look::Look::Absent;
        }
        let ended: Vec<&&engine::TaskInfo> = ours
            .iter()
            .filter(|t| matches!(t.state.as_str(), "failed" | "complete" | "rejected" | "orphaned"))
            .collect();
        crate::look::Look::Found(engine::Vitals {
            running: ours.iter().any(|t| t.state == "running" && t.desired == "running"),
            exit_code: ended.first().and_then(|t| t.exit_code),
            restarts: u32::try_from(ended.len()).unwrap_or(u32::MAX),
            oom_killed: false,
        })
    }

    async fn crash_logs<R: ContainerRuntime>(&self, runtime: &R, name: &str, id: DeployId) -> Vec<String> {
        let Ok(tasks) = runtime.tasks(name, "").await else { return Vec::new() };
        let ended = tasks.iter().find(|t| t.generation == id.generation() && t.state != "running");
        match ended {
            Some(t) => runtime.task_logs_tail(&t.id, EXIT_LOG_LINES).await.unwrap_or_default(),
            None => Vec::new(),
        }
    }

    async fn place<R, P, S, Pr>(
        &self,
        saga: &Saga<'_, '_, R, P, S, Pr>,
        pulled: &PulledImage,
    ) -> Result<Upstream, FailedStep>
    where
        R: ContainerRuntime,
        P: Proxy,
        S: Store,
        Pr: Probe,
    {
        let sw = self.settings;
        let updating = saga.step(Step::Create, place_service(saga, pulled, sw)).await?;
        saga.step(Step::Health, converge(saga, pulled, sw, updating)).await
    }
}

/// The service of a swarm `slot` named `name`, as deploy `generation` makes it.
#[allow(clippy::too_many_arguments, reason = "one spec from its parts; a struct would repeat them")]
pub(super) fn spec(
    stage: &ResolvedStage,
    sw: &crate::config::SwarmSettings,
    slot: &Slot,
    name: &str,
    image: &str,
    url: &str,
    labels: BTreeMap<String, String>,
    generation: u64,
) -> ServiceSpec {
    ServiceSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        env: stage.env_for(&slot.tag, url),
        labels,
        network: stage.network.clone(),
        replicas: sw.replicas,
        constraints: sw.constraints.clone(),
        endpoint_mode: sw.endpoint_mode,
        health_command: stage.health.command.clone(),
        health: stage.health.clone(),
        memory: stage.memory,
        nano_cpus: stage.nano_cpus,
        command: stage.command.clone(),
        generation,
    }
}

/// A swarm slot's service: created for a new slot, else updated in place (start-first).
/// The undo is recorded first: remove the service it created, or take the service back to
/// the image it ran. Returns whether it was an update.
async fn place_service<R, P, S, Pr>(
    saga: &Saga<'_, '_, R, P, S, Pr>,
    pulled: &PulledImage,
    sw: &SwarmSettings,
) -> Result<bool, StepError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let stage = &saga.req.stage;
    let name = &saga.container_name;
    if stage.health.command.is_none() && !saga.d.runtime.image_has_healthcheck(&pulled.reference).await? {
        return Err(StepError::Invalid(format!(
            "{} has no HEALTHCHECK and projects.{}.health.command is not set: Swarm would route to tasks before they are healthy; set health.command (exec form)",
            pulled.reference, stage.project
        )));
    }
    let existing = saga.d.runtime.service(name).await.into_result()?;
    if let Some(s) = &existing {
        let label = |k: &str| s.labels.get(k).map(String::as_str);
        if label(engine::LABEL_MANAGED) != Some("true") || label(engine::LABEL_SLOT) != Some(&saga.slot.key()) {
            return Err(StepError::Invalid(format!(
                "service {name} exists and is not this slot's; remove it or rename the project"
            )));
        }
        if label(engine::LABEL_STATE).is_some_and(|x| x != saga.state_id) {
            return Err(StepError::Invalid(format!(
                "service {name} belongs to another state file; deploy it with the config that made it"
            )));
        }
    }
    let row = saga.record_instance(pulled)?;
    let undo = match &existing {
        None => Compensation::Container {
            slot: saga.slot.key(),
            name: name.clone(),
            kind: engine::InstanceKind::Service,
            network: stage.network.clone(),
            domain: None,
        },
        Some(s) => Compensation::Service {
            name: name.clone(),
            image: s.image.clone(),
            generation: s.generation,
            within: instance::swarm_back_within(stage),
        },
    };
    saga.undo.borrow_mut().extend([Compensation::Row { row, container: name.clone() }, undo]);
    let url = saga.public_url();
    let spec = spec(stage, sw, &saga.slot, name, &pulled.reference, &url, saga.labels(), saga.id.generation());
    let auth = saga.auth.borrow().clone();
    let id = match &existing {
        None => saga.d.runtime.create_service(&spec, auth.as_ref()).await?,
        Some(s) => {
            saga.d.runtime.update_service(&spec, s.version, auth.as_ref()).await?;
            s.id.clone()
        }
    };
    saga.d.store.update_instance(row, &InstancePatch { container_id: Some(id), ..InstancePatch::default() })?;
    let message = match &existing {
        None => format!("created service {name} ({} replicas) from {}", sw.replicas, pulled.reference),
        Some(s) => format!("updating service {name} from {} to {} (start-first)", s.image, pulled.reference),
    };
    saga.log(Step::Create, Level::Info, message);
    Ok(existing.is_some())
}

/// Waits until Swarm runs `replicas` healthy tasks of this deploy's spec (and, for an
/// update, calls the update complete), failing at once when a task fails or Swarm rolls
/// the update back; then probes the tasks this host can reach.
async fn converge<R, P, S, Pr>(
    saga: &Saga<'_, '_, R, P, S, Pr>,
    pulled: &PulledImage,
    sw: &SwarmSettings,
    updating: bool,
) -> Result<Upstream, StepError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    use engine::UpdateState;
    let stage = &saga.req.stage;
    let name = &saga.container_name;
    let runtime = saga.d.runtime;
    let generation = saga.id.generation();
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
            saga.log(Step::Health, Level::Warn, format!("task {} on node {} {}: {}", t.id, t.node, t.state, t.message));
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
        tokio::time::sleep(stage.health.start_interval.clamp(Duration::from_millis(50), Duration::from_millis(500)))
            .await;
    };
    saga.log(
        Step::Health,
        Level::Info,
        format!("{} tasks of {} run and pass Swarm's health check", ours.len(), pulled.reference),
    );
    let mut probed = 0;
    for t in ours.iter().filter(|t| t.state == "running") {
        let address = match stage.probe_address {
            crate::domain::Address::Ip => t.gateway,
            crate::domain::Address::Name => t.ip,
        };
        let Some(ip) = address else { continue };
        let host = if ip.is_ipv6() { format!("[{ip}]") } else { ip.to_string() };
        let url = format!("http://{host}:{}{}", stage.port, stage.health.path);
        saga.log(Step::Health, Level::Info, format!("probing task {} at {url}", t.id));
        health::wait_healthy(saga.d.probe, &url, &stage.health, std::future::pending(), &mut |e| {
            if e.counted && !e.result.passed {
                saga.log(Step::Health, Level::Warn, format!("probe failed: {}", e.result.detail));
            }
        })
        .await?;
        probed += 1;
    }
    if probed == 0 {
        saga.log(
            Step::Health,
            Level::Warn,
            "no task is reachable from this host (none runs here, or its address is unknown); only Swarm's health check vouches for them".into(),
        );
    }
    Ok(Upstream { name: name.clone(), ip: None, port: stage.port })
}
