//! tiny-forge turns one Docker image tag into a running, proxied, health-checked staging
//! instance, and cleans up completely when anything fails.
//!
//! The library holds the whole pipeline; the `tiny-forge` binary only parses arguments, has the
//! library build the adapters ([`ops::Adapters`]), runs an [`ops::Command`] (or a query) and
//! renders what comes back. `tiny-forge serve` ([`server`]) runs the same commands for webhooks,
//! the poller and the HTTP API. ARCHITECTURE.md has the module map and the rules.
//!
//! Seams: [`ContainerRuntime`] (a container engine: the Docker Engine and its Swarm mode, through
//! [`engine::AnyEngine`]), [`Proxy`] (none, NPM, Caddy, through [`proxy::AnyProxy`]), [`Store`]
//! (`SQLite`), [`Probe`] (HTTP health checks), [`notify::Notifier`] (deploy webhooks) and
//! [`Reporter`] (progress events).

#![warn(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout, clippy::print_stderr)]

pub mod config;
pub mod deploy;
pub mod domain;
pub mod engine;
pub mod env;
pub mod fmt;
pub mod health;
pub mod http;
pub mod image_ref;
pub mod lock;
pub mod look;
pub mod naming;
pub mod notify;
pub mod ops;
pub mod proxy;
pub mod report;
pub mod secret;
pub mod server;
pub mod store;
#[cfg(any(test, feature = "fakes"))]
#[doc(hidden)]
pub mod testing;

pub use deploy::{Cancel, CancelHandle, DeployError, DeployOutcome, DeployRequest, Deployer, StepTimeouts};
pub use engine::ContainerRuntime;
pub use health::Probe;
pub use proxy::Proxy;
pub use report::Reporter;
pub use store::Store;
