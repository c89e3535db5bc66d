//! [`Services`] over the Engine API (DESIGN §10): a slot is a service, a redeploy is a service
//! update with `order = start-first`, health is gated by Swarm's own check. A swarm that cannot
//! answer (not a manager, locked, without a leader) is a look that failed, never "no service".
//! We never schedule anything ourselves.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

use bollard::models::{
    EndpointSpec, EndpointSpecModeEnum, HealthConfig, Limit, NetworkAttachmentConfig, NodeState,
    ServiceSpec as BollardServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecRollbackConfig,
    ServiceSpecRollbackConfigFailureActionEnum, ServiceSpecRollbackConfigOrderEnum, ServiceSpecUpdateConfig,
    ServiceSpecUpdateConfigFailureActionEnum, ServiceSpecUpdateConfigOrderEnum, ServiceUpdateStatusStateEnum, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::{
    InspectServiceOptionsBuilder, ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptionsBuilder,
};

use super::logs::{forward_lines, logs_options, tail_lines};
use super::{DockerRuntime, credentials, engine_error, is_not_found};
use crate::engine::service::monitor;
use crate::engine::{
    ContainerInfo, EndpointMode, EngineLook, LABEL_MANAGED, RegistryAuth, Removal, RuntimeError, ServiceInfo,
    ServiceSpec, Services, SwarmInfo, TaskInfo, UpdateState,
};
use crate::look::Look;

pub(super) fn nanos(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

/// Our spec in the Engine API's words. Updates are start-first and roll back on failure, so a
/// failed update leaves the previous tasks serving; tiny-forge reads that as a failed deploy.
pub(super) fn bollard_spec(s: &ServiceSpec) -> BollardServiceSpec {
    let health_check = s.health_command.as_ref().map(|cmd| {
        let mut test = vec!["CMD".to_owned()];
        test.extend(cmd.iter().cloned());
        HealthConfig {
            test: Some(test),
            interval: Some(nanos(s.health.interval)),
            timeout: Some(nanos(s.health.timeout)),
            retries: Some(i64::from(s.health.retries)),
            start_period: Some(nanos(s.health.start_period)),
            start_interval: Some(nanos(s.health.start_interval)),
        }
    });
    let monitor = monitor(&s.health);
    BollardServiceSpec {
        name: Some(s.name.clone()),
        labels: Some(s.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
        task_template: Some(TaskSpec {
            container_spec: Some(TaskSpecContainerSpec {
                image: Some(s.image.clone()),
                env: Some(s.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
                command: s.command.clone(),
                health_check,
                ..TaskSpecContainerSpec::default()
            }),
            resources: Some(TaskSpecResources {
                limits: Some(Limit { nano_cpus: s.nano_cpus, memory_bytes: s.memory, pids: None }),
                ..TaskSpecResources::default()
            }),
            restart_policy: Some(TaskSpecRestartPolicy {
                condition: Some(TaskSpecRestartPolicyConditionEnum::ANY),
                delay: Some(nanos(Duration::from_secs(1))),
                max_attempts: None,
                window: None,
            }),
            placement: (!s.constraints.is_empty()).then(|| TaskSpecPlacement {
                constraints: Some(s.constraints.clone()),
                ..TaskSpecPlacement::default()
            }),
            force_update: Some(s.generation),
            networks: Some(vec![NetworkAttachmentConfig {
                target: Some(s.network.clone()),
                ..NetworkAttachmentConfig::default()
            }]),
            ..TaskSpec::default()
        }),
        mode: Some(ServiceSpecMode {
            replicated: Some(ServiceSpecModeReplicated { replicas: Some(i64::try_from(s.replicas).unwrap_or(1)) }),
            ..ServiceSpecMode::default()
        }),
        update_config: Some(ServiceSpecUpdateConfig {
            parallelism: Some(1),
            delay: Some(0),
            failure_action: Some(ServiceSpecUpdateConfigFailureActionEnum::ROLLBACK),
            monitor: Some(nanos(monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
        }),
        rollback_config: Some(ServiceSpecRollbackConfig {
            parallelism: Some(0),
            delay: Some(0),
            failure_action: Some(ServiceSpecRollbackConfigFailureActionEnum::PAUSE),
            monitor: Some(nanos(monitor)),
            max_failure_ratio: Some(0.0),
            order: Some(ServiceSpecRollbackConfigOrderEnum::START_FIRST),
        }),
        endpoint_spec: Some(EndpointSpec {
            mode: Some(match s.endpoint_mode {
                EndpointMode::Vip => EndpointSpecModeEnum::VIP,
                EndpointMode::Dnsrr => EndpointSpecModeEnum::DNSRR,
            }),
            ports: None,
        }),
        ..BollardServiceSpec::default()
    }
}

fn image_of(spec: Option<&BollardServiceSpec>) -> Option<String> {
    spec.and_then(|s| s.task_template.as_ref()).and_then(|t| t.container_spec.as_ref()).and_then(|c| c.image.clone())
}

fn service_info(s: bollard::models::Service) -> ServiceInfo {
    let update = s.update_status.as_ref().and_then(|u| match u.state? {
        ServiceUpdateStatusStateEnum::UPDATING => Some(UpdateState::Updating),
        ServiceUpdateStatusStateEnum::PAUSED => Some(UpdateState::Paused),
        ServiceUpdateStatusStateEnum::COMPLETED => Some(UpdateState::Completed),
        ServiceUpdateStatusStateEnum::ROLLBACK_STARTED => Some(UpdateState::RollbackStarted),
        ServiceUpdateStatusStateEnum::ROLLBACK_PAUSED => Some(UpdateState::RollbackPaused),
        ServiceUpdateStatusStateEnum::ROLLBACK_COMPLETED => Some(UpdateState::RollbackCompleted),
        ServiceUpdateStatusStateEnum::EMPTY => None,
    });
    let replicas = s
        .spec
        .as_ref()
        .and_then(|s| s.mode.as_ref())
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas)
        .and_then(|r| u64::try_from(r).ok())
        .unwrap_or(0);
    ServiceInfo {
        id: s.id.unwrap_or_default(),
        name: s.spec.as_ref().and_then(|s| s.name.clone()).unwrap_or_default(),
        version: s.version.and_then(|v| v.index).unwrap_or(0),
        generation: s.spec.as_ref().and_then(|s| s.task_template.as_ref()).and_then(|t| t.force_update).unwrap_or(0),
        image: image_of(s.spec.as_ref()).unwrap_or_default(),
        labels: s.spec.and_then(|s| s.labels).unwrap_or_default().into_iter().collect(),
        update,
        update_message: s.update_status.and_then(|u| u.message),
        replicas,
    }
}

impl DockerRuntime {
    /// Fails unless this engine is a swarm manager that can answer now: a node outside a
    /// swarm, a worker, and a swarm that is locked, pending or in error cannot tell us which
    /// services exist, so nothing may be read as "no such service" there.
    async fn services_visible(&self, subject: &str) -> Result<(), RuntimeError> {
        let info = self.docker().info().await.map_err(|e| engine_error("read info of", "engine", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default();
        let message = match state.as_str() {
            "active" if swarm.control_available == Some(true) => return Ok(()),
            "active" => "this node is a swarm worker, which cannot see services; run tiny-forge on a manager",
            "" | "inactive" => "this engine is not in a swarm (was swarm mode left?); a swarm stage needs a manager",
            "locked" => "the swarm is locked (autolock after a restart); unlock it with `docker swarm unlock`",
            _ => "the swarm cannot answer now (pending, or in error); wait, then run again",
        };
        Err(RuntimeError::Other { op: "look for service", subject: subject.to_owned(), message: message.into() })
    }

    /// `docker_gwbridge`'s address of each container on it, by container id.
    async fn gateways(&self) -> HashMap<String, IpAddr> {
        let Ok(n) = self.docker().inspect_network("docker_gwbridge", None).await else { return HashMap::new() };
        n.containers
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(id, c)| {
                let ip = c.ipv4_address?.split('/').next()?.parse().ok()?;
                Some((id, ip))
            })
            .collect()
    }
}

impl Services for DockerRuntime {
    async fn swarm_info(&self) -> Result<SwarmInfo, RuntimeError> {
        let info = self.docker().info().await.map_err(|e| engine_error("read info of", "engine", e))?;
        let swarm = info.swarm.unwrap_or_default();
        let state = swarm.local_node_state.map(|s| s.to_string()).unwrap_or_default();
        let manager = swarm.control_available.unwrap_or(false);
        let (mut nodes, mut ready) = (0, 0);
        if manager {
            let list = self.docker().list_nodes(None).await.map_err(|e| engine_error("list", "nodes", e))?;
            for n in list {
                nodes += 1;
                if n.status.and_then(|s| s.state) == Some(NodeState::READY) {
                    ready += 1;
                }
            }
        }
        Ok(SwarmInfo { state, manager, nodes, ready })
    }

    async fn service(&self, name: &str) -> EngineLook<ServiceInfo> {
        let options = InspectServiceOptionsBuilder::default().insert_defaults(false).build();
        match self.docker().inspect_service(name, Some(options)).await {
            Ok(s) => Look::Found(service_info(s)),
            Err(e) if is_not_found(&e) => Look::Absent,
            Err(e) => Look::Unknown(engine_error("inspect service", name, e)),
        }
    }

    /// Service `name` seen as an instance of a slot: `running` when a task of its current spec
    /// runs. Unknown unless a manager that can answer says whether it exists.
    async fn service_instance(&self, name: &str) -> EngineLook<ContainerInfo> {
        if let Err(e) = self.services_visible(name).await {
            return Look::Unknown(e);
        }
        let s = match self.service(name).await {
            Look::Found(s) => s,
            Look::Absent => return Look::Absent,
            Look::Unknown(e) => return Look::Unknown(e),
        };
        let tasks = match self.tasks(name, "").await {
            Ok(t) => t,
            Err(e) => return Look::Unknown(e),
        };
        let current: Vec<&TaskInfo> = tasks.iter().filter(|t| t.image == s.image && t.desired == "running").collect();
        let state = if current.iter().any(|t| t.state == "running") {
            "running".to_owned()
        } else {
            current.first().map_or_else(|| "pending".to_owned(), |t| t.state.clone())
        };
        Look::Found(s.as_instance(state))
    }

    /// Every service carrying [`LABEL_MANAGED`], seen as instances; an error (never an empty
    /// list) when the swarm cannot be asked.
    async fn list_managed_services(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.services_visible("services").await?;
        let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED}=true")])]);
        let options = ListServicesOptionsBuilder::default().filters(&filters).build();
        let list = self.docker().list_services(Some(options)).await.map_err(|e| engine_error("list", "services", e))?;
        Ok(list.into_iter().map(|s| service_info(s).as_instance("running".into())).collect())
    }

    async fn create_service(&self, spec: &ServiceSpec, auth: Option<&RegistryAuth>) -> Result<String, RuntimeError> {
        let created = self
            .docker()
            .create_service(bollard_spec(spec), credentials(auth))
            .await
            .map_err(|e| engine_error("create service", &spec.name, e))?;
        Ok(created.id.unwrap_or_default())
    }

    async fn update_service(
        &self,
        spec: &ServiceSpec,
        version: u64,
        auth: Option<&RegistryAuth>,
    ) -> Result<(), RuntimeError> {
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .registry_auth_from("spec")
            .build();
        self.docker()
            .update_service(&spec.name, bollard_spec(spec), options, credentials(auth))
            .await
            .map_err(|e| engine_error("update service", &spec.name, e))?;
        Ok(())
    }

    /// Swarm's rollback of service `name`, at the version it has now: Swarm bumps the version
    /// whenever it changes the update status, so the caller's earlier look may be stale, and
    /// sending it would be refused as "out of sequence".
    async fn rollback_service(&self, name: &str) -> Result<(), RuntimeError> {
        let current = self
            .docker()
            .inspect_service(name, None::<bollard::query_parameters::InspectServiceOptions>)
            .await
            .map_err(|e| engine_error("inspect service", name, e))?;
        let version = current.version.as_ref().and_then(|v| v.index).unwrap_or(0);
        let options = UpdateServiceOptionsBuilder::default()
            .version(i32::try_from(version).unwrap_or(i32::MAX))
            .rollback("previous")
            .build();
        self.docker()
            .update_service(name, current.spec.unwrap_or_default(), options, None)
            .await
            .map_err(|e| engine_error("roll back service", name, e))?;
        Ok(())
    }

    /// Removes service `name` when there is one.
    async fn remove_service(&self, name: &str) -> Result<Removal, RuntimeError> {
        match self.docker().delete_service(name).await {
            Ok(()) => Ok(Removal::Removed),
            Err(e) if is_not_found(&e) => Ok(Removal::AlreadyGone),
            Err(e) => Err(engine_error("remove service", name, e)),
        }
    }

    async fn tasks(&self, name: &str, network: &str) -> Result<Vec<TaskInfo>, RuntimeError> {
        let filters = HashMap::from([("service", vec![name.to_owned()])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let list = match self.docker().list_tasks(Some(options)).await {
            Ok(l) => l,
            Err(e) if is_not_found(&e) => return Ok(Vec::new()),
            Err(e) => return Err(engine_error("list tasks of", name, e)),
        };
        let gateways = self.gateways().await;
        let mut out = Vec::new();
        let mut dated = Vec::new();
        for t in list {
            // The filter matches by name prefix too; keep this service's tasks only.
            let status = t.status.clone().unwrap_or_default();
            let container = status.container_status.as_ref().and_then(|c| c.container_id.clone());
            let (ip, gateway) = match &container {
                Some(id) => {
                    let ip = self
                        .docker()
                        .inspect_container(id, None)
                        .await
                        .ok()
                        .and_then(|c| c.network_settings)
                        .and_then(|n| n.networks)
                        .and_then(|n| n.get(network).and_then(|e| e.ip_address.clone()))
                        .and_then(|ip| ip.parse().ok());
                    (ip, gateways.get(id).copied())
                }
                None => (None, None),
            };
            let info = TaskInfo {
                id: t.id.clone().unwrap_or_default(),
                node: t.node_id.clone().unwrap_or_default(),
                image: t
                    .spec
                    .as_ref()
                    .and_then(|s| s.container_spec.as_ref())
                    .and_then(|c| c.image.clone())
                    .unwrap_or_default(),
                generation: t.spec.as_ref().and_then(|s| s.force_update).unwrap_or(0),
                state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                desired: t.desired_state.map(|s| s.to_string()).unwrap_or_default(),
                exit_code: status.container_status.as_ref().and_then(|c| c.exit_code).filter(|_| {
                    matches!(status.state.map(|s| s.to_string()).as_deref(), Some("failed" | "shutdown" | "complete"))
                }),
                message: status.err.clone().filter(|e| !e.is_empty()).or(status.message.clone()).unwrap_or_default(),
                container,
                ip,
                gateway,
            };
            dated.push((t.created_at.clone().unwrap_or_default(), info));
        }
        dated.sort_by(|a, b| b.0.cmp(&a.0));
        out.extend(dated.into_iter().map(|(_, t)| t));
        Ok(out)
    }

    async fn task_logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        let req = crate::engine::LogsRequest { tail: Some(lines), ..crate::engine::LogsRequest::default() };
        tail_lines(self.docker().task_logs(id, Some(logs_options(req))), lines, id).await
    }
}

/// Service `name`'s log lines, each with its stream.
pub(super) async fn service_logs(
    rt: &DockerRuntime,
    name: &str,
    req: crate::engine::LogsRequest,
    on_line: &mut dyn FnMut(crate::engine::LogStream, &str),
) -> Result<(), RuntimeError> {
    forward_lines(rt.docker().service_logs(name, Some(logs_options(req))), on_line, name).await
}
