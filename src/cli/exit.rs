//! Exit codes: one exhaustive match per outcome kind, so a new failure kind is a compile error
//! until someone decides its code.

use tiny_forge::deploy::{DeployError, DeployOutcome};
use tiny_forge::domain::DeployStatus;
use tiny_forge::lock::LockError;
use tiny_forge::store::DeployRecord;

/// Deployed, or the command did what it was asked.
pub(crate) const OK: u8 = 0;
/// The deploy failed and was rolled back completely.
pub(crate) const FAILED: u8 = 1;
/// Usage or config error; nothing was touched.
pub(crate) const USAGE: u8 = 2;
/// The rollback left something behind; `prune` finishes the job.
pub(crate) const INCOMPLETE: u8 = 3;
/// The stage's lock is held by another run.
pub(crate) const BUSY: u8 = 4;
/// `--remote`: the server took the work, then could not be asked how it ended within the
/// retry budget (a restart that took too long, a server gone). `history` tells, later.
pub(crate) const OUTCOME_UNKNOWN: u8 = 5;
/// Interrupted by a signal, rolled back.
pub(crate) const INTERRUPTED: u8 = 130;

pub(crate) fn for_outcome(outcome: &DeployOutcome) -> u8 {
    match outcome {
        // Live, but what it replaced or evicted could not all be cleaned up: the leftovers are
        // listed, and `prune` finishes them (README: exit 3).
        DeployOutcome::Succeeded(s) if !s.leftovers.is_empty() => INCOMPLETE,
        DeployOutcome::Succeeded(_) => OK,
        DeployOutcome::Failed(f) if !f.rollback.is_complete() => INCOMPLETE,
        DeployOutcome::Failed(f) if f.interrupted => INTERRUPTED,
        DeployOutcome::Failed(_) => FAILED,
    }
}

pub(crate) fn for_deploy_error(e: &DeployError) -> u8 {
    match e {
        DeployError::Lock(LockError::Busy { .. }) => BUSY,
        DeployError::Lock(LockError::Io { .. }) | DeployError::Store(_) => USAGE,
        DeployError::Interrupted => INTERRUPTED,
    }
}

/// The exit code a finished deploy had (for `history show --follow`); `None` while it runs.
pub(crate) fn for_record(d: &DeployRecord) -> Option<u8> {
    match d.status {
        DeployStatus::Running => None,
        // A live deploy that left something behind exits 3 too (see `for_outcome`).
        DeployStatus::Succeeded | DeployStatus::Failed | DeployStatus::Interrupted if !d.leftovers.is_empty() => {
            Some(INCOMPLETE)
        }
        DeployStatus::Succeeded | DeployStatus::RolledBack => Some(OK),
        DeployStatus::Interrupted => Some(INTERRUPTED),
        DeployStatus::Failed => Some(FAILED),
    }
}
