//! tiny-forge turns one Docker image tag into a running, proxied, health-checked staging
//! instance, and cleans up completely when anything fails.
//!
//! The library holds the whole pipeline; the `tiny-forge` binary only parses arguments, builds
//! the adapters, calls [`Deployer::deploy`] (or a query) and renders what comes back.
//!
//! Seams: [`ContainerRuntime`] (the Docker Engine), [`Proxy`] (none, NPM, Caddy), [`Store`] (`SQLite`),
//! [`Probe`] (HTTP health checks) and [`Reporter`] (progress events).

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
