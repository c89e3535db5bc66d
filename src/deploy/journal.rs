//! What every operation of the deploy module writes down: events (stored, then reported),
//! leftovers, and the filters that select a slot's or a stage's rows. Used by the saga, the
//! placements, recovery, the lifecycle commands and prune; it imports none of them.

use std::time::Duration;

use super::Deployer;
use crate::domain::{DeployId, Leftover, Slot};
use crate::fmt::one_line;
use crate::report::{Event, Level, Step};
use crate::store::{Filter, LogEntry, Store, now_ms};

/// Milliseconds, saturating.
pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Stores (when the deploy has an id) and reports one event. A log entry that cannot be stored
/// must not fail the deploy: the reporter still sees it, and a warning says it was not stored.
pub(super) fn emit<R, P, S: Store, Pr>(d: &Deployer<'_, R, P, S, Pr>, id: Option<DeployId>, event: &Event) {
    let ts = now_ms();
    if let Some(id) = id
        && !matches!(event, Event::PullProgress { .. })
    {
        let entry =
            LogEntry { ts, level: event.level(), step: event.step().as_str().to_owned(), message: event.message() };
        if let Err(e) = d.store.append_event(id, &entry, event) {
            let message = format!("this deploy's log could not be stored: {}", one_line(&e));
            d.reporter.report(ts, &Event::Log { step: event.step(), level: Level::Warn, message });
        }
    }
    d.reporter.report(ts, event);
}

/// Records `leftovers` of `project/stage`, or says in the deploy's log that it could not.
pub(super) fn store_leftovers<R, P, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    log_into: Option<DeployId>,
    owner: Option<DeployId>,
    (project, stage): (&str, &str),
    leftovers: &[Leftover],
) {
    if leftovers.is_empty() {
        return;
    }
    if let Err(e) = d.store.add_leftovers(project, stage, owner, leftovers) {
        let message = format!("leftovers could not be recorded ({}); `prune` still finds them", one_line(&e));
        emit(d, log_into, &Event::Log { step: Step::Rollback, level: Level::Warn, message });
    }
}

/// The rows of one slot.
pub(super) fn slot_filter(slot: &Slot) -> Filter {
    Filter {
        project: Some(slot.project.to_string()),
        stage: Some(slot.stage.to_string()),
        tag: Some(slot.tag.to_string()),
    }
}

/// The rows of one stage.
pub(super) fn stage_filter(stage: &crate::config::ResolvedStage) -> Filter {
    Filter { project: Some(stage.project.to_string()), stage: Some(stage.stage.to_string()), tag: None }
}
