//! The Docker engine's placement: a container per deploy, created from the digest (the instance
//! row and the undo recorded first), started, then probed directly until healthy while its exit
//! is watched.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{EXIT_LOG_LINES, Placement};
use crate::config::ResolvedStage;
use crate::deploy::journal::ms;
use crate::deploy::outcome::{FailedStep, StepError};
use crate::deploy::saga::Saga;
use crate::deploy::undo::Compensation;
use crate::domain::{DeployId, Slot};
use crate::engine::{self, ContainerRuntime, ContainerSpec, InstanceKind, PulledImage, RuntimeError};
use crate::fmt::one_line;
use crate::health::{self, HealthPolicy, Probe};
use crate::look::Look;
use crate::naming;
use crate::proxy::{Proxy, Upstream};
use crate::report::{Level, Step};
use crate::store::{InstancePatch, Store};

/// A container per deploy.
#[derive(Debug, Clone, Copy)]
pub(in crate::deploy) struct ContainerPlacement;

impl Placement for ContainerPlacement {
    fn kind(&self) -> InstanceKind {
        InstanceKind::Container
    }

    fn replicas(&self) -> u64 {
        1
    }

    fn instance_name(&self, slot: &Slot, id: DeployId) -> String {
        naming::container_name(slot, id)
    }

    fn extra_health_bound(&self, _: &HealthPolicy, _: Duration) -> Duration {
        Duration::ZERO
    }

    fn spec_text(&self, stage: &ResolvedStage, slot: &Slot, url: &str, labels: BTreeMap<String, String>) -> String {
        format!("{:?}", spec(stage, slot, "", "", url, labels))
    }

    async fn drift<R: ContainerRuntime>(
        &self,
        _: &R,
        _: &crate::store::InstanceRecord,
    ) -> Result<Option<String>, RuntimeError> {
        // A container is made once and never changed in place: its spec hash says it all.
        Ok(None)
    }

    async fn network<R: ContainerRuntime>(&self, runtime: &R, name: &str) -> Result<bool, RuntimeError> {
        runtime.ensure_network(name).await
    }

    async fn vitals<R: ContainerRuntime>(
        &self,
        runtime: &R,
        name: &str,
        _: DeployId,
    ) -> engine::EngineLook<engine::Vitals> {
        runtime.vitals(name).await
    }

    async fn crash_logs<R: ContainerRuntime>(&self, runtime: &R, name: &str, _: DeployId) -> Vec<String> {
        runtime.logs_tail(name, EXIT_LOG_LINES).await.unwrap_or_default()
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
        let container_id = saga.step(Step::Create, create_container(saga, pulled)).await?;
        saga.step(Step::Start, async { Ok(saga.d.runtime.start(&saga.container_name).await?) }).await?;
        saga.step(Step::Health, health(saga, &container_id)).await
    }
}

/// The container of `slot` named `name`, from `image` (`repo@digest`), with the env its public
/// URL `url` gives it.
pub(super) fn spec(
    stage: &ResolvedStage,
    slot: &Slot,
    name: &str,
    image: &str,
    url: &str,
    labels: BTreeMap<String, String>,
) -> ContainerSpec {
    ContainerSpec {
        name: name.to_owned(),
        image: image.to_owned(),
        env: stage.env_for(&slot.tag, url),
        labels,
        network: stage.network.clone(),
        port: stage.port,
        restart: stage.restart,
        memory: stage.memory,
        nano_cpus: stage.nano_cpus,
        command: stage.command.clone(),
        volumes: stage.volumes.clone(),
    }
}

async fn create_container<R, P, S, Pr>(
    saga: &Saga<'_, '_, R, P, S, Pr>,
    pulled: &PulledImage,
) -> Result<String, StepError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let stage = &saga.req.stage;
    let row = saga.record_instance(pulled)?;
    saga.undo.borrow_mut().extend([
        Compensation::Row { row, container: saga.container_name.clone() },
        Compensation::Container {
            slot: saga.slot.key(),
            name: saga.container_name.clone(),
            kind: engine::InstanceKind::Container,
            network: stage.network.clone(),
            domain: None,
        },
    ]);
    let url = saga.public_url();
    let spec = spec(stage, &saga.slot, &saga.container_name, &pulled.reference, &url, saga.labels());
    let created = match saga.d.runtime.create(&spec).await {
        // Another run's image cleanup (a prune, another state file's retire) took the image
        // between our pull and this create: pull it again, once.
        Err(engine::RuntimeError::MissingImage { .. }) => {
            saga.log(
                Step::Create,
                Level::Warn,
                format!("{} was removed before the container was made; pulling it again", pulled.reference),
            );
            let again = saga.pull().await?;
            saga.d.runtime.create(&ContainerSpec { image: again.reference, ..spec }).await
        }
        other => other,
    };
    let id = match created {
        Err(engine::RuntimeError::NameTaken { .. }) => {
            // Not made by this deploy: its undo must not touch it.
            saga.undo
                .borrow_mut()
                .retain(|c| !matches!(c, Compensation::Container { name, .. } if *name == saga.container_name));
            return Err(name_taken(saga).await);
        }
        other => other?,
    };
    saga.d.store.update_instance(row, &InstancePatch { container_id: Some(id.clone()), ..InstancePatch::default() })?;
    saga.log(Step::Create, Level::Info, format!("created container {} from {}", saga.container_name, pulled.reference));
    Ok(id)
}

/// The create found the container's name taken: says by what, and what to do.
async fn name_taken<R, P, S, Pr>(saga: &Saga<'_, '_, R, P, S, Pr>) -> StepError
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let name = &saga.container_name;
    let holder = match saga.d.runtime.inspect(name, "").await {
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
        Some(state) if *state != saga.state_id => format!(
            "container {name} already exists and belongs to another state file ({state}), which deploys {} too; give each state file projects of its own, or share one state file",
            saga.slot
        ),
        _ => format!(
            "container {name} already exists, made by this state file but unknown to it (a state file restored from a backup?); `tiny-forge prune` removes such orphans, then deploy again"
        ),
    })
}

async fn health<R, P, S, Pr>(saga: &Saga<'_, '_, R, P, S, Pr>, container_id: &str) -> Result<Upstream, StepError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let stage = &saga.req.stage;
    let info = saga.d.runtime.inspect(container_id, &stage.network).await.into_result()?.ok_or_else(|| {
        StepError::Invalid(format!("container {} vanished right after it started", saga.container_name))
    })?;
    if info.exit_code.is_some() || info.restarts > 0 {
        let logs = saga.d.runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default();
        return Err(health::HealthError::Exited { code: info.exit_code.unwrap_or(-1), logs }.into());
    }
    let host = match stage.probe_address {
        crate::domain::Address::Name => saga.container_name.clone(),
        crate::domain::Address::Ip => match info.ip {
            Some(std::net::IpAddr::V6(ip)) => format!("[{ip}]"),
            Some(ip) => ip.to_string(),
            None => {
                return Err(StepError::Invalid(format!(
                    "container {} has no address on network `{}`; check settings.network",
                    saga.container_name, stage.network
                )));
            }
        },
    };
    let url = format!("http://{host}:{}{}", stage.port, stage.health.path);
    saga.log(Step::Health, Level::Info, format!("probing {url}"));
    let runtime = saga.d.runtime;
    let exited = async {
        match runtime.wait_exit(container_id).await {
            Ok(code) => (code, runtime.logs_tail(container_id, EXIT_LOG_LINES).await.unwrap_or_default()),
            Err(_) => std::future::pending().await,
        }
    };
    let mut probes = 0u32;
    let took = health::wait_healthy(saga.d.probe, &url, &stage.health, exited, &mut |e| {
        probes += 1;
        if e.counted && !e.result.passed {
            saga.log(Step::Health, Level::Warn, format!("probe failed: {}", e.result.detail));
        }
    })
    .await?;
    saga.log(Step::Health, Level::Info, format!("healthy after {} ({probes} probes)", crate::fmt::millis(ms(took))));
    Ok(Upstream { name: saga.container_name.clone(), ip: info.ip, port: stage.port })
}
