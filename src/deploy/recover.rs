//! Recovery of abandoned deploys (the pieces every undo of an instance shares are
//! [`super::instance`]'s).
//!
//! A deploy of a stage still marked `running` while we hold the stage's lock belongs to a
//! process that died (kill -9, power loss). Its instances are undone through the one executor:
//! the slot's host is pointed back at the instance that serves the slot (found by name, so this
//! holds even when the dead process switched it and died before recording that), or deleted
//! when none serves; then its container goes, then its row. The deploy is marked interrupted,
//! and what could not be undone is recorded for `prune`. Runs at the start of every deploy of
//! the stage and in `prune`.

use super::Deployer;
use super::instance::{domain_of, host_access, one_off_limit, service_back_to, take_down, upstream_of_newest};
use super::journal::{emit, stage_filter, store_leftovers};
use super::undo::{self, Compensation};
use crate::config::ResolvedStage;
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Leftover, Trigger};
use crate::engine::ContainerRuntime;
use crate::fmt::one_line;
use crate::look::Look;
use crate::proxy::Proxy;
use crate::report::{Event, Level, Step};
use crate::store::{DeployEnd, DeployRecord, InstanceRecord, Store};

/// Running deploys of `stage` other than `ours` (abandoned, when the caller holds the lock).
pub(super) fn find<R, P, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    ours: Option<DeployId>,
) -> Result<Vec<DeployRecord>, crate::store::StoreError> {
    Ok(d.store.running(&stage_filter(stage))?.into_iter().filter(|x| Some(x.id) != ours).collect())
}

/// The compensations that undo abandoned deploy `dead`: for each of its rows, its slot's host
/// back to the instance serving the slot (or deleted), its container, its row. A slot whose
/// serving instance could not be looked at keeps its host; that is returned as an
/// [`Leftover::Unseen`].
pub(super) async fn undo_of<R: ContainerRuntime, P, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    dead: &DeployRecord,
    rows: &[InstanceRecord],
) -> (Vec<Compensation>, Vec<Leftover>) {
    let mut comps = Vec::new();
    let mut unseen = Vec::new();
    for row in rows.iter().filter(|i| i.deploy_id == dead.id && i.status != InstanceStatus::Live) {
        let serving: Vec<InstanceRecord> = rows
            .iter()
            .filter(|o| o.tag == row.tag && o.status == InstanceStatus::Live && o.id != row.id)
            .cloned()
            .collect();
        let to = match upstream_of_newest(d, stage, &serving).await {
            Look::Found(up) => Some(up),
            Look::Absent => None,
            Look::Unknown(e) => {
                // The slot's live instance may serve: its host stays as it is (it is never
                // deleted on a failed look). The dead deploy's container is kept while the host
                // points at it, and the next run looks again.
                unseen.push(Leftover::Unseen {
                    what: format!("the instance serving {}/{}/{}", row.project, row.stage, row.tag),
                    cause: crate::domain::LeftoverCause::Failed { error: one_line(&e) },
                });
                comps.extend(take_down(stage, row, false));
                continue;
            }
        };
        comps.push(Compensation::Host {
            slot: format!("{}/{}/{}", row.project, row.stage, row.tag),
            domain: domain_of(stage, row),
            to,
            unsettled: false,
            access: host_access(stage),
        });
        // A swarm slot's update the dead deploy started: the service goes back to what the
        // live row runs (the service itself stays; the live row names it).
        if let Some(live) = serving.iter().rev().find(|o| o.container_name == row.container_name) {
            comps.push(service_back_to(stage, live));
        }
        comps.extend(take_down(stage, row, false));
    }
    (comps, unseen)
}

/// The one-off containers (release, `on_create`, `on_remove`) that deploy `dead` started and its
/// crash left behind, found by their labels. One that still runs is waited for, within what is
/// left of its own timeout (a migration is never killed halfway while it may still finish, and
/// the next one never runs beside it); then each goes through the executor.
async fn one_offs_of<R: ContainerRuntime, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    dead: DeployId,
    state_id: &str,
    log: &dyn Fn(String, Level),
) -> (Vec<Compensation>, Vec<Leftover>) {
    use crate::engine::{LABEL_DEPLOY_ID, LABEL_ROLE, LABEL_STATE};
    let list = match d.runtime.list_managed().await {
        Ok(l) => l,
        Err(e) => {
            let what = format!("one-off containers of deploy {dead}");
            let cause = crate::domain::LeftoverCause::Failed { error: one_line(&e) };
            return (Vec::new(), vec![Leftover::Unseen { what, cause }]);
        }
    };
    let label = |c: &crate::engine::ContainerInfo, k: &str| c.labels.get(k).cloned().unwrap_or_default();
    let mut comps = Vec::new();
    for c in list.iter().filter(|c| {
        label(c, LABEL_DEPLOY_ID) == dead.to_string()
            && c.labels.contains_key(LABEL_ROLE)
            && label(c, LABEL_STATE) == state_id
    }) {
        let role = label(c, LABEL_ROLE);
        if c.state == "running" {
            let now = crate::store::now_ms() / 1000;
            let age = std::time::Duration::from_secs(c.created.map_or(0, |t| u64::try_from(now - t).unwrap_or(0)));
            let left = one_off_limit(stage, &role).saturating_sub(age) + d.timeouts.engine;
            log(
                format!(
                    "{} ({role} of deploy {dead}) still runs; waiting up to {} for it to end",
                    c.name,
                    humantime::format_duration(left)
                ),
                Level::Warn,
            );
            match tokio::time::timeout(left, super::oneoff::wait_end(d.runtime, &c.name)).await {
                Ok(Ok(code)) => log(format!("{} ended with code {code}", c.name), Level::Info),
                Ok(Err(e)) => log(format!("{}: {}", c.name, one_line(&e)), Level::Warn),
                Err(_) => log(format!("{} overran its timeout; it is stopped", c.name), Level::Warn),
            }
        }
        comps.push(Compensation::Container {
            slot: label(c, crate::engine::LABEL_SLOT),
            name: c.name.clone(),
            kind: crate::engine::InstanceKind::Container,
            network: stage.network.clone(),
            domain: None,
        });
    }
    (comps, Vec::new())
}

/// The rest of `remove` `dead`: the slot it was taking away, taken away now.
async fn rest_of_removal<R: ContainerRuntime, P: Proxy, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    dead: &DeployRecord,
    state_id: &str,
) -> Result<Option<(Vec<Compensation>, Vec<Leftover>)>, String> {
    let tag = crate::domain::Tag::new(&dead.tag).map_err(|e| one_line(&e))?;
    let slot = crate::domain::Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag };
    // The slot was deployed again after the remove died (a recovery that could not finish it
    // then): the later deploy wins, and nothing of it is taken away.
    let rows = d.store.instances(&super::journal::slot_filter(&slot)).map_err(|e| one_line(&e))?;
    if rows.iter().any(|r| r.deploy_id > dead.id) {
        return Ok(None);
    }
    let removal = d.removal_of(stage, &slot, state_id).await.map_err(|e| one_line(&e))?;
    Ok(Some((removal.comps, removal.unseen)))
}

/// Rolls back every abandoned deploy of `stage` (finishes an abandoned `remove`); logs into `ours` when given. What could not be
/// undone is recorded as leftovers of the dead deploy.
pub(super) async fn abandoned<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    ours: Option<DeployId>,
    stage: &ResolvedStage,
    state_id: &str,
) where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    let dead_ones = match find(d, stage, ours) {
        Ok(v) => v,
        Err(e) => {
            let message = format!("cannot look for abandoned deploys: {}", one_line(&e));
            emit(d, ours, &Event::Log { step: Step::Record, level: Level::Warn, message });
            return;
        }
    };
    for dead in dead_ones {
        let log_into = Some(ours.unwrap_or(dead.id));
        let log = |message: String, level: Level| {
            emit(d, log_into, &Event::Log { step: Step::Record, level, message });
        };
        log(
            format!("deploy {} (pid {} on {}) was abandoned; rolling it back", dead.id, dead.pid, dead.host),
            Level::Warn,
        );
        let rows = match d.store.instances(&stage_filter(stage)) {
            Ok(r) => r,
            Err(e) => {
                log(format!("cannot read instances: {}", one_line(&e)), Level::Warn);
                continue;
            }
        };
        // A `remove` that died was taking its slot away on purpose: that is finished, not undone
        // (an undo would leave a half-removed slot that no later run knows to finish).
        let removal = dead.trigger == Trigger::Remove;
        let mut superseded = false;
        let (mut comps, mut unseen) = if removal {
            match rest_of_removal(d, stage, &dead, state_id).await {
                Ok(Some(both)) => both,
                Ok(None) => {
                    superseded = true;
                    (Vec::new(), Vec::new())
                }
                Err(e) => {
                    log(format!("cannot finish remove {}: {e}; prune finishes it", dead.id), Level::Warn);
                    continue;
                }
            }
        } else {
            undo_of(d, stage, &dead, &rows).await
        };
        let (one_offs, not_seen) = one_offs_of(d, stage, dead.id, state_id, &log).await;
        comps.extend(one_offs);
        unseen.extend(not_seen);
        for u in &unseen {
            log(u.to_string(), Level::Warn);
        }
        let mut leftovers = undo::execute(d, state_id, comps, &mut |c, o| {
            log(undo::line(c, o), if o.is_ok() { Level::Info } else { Level::Warn });
        })
        .await;
        leftovers.extend(unseen);
        store_leftovers(d, log_into, Some(dead.id), (stage.project.as_str(), stage.stage.as_str()), &leftovers);
        let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
        let error = match (removal, left.is_empty()) {
            _ if superseded => "abandoned by its process; the slot was deployed again since, so it stays".to_owned(),
            (false, true) => "abandoned by its process; rolled back".to_owned(),
            (false, false) => format!("abandoned by its process; rollback left: {}", left.join("; ")),
            (true, true) => "abandoned by its process; the removal was finished".to_owned(),
            (true, false) => format!("abandoned by its process; finishing the removal left: {}", left.join("; ")),
        };
        let end = DeployEnd { status: DeployStatus::Interrupted, error: Some(&error), url: None, leftovers: &left };
        if let Err(e) = d.store.finish_deploy(dead.id, &end) {
            log(format!("cannot mark deploy {} interrupted: {}", dead.id, one_line(&e)), Level::Warn);
        }
        log(format!("deploy {}: {error}", dead.id), if left.is_empty() { Level::Info } else { Level::Warn });
    }
}
