//! The one way through (DESIGN §12, cargo's `ops`, mini-redis's `Command`): a [`Command`] (deploy,
//! rollback or removal of one slot, with its lock wait) run by [`Deployer::run`] into a typed
//! [`CommandResult`]. The CLI (local and remote), the server's API, its webhooks, the poller and
//! approvals all call it; none builds its own sequence, result object or exit code.

mod adapters;
pub mod history;
pub mod list;
mod result;

pub use adapters::{AdapterError, Adapters, Notifications, StateAccess, lock_dir};

pub use result::{
    CommandError, CommandResult, Deployed, ExitCode, NotDeployed, Removed, ResultLine, ResultTag, Skipped,
};

use crate::config::ResolvedStage;
use crate::deploy::{DeployRequest, Deployer};
use crate::domain::{DeployId, Tag, Trigger};
use crate::engine::ContainerRuntime;
use crate::health::Probe;
use crate::lock::LockWait;
use crate::proxy::Proxy;
use crate::report::{Event, Level, Step};
use crate::store::Store;

/// What to do to a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    /// Deploy the tag (or, for a push, exactly `image`: `repo@digest`).
    Deploy {
        /// Redeploy even when the slot already runs this digest with these settings.
        force: bool,
        /// Deploy this reference instead of `repo:tag` (a push's resolved digest).
        image: Option<String>,
        /// Why it runs (`deploy`, `webhook`, `poll`).
        trigger: Trigger,
        /// Run the stage's verify step, if it has one (`false`: `--no-verify`).
        verify: bool,
    },
    /// Go back to an earlier deploy of the slot (`to`, or the newest one of another digest).
    Rollback {
        /// The deploy to return to.
        to: Option<DeployId>,
    },
    /// Take the slot down.
    Remove,
}

impl CommandKind {
    /// `deploy`, `rollback` or `remove`.
    #[must_use]
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Deploy { .. } => "deploy",
            Self::Rollback { .. } => "rollback",
            Self::Remove => "remove",
        }
    }
}

/// One command on one slot of a stage resolved from the config.
#[derive(Debug, Clone)]
pub struct Command {
    /// The stage, resolved (with its secrets for a deploy).
    pub stage: ResolvedStage,
    /// The slot's tag (the stage's default tag when the user gave none).
    pub tag: Tag,
    /// What to do.
    pub kind: CommandKind,
    /// How long to wait for the stage's lock.
    pub wait: LockWait,
}

impl Command {
    /// `project/stage:tag`.
    #[must_use]
    pub fn slot(&self) -> String {
        format!("{}/{}:{}", self.stage.project, self.stage.stage, self.tag)
    }
}

impl<R, P, S, Pr> Deployer<'_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    /// Runs `cmd` to its end.
    ///
    /// # Errors
    /// [`CommandError`] when it could not begin: the lock is busy (or a signal came while
    /// waiting for it), the state file cannot be used, or a rollback has nothing to return to.
    /// Nothing was changed then. Every later failure is a [`CommandResult`].
    pub async fn run(&self, cmd: &Command) -> Result<CommandResult, CommandError> {
        let (trigger, image_override, force, verify) = match &cmd.kind {
            CommandKind::Remove => {
                let report = self.remove(&cmd.stage, &cmd.tag, cmd.wait).await?;
                return Ok(CommandResult::of_removal(&cmd.slot(), &report));
            }
            CommandKind::Deploy { force, image, trigger, verify } => (*trigger, image.clone(), *force, *verify),
            CommandKind::Rollback { to } => {
                let source = self.rollback_source(&cmd.stage, &cmd.tag, *to)?;
                let digest = source.digest.clone().unwrap_or_default();
                let message = format!("rolling back {} to deploy {} ({digest})", cmd.slot(), source.id);
                crate::deploy::report(self, &Event::Log { step: Step::Lock, level: Level::Info, message });
                (Trigger::Rollback, Some(cmd.stage.image.at_digest(&digest)), false, true)
            }
        };
        let req = DeployRequest {
            stage: cmd.stage.clone(),
            tag: cmd.tag.clone(),
            trigger,
            image_override,
            lock_wait: cmd.wait,
            force,
            verify,
        };
        let outcome = self.deploy(&req).await?;
        Ok(CommandResult::of_deploy(&outcome))
    }
}
