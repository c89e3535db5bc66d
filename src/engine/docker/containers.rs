//! [`Containers`] over the Engine API: create from a spec, start, inspect (a definite 404 is
//! the only "not there"), remove, list ours, and read logs. Waiting for an exit is
//! [`super::wait`]'s.

use std::collections::{BTreeMap, HashMap};

use bollard::errors::Error as BollardError;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig, RestartPolicy as BollardRestart,
    RestartPolicyNameEnum,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};

use super::logs::{forward_lines, logs_options, tail_lines};
use super::{DockerRuntime, engine_error, is_not_found};
use crate::engine::{
    ContainerInfo, ContainerSpec, Containers, EngineLook, LABEL_MANAGED, LABEL_SLOT, LogStream, LogsRequest, Removal,
    RestartPolicy, RuntimeError,
};
use crate::look::Look;

fn restart(p: RestartPolicy) -> BollardRestart {
    let name = match p {
        RestartPolicy::No => RestartPolicyNameEnum::NO,
        RestartPolicy::Always => RestartPolicyNameEnum::ALWAYS,
        RestartPolicy::UnlessStopped => RestartPolicyNameEnum::UNLESS_STOPPED,
        RestartPolicy::OnFailure => RestartPolicyNameEnum::ON_FAILURE,
    };
    BollardRestart { name: Some(name), maximum_retry_count: None }
}

impl Containers for DockerRuntime {
    async fn create(&self, spec: &ContainerSpec) -> Result<String, RuntimeError> {
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
            labels: Some(spec.labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect()),
            cmd: spec.command.clone(),
            exposed_ports: Some(vec![format!("{}/tcp", spec.port)]),
            host_config: Some(HostConfig {
                restart_policy: Some(restart(spec.restart)),
                memory: spec.memory,
                nano_cpus: spec.nano_cpus,
                binds: (!spec.volumes.is_empty()).then(|| spec.volumes.clone()),
                network_mode: Some(spec.network.clone()),
                ..HostConfig::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(spec.network.clone(), EndpointSettings::default())])),
            }),
            ..ContainerCreateBody::default()
        };
        let options = CreateContainerOptionsBuilder::default().name(&spec.name).build();
        let created = self.docker().create_container(Some(options), body).await.map_err(|e| match e {
            BollardError::DockerResponseServerError { status_code: 409, .. } => {
                RuntimeError::NameTaken { name: spec.name.clone() }
            }
            BollardError::DockerResponseServerError { status_code: 404, ref message }
                if message.contains("No such image") =>
            {
                RuntimeError::MissingImage { name: spec.name.clone(), image: spec.image.clone() }
            }
            e => engine_error("create container", &spec.name, e),
        })?;
        Ok(created.id)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        self.docker().start_container(id, None).await.map_err(|e| engine_error("start container", id, e))
    }

    async fn inspect(&self, id: &str, network: &str) -> EngineLook<ContainerInfo> {
        let c = match self.docker().inspect_container(id, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Look::Absent,
            Err(e) => return Look::Unknown(engine_error("inspect container", id, e)),
        };
        let state = c.state.as_ref();
        let addresses = addresses(c.network_settings.as_ref().and_then(|n| n.networks.as_ref()));
        let ip = addresses.get(network).copied();
        let status = state.and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default();
        Look::Found(ContainerInfo {
            id: c.id.unwrap_or_default(),
            name: c.name.unwrap_or_default().trim_start_matches('/').to_owned(),
            state: status,
            exit_code: super::wait::exit_code(state),
            restarts: c.restart_count.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            ip,
            addresses,
            labels: c.config.as_ref().and_then(|c| c.labels.clone()).unwrap_or_default().into_iter().collect(),
            image: c.config.and_then(|c| c.image).unwrap_or_default(),
            is_service: false,
            created: c
                .created
                .as_deref()
                .and_then(|t| humantime::parse_rfc3339_weak(t).ok())
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| i64::try_from(d.as_secs()).ok()),
        })
    }

    async fn vitals(&self, id: &str) -> EngineLook<crate::engine::Vitals> {
        let c = match self.docker().inspect_container(id, None).await {
            Ok(c) => c,
            Err(e) if is_not_found(&e) => return Look::Absent,
            Err(e) => return Look::Unknown(engine_error("inspect container", id, e)),
        };
        let state = c.state.as_ref();
        let restarting = state.and_then(|s| s.restarting).unwrap_or(false);
        Look::Found(crate::engine::Vitals {
            running: state.and_then(|s| s.running).unwrap_or(false) && !restarting,
            exit_code: super::wait::exit_code(state),
            restarts: c.restart_count.and_then(|n| u32::try_from(n).ok()).unwrap_or(0),
            oom_killed: state.and_then(|s| s.oom_killed).unwrap_or(false),
        })
    }

    async fn wait_exit(&self, id: &str) -> Result<i64, RuntimeError> {
        super::wait::wait_exit(self, id).await
    }

    async fn logs_tail(&self, id: &str, lines: usize) -> Result<Vec<String>, RuntimeError> {
        let req = LogsRequest { tail: Some(lines), ..LogsRequest::default() };
        tail_lines(self.docker().logs(id, Some(logs_options(req))), lines, id).await
    }

    async fn logs(
        &self,
        id: &str,
        req: LogsRequest,
        on_line: &mut dyn FnMut(LogStream, &str),
    ) -> Result<(), RuntimeError> {
        // Not a container: a slot of a swarm stage is a service of that name.
        if let Err(BollardError::DockerResponseServerError { status_code: 404, .. }) =
            self.docker().inspect_container(id, None).await
            && let Look::Found(_) = crate::engine::Services::service_instance(self, id).await
        {
            return super::services::service_logs(self, id, req, on_line).await;
        }
        forward_lines(self.docker().logs(id, Some(logs_options(req))), on_line, id).await
    }

    async fn remove(&self, id: &str) -> Result<Removal, RuntimeError> {
        let options = RemoveContainerOptionsBuilder::default().force(true).v(true).build();
        match self.docker().remove_container(id, Some(options)).await {
            Ok(()) => Ok(Removal::Removed),
            Err(e) if is_not_found(&e) => Ok(Removal::AlreadyGone),
            // "removal already in progress": another remover owns it; it will be gone.
            Err(BollardError::DockerResponseServerError { status_code: 409, message })
                if message.contains("already in progress") =>
            {
                Ok(Removal::Removed)
            }
            Err(e) => Err(engine_error("remove container", id, e)),
        }
    }

    async fn watch_managed(
        &self,
        since: std::time::SystemTime,
        on_change: &mut dyn FnMut(&str),
    ) -> Result<(), RuntimeError> {
        use futures_util::StreamExt as _;
        let filters = HashMap::from([
            ("type".to_owned(), vec!["container".to_owned()]),
            ("label".to_owned(), vec![format!("{LABEL_MANAGED}=true")]),
        ]);
        // In Unix seconds: older engines take no RFC 3339 here.
        let secs = since.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let options = bollard::query_parameters::EventsOptionsBuilder::default()
            .filters(&filters)
            .since(&secs.to_string())
            .build();
        let mut events = std::pin::pin!(self.docker().events(Some(options)));
        while let Some(event) = events.next().await {
            let event = event.map_err(|e| engine_error("watch", "containers", e))?;
            if let Some(id) = event.actor.and_then(|a| a.id) {
                on_change(&id);
            }
        }
        Ok(())
    }

    async fn list_managed(&self) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.list_labelled(vec![format!("{LABEL_MANAGED}=true")]).await
    }

    async fn list_managed_of_slot(&self, slot: &str) -> Result<Vec<ContainerInfo>, RuntimeError> {
        self.list_labelled(vec![format!("{LABEL_MANAGED}=true"), format!("{LABEL_SLOT}={slot}")]).await
    }
}

impl DockerRuntime {
    /// Every container carrying all of `labels` (`key=value`), running or not.
    async fn list_labelled(&self, labels: Vec<String>) -> Result<Vec<ContainerInfo>, RuntimeError> {
        let filters = HashMap::from([("label", labels)]);
        let options = ListContainersOptionsBuilder::default().all(true).filters(&filters).build();
        let list =
            self.docker().list_containers(Some(options)).await.map_err(|e| engine_error("list", "containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| ContainerInfo {
                id: c.id.unwrap_or_default(),
                name: c
                    .names
                    .unwrap_or_default()
                    .first()
                    .map(|n| n.trim_start_matches('/').to_owned())
                    .unwrap_or_default(),
                state: c.state.map(|s| s.to_string()).unwrap_or_default(),
                exit_code: None,
                restarts: 0,
                ip: None,
                addresses: addresses(c.network_settings.as_ref().and_then(|n| n.networks.as_ref())),
                labels: c.labels.unwrap_or_default().into_iter().collect::<BTreeMap<_, _>>(),
                image: c.image.unwrap_or_default(),
                is_service: false,
                created: c.created,
            })
            .collect())
    }
}

/// A container's address on each network it is attached to, as an inspect or a list reports
/// them (an endpoint without a parseable address is left out).
fn addresses(networks: Option<&HashMap<String, EndpointSettings>>) -> BTreeMap<String, std::net::IpAddr> {
    networks
        .into_iter()
        .flatten()
        .filter_map(|(name, e)| Some((name.clone(), e.ip_address.as_deref()?.parse().ok()?)))
        .collect()
}
