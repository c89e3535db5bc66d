//! One-off containers (issue 15): the release command, and a slot's `on_create` and
//! `on_remove` hooks. Each runs from the deploy's image *by digest*, with the instance's env, on
//! the stage's network, labelled as tiny-forge's with its role, and streams its output line by
//! line to the caller. It is removed when it ends; whoever starts one records its name first
//! (a [`Compensation::Container`](super::undo::Compensation)), so a signal, a crash or a hang
//! never leaves it behind for long: the rollback, recovery or `prune` removes it by name.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::config::OneOff;
use crate::engine::{self, ContainerRuntime, ContainerSpec, LogStream, LogsRequest, RestartPolicy, RuntimeError};
use crate::fmt::one_line;

/// How many of its last lines a failed one-off's error carries.
const TAIL: usize = 20;

/// One one-off container to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneOffRun {
    /// Its container name (deterministic: recorded before it exists).
    pub name: String,
    /// `repo@sha256:…`.
    pub image: String,
    /// The instance's env.
    pub env: Vec<(String, String)>,
    /// Its labels (tiny-forge's, with `dev.tiny-forge.role`).
    pub labels: BTreeMap<String, String>,
    /// The stage's network.
    pub network: String,
    /// The app's port (exposed, as for an instance).
    pub port: u16,
    /// What to run, and for how long at most. The command is the container's CMD: with an
    /// image ENTRYPOINT, its arguments (as `docker run IMAGE COMMAND…`).
    pub what: OneOff,
    /// Credentials for the image's registry from the config, if any (the engine's own are
    /// looked up too): a hook that runs later may need to pull its digest again.
    pub auth: Option<engine::RegistryAuth>,
}

/// Why a one-off did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum OneOffError {
    /// The engine would not run it.
    #[error(transparent)]
    Engine(#[from] RuntimeError),
    /// It exited with a non-zero code.
    #[error("{name} exited with code {code}; last lines:{}", tail(.logs))]
    Failed {
        /// Its container.
        name: String,
        /// Its exit code.
        code: i64,
        /// Its last lines.
        logs: Vec<String>,
    },
    /// It ran past its timeout and was stopped.
    #[error("{name} did not finish within {}; it was stopped. Last lines:{}", humantime::format_duration(*.after), tail(.logs))]
    TimedOut {
        /// Its container.
        name: String,
        /// The timeout.
        after: Duration,
        /// Its last lines.
        logs: Vec<String>,
    },
}

impl OneOffError {
    /// Its last log lines (none for an engine error). They may hold secrets: they belong in the
    /// deploy's local history, and in a notification only where a target asks for them
    /// (`include_logs`).
    #[must_use]
    pub fn logs(&self) -> &[String] {
        match self {
            Self::Failed { logs, .. } | Self::TimedOut { logs, .. } => logs,
            Self::Engine(_) => &[],
        }
    }

    /// The message without the log lines, for what leaves the host (notifications) and what
    /// is stored as a leftover's cause.
    #[must_use]
    pub fn without_logs(&self) -> String {
        match self {
            Self::Failed { name, code, .. } => {
                format!("{name} exited with code {code}; its last lines are in the deploy's history")
            }
            Self::TimedOut { name, after, .. } => format!(
                "{name} did not finish within {}; it was stopped. Its last lines are in the deploy's history",
                humantime::format_duration(*after)
            ),
            Self::Engine(e) => crate::fmt::one_line(e),
        }
    }
}

fn tail(lines: &[String]) -> String {
    if lines.is_empty() { " (none)".into() } else { lines.iter().flat_map(|l| [" | ", l.as_str()]).collect() }
}

/// Runs `run` to its end, handing each output line to `on_line`, and removes its container
/// (also when it fails; if that removal fails, the caller's recorded compensation, or `prune`,
/// removes it). A container of that name it did not make (another run's one-off, left by a
/// crash and maybe still running) is never removed: the run fails with
/// [`RuntimeError::NameTaken`].
pub(super) async fn run<R: ContainerRuntime>(
    rt: &R,
    run: &OneOffRun,
    on_line: &mut dyn FnMut(LogStream, &str),
) -> Result<(), OneOffError> {
    let spec = ContainerSpec {
        name: run.name.clone(),
        image: run.image.clone(),
        env: run.env.clone(),
        labels: run.labels.clone(),
        network: run.network.clone(),
        port: run.port,
        restart: RestartPolicy::No,
        memory: None,
        nano_cpus: None,
        command: Some(run.what.command.clone()),
        volumes: Vec::new(),
    };
    let result = execute(rt, &spec, run.auth.as_ref(), run.what.timeout, on_line).await;
    if matches!(result, Err(OneOffError::Engine(RuntimeError::NameTaken { .. }))) {
        return result;
    }
    // Gone either way; a failure to remove is left to the recorded compensation.
    let _removal = rt.remove(&run.name).await;
    result
}

/// How soon a failed look at a one-off's exit code is tried again.
const LOOK_AGAIN: Duration = Duration::from_millis(500);

/// The exit code of one-off `name`, once it ends. A look that failed is tried again (the
/// caller bounds the wait): only the code, or the engine saying the container is gone, ends it.
pub(super) async fn wait_end<R: ContainerRuntime>(rt: &R, name: &str) -> Result<i64, RuntimeError> {
    loop {
        match rt.wait_exit(name).await {
            Ok(code) => return Ok(code),
            Err(e) if gone(&e) => return Err(e),
            Err(_) => tokio::time::sleep(LOOK_AGAIN).await,
        }
    }
}

/// The engine says the container is not there (removed while it was waited for).
fn gone(e: &RuntimeError) -> bool {
    matches!(e, RuntimeError::Engine { status: 404, .. })
}

async fn execute<R: ContainerRuntime>(
    rt: &R,
    spec: &ContainerSpec,
    auth: Option<&engine::RegistryAuth>,
    timeout: Duration,
    on_line: &mut dyn FnMut(LogStream, &str),
) -> Result<(), OneOffError> {
    // By digest: a no-op when the engine has it; else (a hook run later, after image cleanup)
    // a real pull.
    let repo = spec.image.split_once('@').map_or(spec.image.as_str(), |(r, _)| r);
    let auth = rt.registry_auth(repo, auth).await.ok().flatten().map(|(_, a)| a);
    rt.pull(&spec.image, auth.as_ref(), &mut |_| {}).await?;
    match rt.create(spec).await {
        // Gone again between the pull and the create: pull it once more.
        Err(engine::RuntimeError::MissingImage { .. }) => {
            rt.pull(&spec.image, auth.as_ref(), &mut |_| {}).await?;
            rt.create(spec).await?;
        }
        other => {
            other?;
        }
    }
    rt.start(&spec.name).await?;
    let mut last: VecDeque<String> = VecDeque::with_capacity(TAIL);
    let follow = LogsRequest { follow: true, since: None, tail: None };
    let mut collect = |stream: LogStream, line: &str| {
        if last.len() == TAIL {
            last.pop_front();
        }
        last.push_back(line.to_owned());
        on_line(stream, line);
    };
    let watched = async {
        // The log stream ends with the container; its code is the engine's word. A stream that
        // broke, or a look at the code that failed, is not the end of the command: a migration
        // is never killed half-way while it may still finish. Only its timeout, or the engine
        // saying the container is gone, ends the wait.
        if let Err(e) = rt.logs(&spec.name, follow, &mut collect).await {
            let line = format!("[tiny-forge] its output stream broke ({}); waiting for it to end", one_line(&e));
            collect(LogStream::Stderr, &line);
        }
        wait_end(rt, &spec.name).await
    };
    let outcome = tokio::time::timeout(timeout, watched).await;
    let logs: Vec<String> = last.into_iter().collect();
    match outcome {
        Err(_) => Err(OneOffError::TimedOut { name: spec.name.clone(), after: timeout, logs }),
        Ok(Err(e)) => Err(e.into()),
        Ok(Ok(0)) => Ok(()),
        Ok(Ok(code)) => Err(OneOffError::Failed { name: spec.name.clone(), code, logs }),
    }
}

/// The labels of a one-off of `role` for `slot`'s deploy `deploy`, made by state file
/// `state_id`.
pub(super) fn labels(
    slot: &crate::domain::Slot,
    deploy: crate::domain::DeployId,
    state_id: &str,
    role: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (engine::LABEL_MANAGED.to_owned(), "true".to_owned()),
        (engine::LABEL_STATE.to_owned(), state_id.to_owned()),
        (engine::LABEL_PROJECT.to_owned(), slot.project.to_string()),
        (engine::LABEL_STAGE.to_owned(), slot.stage.to_string()),
        (engine::LABEL_TAG.to_owned(), slot.tag.to_string()),
        (engine::LABEL_SLOT.to_owned(), slot.key()),
        (engine::LABEL_DEPLOY_ID.to_owned(), deploy.to_string()),
        (engine::LABEL_ROLE.to_owned(), role.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_without_logs_keeps_the_code_and_drops_every_line() {
        let logs = vec!["connecting to postgres://app:s3cret@db/app".to_owned()];
        for e in [
            OneOffError::Failed { name: "tf-x-release".into(), code: 1, logs: logs.clone() },
            OneOffError::TimedOut { name: "tf-x-release".into(), after: Duration::from_secs(30), logs: logs.clone() },
        ] {
            assert!(e.to_string().contains("s3cret"), "the local message keeps them: {e}");
            let shown = e.without_logs();
            assert!(!shown.contains("s3cret") && shown.contains("tf-x-release"), "{shown}");
            assert_eq!(e.logs(), logs.as_slice());
        }
    }
}
