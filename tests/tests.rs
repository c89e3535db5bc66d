//! Integration tests: one binary (fewer links on a two-core CI). They run the real `tiny-forge`
//! binary against the real Docker Engine and a real registry on loopback.

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
