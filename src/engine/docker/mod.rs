//! [`ContainerRuntime`](crate::engine::ContainerRuntime) over the Docker Engine API, through
//! bollard: the one place that names bollard. As bollard does, each resource has its file:
//! [`images`], [`networks`], [`containers`] (with [`wait`] and [`logs`]) and [`services`]
//! (Swarm). [`engine_error`] translates every engine answer into a [`RuntimeError`], and
//! [`is_not_found`] is the one test for "the engine says there is no such thing".

mod containers;
mod images;
mod logs;
mod networks;
mod services;
mod wait;

#[cfg(test)]
mod test_server;
#[cfg(test)]
mod tests;

use bollard::Docker;
use bollard::auth::DockerCredentials;
use bollard::errors::Error as BollardError;

use super::{RegistryAuth, RuntimeError};
use crate::fmt::one_line;

/// The Docker Engine.
#[derive(Debug, Clone)]
pub struct DockerRuntime {
    docker: Docker,
}

/// Translates a bollard error for `op` on `subject`.
pub(super) fn engine_error(op: &'static str, subject: &str, e: BollardError) -> RuntimeError {
    match e {
        BollardError::DockerResponseServerError { status_code, message } => {
            RuntimeError::Engine { op, subject: subject.to_owned(), status: status_code, message }
        }
        BollardError::SocketNotFoundError(path) => {
            RuntimeError::Unreachable { message: format!("no socket at {path}") }
        }
        BollardError::HyperLegacyError { .. } | BollardError::IOError { .. } | BollardError::RequestTimeoutError => {
            RuntimeError::Unreachable { message: one_line(&e) }
        }
        other => RuntimeError::Other { op, subject: subject.to_owned(), message: one_line(&other) },
    }
}

/// Is this the engine's answer for "no such container, image, network or service"? Only that
/// is an absence: a 503 ("not a swarm manager", "the swarm is locked"), a 500 or a timeout says
/// nothing about whether the thing is there.
pub(super) fn is_not_found(e: &BollardError) -> bool {
    matches!(e, BollardError::DockerResponseServerError { status_code: 404, .. })
}

impl DockerRuntime {
    pub(super) fn docker(&self) -> &Docker {
        &self.docker
    }

    /// Over an already-made client (tests talk to a recording server).
    #[cfg(test)]
    pub(super) fn over(docker: Docker) -> Self {
        Self { docker }
    }

    /// Connects to the engine named by `DOCKER_HOST` (or the local socket) and agrees on an API
    /// version, so an unreachable engine is found before anything is recorded.
    ///
    /// # Errors
    /// [`RuntimeError::Unreachable`] when the engine does not answer.
    pub async fn connect() -> Result<Self, RuntimeError> {
        let docker =
            Docker::connect_with_defaults().map_err(|e| RuntimeError::Unreachable { message: one_line(&e) })?;
        let docker = docker.negotiate_version().await.map_err(|e| match engine_error("connect to", "engine", e) {
            RuntimeError::Unreachable { message } => RuntimeError::Unreachable { message },
            other => RuntimeError::Unreachable { message: other.to_string() },
        })?;
        Ok(Self { docker })
    }

    /// The engine's version string.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn version(&self) -> Result<String, RuntimeError> {
        let v = self.docker.version().await.map_err(|e| engine_error("read version of", "engine", e))?;
        Ok(v.version.unwrap_or_default())
    }
}

/// `auth` as the engine takes it (the `X-Registry-Auth` of a pull, a manifest lookup, a service).
/// An identity token (user name `<token>`, as `config.json` and credential helpers give it,
/// e.g. after `az acr login`) goes as `identitytoken`: the daemon, unlike the Docker CLI, does
/// not translate `<token>` and would log in as that literal user.
pub(super) fn credentials(auth: Option<&RegistryAuth>) -> Option<DockerCredentials> {
    auth.map(|a| {
        if a.username == super::IDENTITY_TOKEN_USER {
            DockerCredentials { identitytoken: Some(a.password.expose().to_owned()), ..DockerCredentials::default() }
        } else {
            DockerCredentials {
                username: Some(a.username.clone()),
                password: Some(a.password.expose().to_owned()),
                ..DockerCredentials::default()
            }
        }
    })
}
