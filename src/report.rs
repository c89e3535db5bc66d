//! Progress reporting: the typed [`Event`]s a deploy emits, and the [`Reporter`] that receives
//! them. The library never writes to a terminal; the binary renders events (tty, plain, json).
//!
//! # Contract
//! - The deployer stores every event except [`Event::PullProgress`] in the deploy's log *before*
//!   handing it to the reporter, so `history show` tells the same story as the live output.
//! - For each step, `StepStarted` comes first and exactly one of `StepFinished` or `StepFailed`
//!   last; `Log` and `PullProgress` events of a step come between them. Rollback runs as the
//!   step `rollback`, whose `Compensation` events say what was undone.
//! - A reporter must not block for long and cannot fail a deploy: it returns nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Severity of a log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Detail.
    Debug,
    /// Normal progress.
    Info,
    /// Something went wrong but the deploy goes on (or a compensation failed).
    Warn,
    /// A step failed.
    Error,
}

impl Level {
    /// The stored word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Debug => "debug",
            Self::Info => "info",
            Self::Warn => "warn",
            Self::Error => "error",
        }
    }

    /// Parses the stored word (unknown words read as `info`).
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s {
            "debug" => Self::Debug,
            "warn" => Self::Warn,
            "error" => Self::Error,
            _ => Self::Info,
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A step of the deploy pipeline (DESIGN §4), plus `rollback`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Step {
    /// Take the per-stage lock.
    Lock,
    /// Record the deploy.
    Record,
    /// Pull the image and resolve its digest.
    Pull,
    /// Make sure the Docker network exists.
    Network,
    /// Create the container.
    Create,
    /// Start the container.
    Start,
    /// Probe until healthy.
    Health,
    /// Publish through the proxy.
    Proxy,
    /// Watch the new instance through the proxy for the verify window (switch back on failure).
    Verify,
    /// Remove what the slot served before; evict beyond `max_instances`.
    Retire,
    /// Mark the deploy succeeded and the instance live.
    Finish,
    /// Undo what the deploy created.
    Rollback,
    /// `tiny-forge remove`: take a slot's instance down.
    Remove,
    /// `tiny-forge prune`: clean up.
    Prune,
    /// Tell the webhooks how the deploy ended.
    Notify,
    /// The release command, before the new instance is created.
    Release,
    /// The slot's `on_create` hook (its first deploy).
    OnCreate,
    /// The slot's `on_remove` hook (the slot goes).
    OnRemove,
}

impl Step {
    /// The step's name as logged.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Record => "record",
            Self::Pull => "pull",
            Self::Network => "network",
            Self::Create => "create",
            Self::Start => "start",
            Self::Health => "health",
            Self::Proxy => "proxy",
            Self::Verify => "verify",
            Self::Retire => "retire",
            Self::Finish => "finish",
            Self::Rollback => "rollback",
            Self::Remove => "remove",
            Self::Prune => "prune",
            Self::Notify => "notify",
            Self::Release => "release",
            Self::OnCreate => "on_create",
            Self::OnRemove => "on_remove",
        }
    }
}

impl Step {
    /// Parses a step's name.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Lock,
            Self::Record,
            Self::Pull,
            Self::Network,
            Self::Create,
            Self::Start,
            Self::Health,
            Self::Proxy,
            Self::Verify,
            Self::Retire,
            Self::Finish,
            Self::Rollback,
            Self::Remove,
            Self::Prune,
            Self::Notify,
            Self::Release,
            Self::OnCreate,
            Self::OnRemove,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something that happened during a deploy.
///
/// Serialised (the `--output json` contract) as an object with a `type` field naming the variant
/// in snake case and the variant's fields beside it, e.g.
/// `{"type":"step_finished","step":"pull","elapsed_ms":812}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A deploy got its id.
    DeployStarted {
        /// The deploy id.
        deploy_id: i64,
        /// `project/stage:tag`.
        slot: String,
        /// The image reference.
        image: String,
    },
    /// A step began.
    StepStarted {
        /// Which.
        step: Step,
    },
    /// A step succeeded.
    StepFinished {
        /// Which.
        step: Step,
        /// How long it took.
        elapsed_ms: u64,
    },
    /// A step failed; rollback follows.
    StepFailed {
        /// Which.
        step: Step,
        /// Why, with its cause chain on one line.
        error: String,
        /// How long it ran.
        elapsed_ms: u64,
    },
    /// Pull progress of one layer.
    PullProgress {
        /// Layer id.
        layer: String,
        /// Docker's status word (`Downloading`, `Pull complete`, …).
        status: String,
        /// Bytes done, when known.
        current: Option<u64>,
        /// Bytes in all, when known.
        total: Option<u64>,
    },
    /// A message from a step.
    Log {
        /// Which step.
        step: Step,
        /// Severity.
        level: Level,
        /// What.
        message: String,
    },
    /// One compensation of a rollback ran.
    Compensation {
        /// What it undid, e.g. `remove container tf-shop-dev-latest-7`.
        action: String,
        /// Whether it worked (a resource already gone counts as done).
        ok: bool,
        /// Detail or error.
        message: String,
    },
}

impl Event {
    /// The step this event belongs to.
    #[must_use]
    pub fn step(&self) -> Step {
        match self {
            Self::DeployStarted { .. } => Step::Record,
            Self::StepStarted { step }
            | Self::StepFinished { step, .. }
            | Self::StepFailed { step, .. }
            | Self::Log { step, .. } => *step,
            Self::PullProgress { .. } => Step::Pull,
            Self::Compensation { .. } => Step::Rollback,
        }
    }

    /// The severity this event is stored with.
    #[must_use]
    pub fn level(&self) -> Level {
        match self {
            Self::StepFailed { .. } => Level::Error,
            Self::Compensation { ok: false, .. } => Level::Warn,
            Self::Log { level, .. } => *level,
            Self::PullProgress { .. } => Level::Debug,
            _ => Level::Info,
        }
    }

    /// A one-line human message for the log.
    #[must_use]
    pub fn message(&self) -> String {
        match self {
            Self::DeployStarted { deploy_id, slot, image } => format!("deploy {deploy_id} of {slot} ({image})"),
            Self::StepStarted { step } => format!("{step} started"),
            Self::StepFinished { step, elapsed_ms } => {
                format!("{step} done in {}", crate::fmt::millis(*elapsed_ms))
            }
            Self::StepFailed { step, error, elapsed_ms } => {
                format!("{step} failed after {}: {error}", crate::fmt::millis(*elapsed_ms))
            }
            Self::PullProgress { layer, status, current, total } => match (current, total) {
                (Some(c), Some(t)) => format!("{layer}: {status} {c}/{t} bytes"),
                _ => format!("{layer}: {status}"),
            },
            Self::Log { message, .. } => message.clone(),
            Self::Compensation { action, ok, message } => {
                format!(
                    "{action}: {}{}",
                    if *ok { "done" } else { "FAILED" },
                    if message.is_empty() { String::new() } else { format!(" ({message})") }
                )
            }
        }
    }
}

/// Receives events as they happen. See the module contract.
pub trait Reporter {
    /// One event, stamped with Unix milliseconds.
    fn report(&self, ts_ms: i64, event: &Event);
}

/// A reporter that drops everything.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoReporter;

impl Reporter for NoReporter {
    fn report(&self, _: i64, _: &Event) {}
}

impl<R: Reporter + ?Sized> Reporter for &R {
    fn report(&self, ts_ms: i64, event: &Event) {
        (**self).report(ts_ms, event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_serialise_with_a_type_field() {
        let e = Event::StepFinished { step: Step::Pull, elapsed_ms: 812 };
        assert_eq!(serde_json::to_string(&e).unwrap(), r#"{"type":"step_finished","step":"pull","elapsed_ms":812}"#);
    }
}
