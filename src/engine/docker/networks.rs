//! [`Networks`] over the Engine API: the bridge network of a Docker stage, the attachable overlay
//! of a swarm stage, and the removal of an idle one tiny-forge made.

use std::collections::HashMap;

use bollard::errors::Error as BollardError;
use bollard::models::NetworkCreateRequest;

use super::{DockerRuntime, engine_error, is_not_found};
use crate::engine::{LABEL_MANAGED, Networks, RuntimeError};

impl Networks for DockerRuntime {
    async fn ensure_network(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker().inspect_network(name, None).await {
            Ok(n) if n.config_only == Some(true) => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: "it is a configuration-only network, which containers cannot join; set settings.network to another network".into(),
            }),
            Ok(_) => Ok(false),
            Err(e) if is_not_found(&e) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("bridge".into()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())])),
                    ..NetworkCreateRequest::default()
                };
                match self.docker().create_network(req).await {
                    Ok(_) => Ok(true),
                    // Another deploy created it between our inspect and create.
                    Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(false),
                    Err(e) => Err(engine_error("create network", name, e)),
                }
            }
            Err(e) => Err(engine_error("inspect network", name, e)),
        }
    }

    async fn ensure_overlay(&self, name: &str) -> Result<bool, RuntimeError> {
        match self.docker().inspect_network(name, None).await {
            Ok(n) if n.driver.as_deref() != Some("overlay") => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: format!(
                    "it is a `{}` network; a swarm stage needs an attachable overlay network: set settings.network to another name",
                    n.driver.unwrap_or_default()
                ),
            }),
            Ok(n) if n.attachable != Some(true) => Err(RuntimeError::Other {
                op: "use network",
                subject: name.to_owned(),
                message: "the overlay network is not attachable, so one-off containers and proxies cannot join it; recreate it with --attachable".into(),
            }),
            Ok(_) => Ok(false),
            Err(e) if is_not_found(&e) => {
                let req = NetworkCreateRequest {
                    name: name.to_owned(),
                    driver: Some("overlay".into()),
                    attachable: Some(true),
                    labels: Some(HashMap::from([(LABEL_MANAGED.to_owned(), "true".to_owned())])),
                    ..NetworkCreateRequest::default()
                };
                match self.docker().create_network(req).await {
                    Ok(_) => Ok(true),
                    Err(BollardError::DockerResponseServerError { status_code: 409, .. }) => Ok(false),
                    Err(e) => Err(engine_error("create overlay network", name, e)),
                }
            }
            Err(e) => Err(engine_error("inspect network", name, e)),
        }
    }

    async fn remove_network_if_idle(&self, name: &str) -> Result<bool, RuntimeError> {
        let n = match self.docker().inspect_network(name, None).await {
            Ok(n) => n,
            Err(e) if is_not_found(&e) => return Ok(false),
            Err(e) => return Err(engine_error("inspect network", name, e)),
        };
        let ours = n.labels.as_ref().and_then(|l| l.get(LABEL_MANAGED)).is_some_and(|v| v == "true");
        if !ours || n.containers.as_ref().is_some_and(|c| !c.is_empty()) {
            return Ok(false);
        }
        match self.docker().remove_network(name).await {
            Ok(()) => Ok(true),
            // A container joined it meanwhile, or it is already gone: leave it.
            Err(BollardError::DockerResponseServerError { status_code: 403 | 404 | 409, .. }) => Ok(false),
            Err(e) => Err(engine_error("remove network", name, e)),
        }
    }
}
