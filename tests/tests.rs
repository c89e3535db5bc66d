//! Integration tests: one binary (fewer links on a two-core CI). They run the real `tiny-forge`
//! binary against the real Docker Engine and a real registry on loopback. Run one area with
//! `cargo test --test integration <area>::`.
//!
//! | file | covers |
//! |---|---|
//! | `deploy.rs` | `deploy` end to end: pull, create, health, proxy-less URLs, failures rolled back |
//! | `lifecycle.rs` | `max_instances`, rollback, remove, prune, zero-downtime redeploys |
//! | `caddy.rs` | the Caddy backend with a real Caddy in the path |
//! | `npm.rs`, `npm_double.rs` | the NPM backend against the strict double; the double against NPM's recorded exchanges |
//! | `contract/` | the same behaviour asserted of the fakes and the real engine and proxies |
//! | `registry_auth.rs` | private registries: htpasswd, credential helpers, identity tokens |
//! | `hooks.rs` | the release phase, slot hooks, the instance's own env, protected previews |
//! | `day_two.rs` | image cleanup, logs, no-op redeploys, drift |
//! | `reconcile.rs` | reconcile with reality: things removed or changed behind tiny-forge's back |
//! | `could_not_look.rs` | a failing Docker socket in front of the real one: a failed read is never an absence |
//! | `crash.rs` | signals and kill -9 at every step boundary, locks, concurrent deploys |
//! | `chaos.rs` | randomized operations × faults, checked against the invariants (`chaos::swarm` on Swarm) |
//! | `swarm.rs` | the swarm engine on a one-node swarm (run in `scripts/test`'s second pass) |
//! | `verify.rs` | the verify step after cut-over behind real Caddy and the NPM double: switch-back on a crash or 5xx, the window |
//! | `serve.rs`, `serve/` | `tiny-forge serve`: API, tokens, webhooks, SSE, the remote CLI; behind a proxy, restarts, replays |
//! | `ui.rs` | the web page in headless Chromium (WebDriver): sign-in, previews, live deploys, approvals, scope, CSRF |
//! | `notify.rs` | webhook notifications: payloads, signatures, formats, never blocking a deploy |
//! | `output.rs` | what a deploy prints, pinned by snapshots |
//! | `cli.rs`, `hostile.rs` | the command line; hostile input (odd tags, unusable state, a full disk) |
//! | `packaging.rs` | the FROM-scratch image: builds here, runs, deploys, notifies |
//! | `support/` | the harness: test images, registry, Caddy, the NPM double, the faulty Docker socket, a WebDriver client |
mod caddy;
mod chaos;
mod cli;
mod contract;
mod could_not_look;
mod crash;
mod day_two;
mod deploy;
mod hooks;
mod hostile;
mod lifecycle;
mod notify;
mod npm;
mod npm_double;
mod output;
mod packaging;
mod reconcile;
mod registry_auth;
mod serve;
mod support;
mod swarm;
mod ui;
mod verify;
