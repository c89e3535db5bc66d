//! `tiny-forge serve` (DESIGN §9): one long-running process beside the CLI, on the same
//! library, state file and locks, so its deploys are indistinguishable in `history` (their
//! `actor` says who asked).
//!
//! # Threads
//! Deploy futures are not `Send` (STYLE §3). The binary runs everything on its one
//! current-thread runtime: the [`Executor`] owns the adapters and runs each job as a local task
//! (`LocalSet`); axum serves on the same runtime with `Send` handlers that only talk to the
//! executor through a channel ([`Command`]) and read the state file through their own
//! connection. One thread is enough here: every wait is I/O, and a handler's own work
//! (a hash, a parse, a channel send) takes microseconds.
//!
//! # Modules
//! - [`api`]: routes; `state.rs`: what handlers share, the token extractor; `error.rs`: errors →
//!   status codes; `approvals.rs`: held pushes;
//! - `sse.rs`: a deploy's log as Server-Sent Events;
//! - `ui/`: the web page under `/ui` (sessions, pages, actions), on the same handlers' paths;
//! - [`auth`]: tokens, the failed-auth cap; `client.rs`: which client a request counts against;
//! - [`live`]: the config file as it is now (re-read per job, on SIGHUP);
//! - [`listen`]: the accept loop (connection cap, header and idle timeouts, shutdown deadline);
//! - `hooks.rs` and [`receivers`]: registry webhooks, one pure parser per format;
//! - `queue.rs`: dedupe, debounce, per-slot coalescing (the only module that knows time);
//! - `executor.rs`: runs API jobs and pushes through [`crate::Deployer`]; `push.rs`: what it does
//!   with a push the queue released;
//! - `poller.rs`: tag rules with `poll` set, for registries without webhooks;
//! - [`wire`]: the JSON both the server and the remote CLI speak;
//! - [`view`]: the managed containers, kept current from the engine's event stream, so that
//!   `GET /v1/instances` and the web page need no container list per request;
//! - `jobs.rs`, `metrics.rs`. What `list` shows is [`crate::ops::list`], shared with the CLI.

pub mod api;
mod approvals;
pub mod auth;
pub(crate) mod client;
pub(crate) mod error;
pub(crate) mod executor;
mod hooks;
pub(crate) mod jobs;
pub mod listen;
pub mod live;
pub(crate) mod metrics;
mod phase;
pub(crate) mod poller;
mod push;
pub(crate) mod queue;
pub mod receivers;
mod sse;
pub(crate) mod state;
pub mod tls;
mod ui;
pub mod view;
pub mod wire;

pub use phase::Phase;
pub use state::Api;

#[cfg(test)]
mod tests;
pub use executor::{Command, Executor, Shared};
pub use live::{LiveConfig, Log, Receiver};
