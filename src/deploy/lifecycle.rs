//! Lifecycle operations beside `deploy`: `remove` a slot on purpose, find the deploy a
//! `rollback` returns to, and `prune` (the cron job). Each describes its work as compensations
//! (`prune` as a [`StagePlan`]) and hands them to the one executor; each records what it did in
//! history and what it could not do as leftovers.

use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

use super::Deployer;
use super::instance::{domain_of, take_down};
use super::journal::{emit, slot_filter, stage_filter, store_leftovers};
use super::outcome::DeployError;
use super::plan::{self, Action, Reason, Seen, StagePlan};
use super::undo::{self, Compensation, Outcome};
use crate::config::ResolvedStage;
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Leftover, LeftoverCause, Slot, Tag, Trigger};
use crate::engine::{self, ContainerInfo, ContainerRuntime, InstanceKind};
use crate::fmt::one_line;
use crate::lock::{LockError, LockWait, StageLock};
use crate::look::Look;
use crate::proxy::{HostAccess, Proxy};
use crate::report::{Event, Level, Step};
use crate::store::{DeployEnd, DeployRecord, NewDeploy, Store, now_ms};

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// The history row of the removal (`None` when there was nothing to remove).
    pub deploy_id: Option<DeployId>,
    /// One line per thing taken down.
    pub removed: Vec<String>,
    /// What could not be removed (`prune` finishes it).
    pub leftovers: Vec<Leftover>,
    /// Bytes of images deleted afterwards.
    pub bytes_freed: u64,
}

/// Why there is nothing to roll back to.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// No earlier successful deploy of the slot ran another image.
    #[error(
        "nothing to roll back to: {slot} has no earlier successful deploy of another image that was not itself rolled back; see `tiny-forge history` and use --to"
    )]
    Nothing {
        /// `project/stage:tag`.
        slot: String,
    },
    /// `--to` names a deploy that does not exist.
    #[error("deploy {0} not found; see `tiny-forge history`")]
    NotFound(DeployId),
    /// `--to` names a deploy of another slot.
    #[error("deploy {id} deployed {other}, not {slot}")]
    WrongSlot {
        /// The deploy.
        id: DeployId,
        /// Its slot.
        other: String,
        /// The slot asked for.
        slot: String,
    },
    /// `--to` names a deploy that never served.
    #[error("deploy {id} {status}; only a deploy that succeeded can be returned to")]
    NotSucceeded {
        /// The deploy.
        id: DeployId,
        /// Its status.
        status: DeployStatus,
    },
    /// The state file.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// What `prune` is asked to do.
#[derive(Debug, Clone)]
pub struct PruneRequest {
    /// Every configured stage.
    pub stages: Vec<ResolvedStage>,
    /// Remove tag instances older than this (overrides each stage's `ttl`).
    pub older_than: Option<Duration>,
    /// Let age-based removal reach the default tag's slot too.
    pub include_default: bool,
    /// Only say what would be done.
    pub dry_run: bool,
    /// Delete finished deploys older than this from history.
    pub history_retention: Duration,
}

/// What `prune` did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// One line per action, in the imperative ("remove container …: why"), the same whether
    /// done or only planned (`dry_run`).
    pub actions: Vec<String>,
    /// Stages skipped because a deploy holds their lock.
    pub skipped: Vec<String>,
    /// What could not be looked at or done, one line each.
    pub failures: Vec<String>,
    /// What is still left after this run (recorded for the next one).
    pub leftovers: Vec<Leftover>,
    /// Bytes of images deleted (dry run: that would be).
    pub bytes_freed: u64,
}

/// What tidying a repository's images (and a stage's idle network) did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tidied {
    /// One line per image deleted or network removed.
    pub(super) done: Vec<String>,
    /// What was left out, and why (a running deploy of the repository, an image in use…).
    pub(super) notes: Vec<String>,
    /// Bytes of images deleted.
    pub(super) bytes_freed: u64,
}

impl<R, P, S, Pr> Deployer<'_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    /// The managed containers of the slot `slot` (its [`engine::LABEL_SLOT`] key), and on a
    /// swarm stage its services: asked of the engine by label, so that the cost does not grow
    /// with the number of other slots.
    ///
    /// # Errors
    /// When either list fails: a list is complete, or it is an error.
    pub(super) async fn managed_of(
        &self,
        stage: &ResolvedStage,
        slot: &str,
    ) -> Result<Vec<(ContainerInfo, InstanceKind)>, engine::RuntimeError> {
        let mut all: Vec<(ContainerInfo, InstanceKind)> =
            self.runtime.list_managed_of_slot(slot).await?.into_iter().map(|c| (c, InstanceKind::Container)).collect();
        if stage.engine.instance_kind() == InstanceKind::Service {
            all.extend(
                self.runtime
                    .list_managed_services()
                    .await?
                    .into_iter()
                    .filter(|c| c.labels.get(engine::LABEL_SLOT).is_some_and(|s| s == slot))
                    .map(|c| (c, InstanceKind::Service)),
            );
        }
        Ok(all)
    }

    /// Records a non-deploy operation on `slot` as a history row.
    fn record(&self, slot: &Slot, image: String, trigger: Trigger) -> Result<DeployId, DeployError> {
        let id = self.store.begin_deploy(&NewDeploy {
            slot: slot.clone(),
            image,
            trigger,
            pid: std::process::id(),
            host: self.host.clone(),
            actor: self.actor.clone(),
        })?;
        Ok(id)
    }

    /// Ends a history row of a non-deploy operation; a store failure is logged, not dropped.
    fn finish(&self, id: DeployId, leftovers: &[Leftover]) {
        let left: Vec<String> = leftovers.iter().map(ToString::to_string).collect();
        let (status, error) = if left.is_empty() {
            (DeployStatus::Succeeded, None)
        } else {
            (DeployStatus::Failed, Some(format!("left behind: {}", left.join("; "))))
        };
        let end = DeployEnd { status, error: error.as_deref(), url: None, leftovers: &left };
        if let Err(e) = self.store.finish_deploy(id, &end) {
            let message = format!("the end of this operation could not be recorded: {}", one_line(&e));
            emit(self, Some(id), &Event::Log { step: Step::Remove, level: Level::Warn, message });
        }
    }

    /// Takes `tag`'s slot of `stage` down: its proxy host (when ours and the slot's), every
    /// container of ours the slot has (with or without a row), every row; recorded in history
    /// with trigger `remove`. Nothing to remove is not an error.
    ///
    /// The lock wait gives up when the deployer is cancelled ([`DeployError::Interrupted`],
    /// nothing touched); the removal itself, once begun, stops only when aborted (a second
    /// signal), leaving what it did not take down as leftovers, like a rollback.
    ///
    /// # Errors
    /// [`DeployError`] when the lock or the state file is unusable, or the wait was cancelled.
    pub async fn remove(&self, stage: &ResolvedStage, tag: &Tag, wait: LockWait) -> Result<RemoveReport, DeployError> {
        let what = format!("{}/{}", stage.project, stage.stage);
        let lock_path = self.lock_path(&stage.project, &stage.stage);
        let _lock = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Err(DeployError::Interrupted),
            l = StageLock::acquire(&lock_path, &what, wait) => l?,
        };
        let state_id = self.store.state_id()?;
        let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: tag.clone() };
        let SlotRemoval { rows, comps, unseen, nothing } = self.removal_of(stage, &slot, &state_id).await?;
        if nothing {
            return Ok(RemoveReport::default());
        }
        let digest = rows.first().map_or_else(|| "unknown".to_owned(), |r| r.digest.clone());
        let id = self.record(&slot, stage.image.at_digest(&digest), Trigger::Remove)?;
        let mut report = RemoveReport { deploy_id: Some(id), ..RemoveReport::default() };
        emit(self, Some(id), &Event::StepStarted { step: Step::Remove });
        let t0 = tokio::time::Instant::now();
        for u in &unseen {
            emit(self, Some(id), &Event::Log { step: Step::Remove, level: Level::Warn, message: u.to_string() });
        }
        let mut leftovers = undo::execute(self, &state_id, comps, &mut |c, o| {
            let message = undo::line(c, o);
            let level = if o.is_ok() { Level::Info } else { Level::Warn };
            emit(self, Some(id), &Event::Log { step: Step::Remove, level, message: message.clone() });
            if o.is_ok() {
                report.removed.push(message);
            }
        })
        .await;
        leftovers.extend(unseen);
        store_leftovers(self, Some(id), Some(id), (stage.project.as_str(), stage.stage.as_str()), &leftovers);
        let tidied = self.tidy(stage, Some(id), &state_id).await;
        for line in tidied.done.iter().chain(&tidied.notes) {
            emit(self, Some(id), &Event::Log { step: Step::Remove, level: Level::Info, message: line.clone() });
        }
        report.removed.extend(tidied.done);
        report.bytes_freed = tidied.bytes_freed;
        let elapsed_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        emit(self, Some(id), &Event::StepFinished { step: Step::Remove, elapsed_ms });
        self.finish(id, &leftovers);
        report.leftovers = leftovers;
        Ok(report)
    }

    /// What taking `slot` of `stage` away means now: its host (when ours and the slot's), every
    /// row's instance and row, every container of ours the slot has that no row names, and its
    /// `on_remove`. Shared by `remove` and by the recovery of a `remove` whose process died.
    ///
    /// # Errors
    /// When the state file cannot be read.
    pub(super) async fn removal_of(
        &self,
        stage: &ResolvedStage,
        slot: &Slot,
        state_id: &str,
    ) -> Result<SlotRemoval, crate::store::StoreError> {
        let rows = self.store.instances(&slot_filter(slot))?;
        let domain = stage.host_name(&slot.tag);
        let mut comps = vec![Compensation::Host {
            slot: slot.key(),
            domain: domain.clone(),
            to: None,
            unsettled: false,
            access: HostAccess::Public,
        }];
        for row in &rows {
            comps.extend(take_down(stage, row, false));
        }
        // The slot goes: its on_remove hook runs once, from the newest digest it ran.
        if let Some(newest) = rows.last()
            && let (away, _) = super::instance::take_slot_away(self.proxy, stage, newest, state_id)
        {
            comps.extend(away.into_iter().filter(|c| matches!(c, Compensation::Hook { .. })));
        }
        let known: HashSet<&str> = rows.iter().map(|r| r.container_name.as_str()).collect();
        // Containers (and a swarm slot's service) of the slot that no row names. A list that
        // failed is not an empty one: what it would have shown stays, as an unseen leftover.
        let mut unseen = Vec::new();
        let orphans: Vec<(String, InstanceKind)> = match self.managed_of(stage, &slot.key()).await {
            Ok(list) => list
                .into_iter()
                .filter(|(c, _)| {
                    c.labels.get(engine::LABEL_SLOT) == Some(&slot.key())
                        && c.labels.get(engine::LABEL_STATE).map(String::as_str) == Some(state_id)
                        && !known.contains(c.name.as_str())
                })
                .map(|(c, kind)| (c.name, kind))
                .collect(),
            Err(e) => {
                unseen.push(Leftover::Unseen {
                    what: format!("containers of {slot} that no instance row names"),
                    cause: LeftoverCause::Failed { error: one_line(&e) },
                });
                Vec::new()
            }
        };
        for (name, kind) in &orphans {
            comps.push(Compensation::Container {
                slot: slot.key(),
                name: name.clone(),
                kind: *kind,
                network: stage.network.clone(),
                domain: Some(domain.clone()),
            });
        }
        let host_is_ours = match self.proxy.find(&domain).await {
            Look::Found(h) => h.belongs_to(state_id, &slot.key()),
            Look::Absent => false,
            Look::Unknown(_) => true, // the executor reports the failure
        };
        let nothing = rows.is_empty() && orphans.is_empty() && unseen.is_empty() && !host_is_ours;
        Ok(SlotRemoval { rows, comps, unseen, nothing })
    }

    /// The deploy a rollback of `tag`'s slot returns to: `to` when given, else the newest
    /// succeeded deploy of the slot whose digest differs from the one serving now. A deploy
    /// that was itself rolled back is never chosen on its own (`rollback` twice goes further
    /// back, not forth); `to` can still name it.
    ///
    /// # Errors
    /// [`RollbackError`] when there is none, or `to` does not fit.
    pub fn rollback_source(
        &self,
        stage: &ResolvedStage,
        tag: &Tag,
        to: Option<DeployId>,
    ) -> Result<DeployRecord, RollbackError> {
        let slot_text = format!("{}/{}:{tag}", stage.project, stage.stage);
        if let Some(id) = to {
            let d = self.store.deploy(id)?.ok_or(RollbackError::NotFound(id))?;
            if d.project != stage.project.as_str() || d.stage != stage.stage.as_str() || d.tag != tag.as_str() {
                return Err(RollbackError::WrongSlot {
                    id,
                    other: format!("{}/{}:{}", d.project, d.stage, d.tag),
                    slot: slot_text,
                });
            }
            if !(matches!(d.status, DeployStatus::Succeeded | DeployStatus::RolledBack) && d.digest.is_some()) {
                return Err(RollbackError::NotSucceeded { id, status: d.status });
            }
            return Ok(d);
        }
        let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: tag.clone() };
        let serving: HashSet<String> = self
            .store
            .instances(&slot_filter(&slot))?
            .into_iter()
            .filter(|i| i.status == InstanceStatus::Live)
            .map(|i| i.digest)
            .collect();
        self.store
            .deploys(&slot_filter(&slot), 10_000)?
            .into_iter()
            .find(|d| d.status == DeployStatus::Succeeded && d.digest.as_ref().is_some_and(|g| !serving.contains(g)))
            .ok_or(RollbackError::Nothing { slot: slot_text })
    }

    /// What `prune` works from: the managed containers, the services (when a stage runs on
    /// Swarm) and the marked hosts, each `None` (with a failure line) when it could not be listed.
    async fn look_around(
        &self,
        req: &PruneRequest,
        report: &mut PruneReport,
    ) -> (Option<Vec<ContainerInfo>>, Option<Vec<ContainerInfo>>, Option<Vec<crate::proxy::HostView>>) {
        let containers = match self.runtime.list_managed().await {
            Ok(c) => Some(c),
            Err(e) => {
                report.failures.push(format!("cannot list containers: {}", one_line(&e)));
                None
            }
        };
        let hosts = match self.proxy.list_marked().await {
            Ok(h) => Some(h),
            Err(e) => {
                report.failures.push(format!("cannot list proxy hosts: {}", one_line(&e)));
                None
            }
        };
        // Services only when a stage runs on Swarm; a swarm that cannot answer is never read as
        // one without services.
        let services = if req.stages.iter().any(|s| s.engine.instance_kind() == InstanceKind::Service) {
            match self.runtime.list_managed_services().await {
                Ok(s) => Some(s),
                Err(e) => {
                    report.failures.push(format!("cannot list services: {}", one_line(&e)));
                    None
                }
            }
        } else {
            None
        };
        (containers, services, hosts)
    }

    /// Cleans up and repairs what deploys, crashes, people and time left (see `deploy::plan`); a
    /// second run right after finds nothing to do. Nothing without this state file's label or
    /// mark is touched.
    ///
    /// # Errors
    /// [`DeployError`] when the state file is unusable.
    pub async fn prune(&self, req: &PruneRequest) -> Result<PruneReport, DeployError> {
        let mut report = PruneReport::default();
        let state_id = self.store.state_id()?;
        let (containers, services, hosts) = self.look_around(req, &mut report).await;
        let seen = Seen {
            containers: containers.as_deref(),
            services: services.as_deref(),
            hosts: hosts.as_deref(),
            state_id: &state_id,
        };
        let mut done: Vec<&ResolvedStage> = Vec::new();
        for stage in &req.stages {
            let what = format!("{}/{}", stage.project, stage.stage);
            let _lock = if req.dry_run {
                None
            } else {
                match StageLock::acquire(&self.lock_path(&stage.project, &stage.stage), &what, LockWait::NoWait).await {
                    Ok(l) => Some(l),
                    Err(LockError::Busy { .. }) => {
                        report.skipped.push(format!("{what}: a deploy holds its lock"));
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            let plan = plan::stage_plan(self, stage, &seen, (req.older_than, req.include_default)).await?;
            if req.dry_run {
                report.failures.extend(plan.unseen.iter().chain(&plan.kept).map(ToString::to_string));
                done.push(stage);
                report.actions.extend(plan.actions.iter().map(ToString::to_string));
                for d in &plan.abandoned {
                    report.actions.push(format!(
                        "mark deploy {} of {what}:{} interrupted: abandoned by its process",
                        d.id, d.tag
                    ));
                }
                continue;
            }
            self.execute_plan(stage, &state_id, plan, &mut report).await;
            done.push(stage);
        }
        let keep_of = |p: &str, s: &str| {
            req.stages
                .iter()
                .find(|st| st.project.as_str() == p && st.stage.as_str() == s)
                .map_or(plan::DEFAULT_KEEP_IMAGES, |st| st.keep_images)
        };
        let repos: BTreeSet<String> = done.iter().map(|s| s.image.canonical()).collect();
        let (mut actions, notes) = plan::image_actions(self, &repos, &keep_of, None).await?;
        report.failures.extend(notes.into_iter().filter(|n| n.contains("cannot")));
        for stage in done.iter().filter(|s| s.remove_idle_network) {
            if self.store.instances(&stage_filter(stage))?.is_empty() {
                actions.push(Action {
                    what: Compensation::Network { name: stage.network.clone() },
                    slot: format!("{}/{}", stage.project, stage.stage),
                    why: Reason::IdleNetwork,
                });
            }
        }
        if req.dry_run {
            report.bytes_freed =
                actions.iter().map(|a| if let Compensation::Image { bytes, .. } = a.what { bytes } else { 0 }).sum();
            report.actions.extend(actions.iter().map(ToString::to_string));
        } else {
            let mut outcomes = Vec::new();
            let comps = actions.iter().map(|a| a.what.clone()).collect();
            undo::execute(self, &state_id, comps, &mut |_, o| outcomes.push(o.clone())).await;
            for (a, o) in actions.iter().zip(&outcomes) {
                match (o, &a.what) {
                    (Ok(note), Compensation::Image { bytes, .. }) if note.is_empty() => {
                        report.bytes_freed += bytes;
                        report.actions.push(a.to_string());
                    }
                    (Ok(note), _) if !note.starts_with("kept") => report.actions.push(a.to_string()),
                    _ => {}
                }
            }
        }
        let before = now_ms() - i64::try_from(req.history_retention.as_millis()).unwrap_or(i64::MAX);
        let n = if req.dry_run { self.store.count_trimmable(before)? } else { self.store.trim_history(before)? };
        if n > 0 {
            report
                .actions
                .push(format!("trim {n} deploys older than {} from history", crate::fmt::span(req.history_retention)));
        }
        Ok(report)
    }

    /// Deletes the images of `stage`'s repository that nothing uses or keeps, and (with
    /// `settings.remove_idle_network`) its network once no instance is left; after retire and
    /// `remove`. `ours` is the deploy doing it (not counted as a running deploy of the
    /// repository). Problems are notes, never failures: this is disk hygiene.
    pub(super) async fn tidy(&self, stage: &ResolvedStage, ours: Option<DeployId>, state_id: &str) -> Tidied {
        let mut tidied = Tidied::default();
        let keep_of = |p: &str, s: &str| {
            if p == stage.project.as_str() && s == stage.stage.as_str() {
                stage.keep_images
            } else {
                plan::DEFAULT_KEEP_IMAGES
            }
        };
        let repos = BTreeSet::from([stage.image.canonical()]);
        let mut comps = match plan::image_actions(self, &repos, &keep_of, ours).await {
            Ok((actions, notes)) => {
                tidied.notes = notes;
                actions.into_iter().map(|a| a.what).collect()
            }
            Err(e) => {
                tidied.notes.push(format!("images: {}", one_line(&e)));
                Vec::new()
            }
        };
        if stage.remove_idle_network && self.store.instances(&stage_filter(stage)).is_ok_and(|r| r.is_empty()) {
            comps.push(Compensation::Network { name: stage.network.clone() });
        }
        undo::execute(self, state_id, comps, &mut |c, o| match (c, o) {
            (Compensation::Image { bytes, .. }, Ok(note)) if note.is_empty() => {
                tidied.bytes_freed += bytes;
                tidied.done.push(c.describe());
            }
            (_, Ok(note)) if note.is_empty() => tidied.done.push(c.describe()),
            _ => tidied.notes.push(undo::line(c, o)),
        })
        .await;
        tidied
    }

    /// Runs one stage's plan: its compensations through the executor, a history row for each
    /// live instance that goes, abandoned deploys marked interrupted, and the stage's leftovers
    /// replaced by what is still left.
    async fn execute_plan(&self, stage: &ResolvedStage, state_id: &str, plan: StagePlan, report: &mut PruneReport) {
        let comps: Vec<Compensation> = plan.actions.iter().map(|a| a.what.clone()).collect();
        let mut outcomes: Vec<Outcome> = Vec::new();
        let leftovers = undo::execute(self, state_id, comps, &mut |_, o| outcomes.push(o.clone())).await;
        for (action, outcome) in plan.actions.iter().zip(&outcomes) {
            match outcome {
                Ok(_) => report.actions.push(action.to_string()),
                Err(l) => report.failures.push(format!("{action}: {l}")),
            }
        }
        let left_of = |name: &str| -> Vec<Leftover> {
            leftovers
                .iter()
                .filter(|l| matches!(l, Leftover::Container { name: n, .. } | Leftover::Row { container: n, .. } if n == name))
                .cloned()
                .collect()
        };
        for (row, why) in &plan.removals {
            let Ok(tag) = Tag::new(&row.tag) else { continue };
            let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag };
            match self.record(&slot, stage.image.at_digest(&row.digest), Trigger::Prune) {
                Ok(id) => {
                    let message = format!("{why}: took down {} ({})", row.container_name, domain_of(stage, row));
                    emit(self, Some(id), &Event::Log { step: Step::Prune, level: Level::Info, message });
                    self.finish(id, &left_of(&row.container_name));
                }
                Err(e) => report.failures.push(format!("cannot record the removal of {}: {e}", row.container_name)),
            }
        }
        let rows = match self.store.instances(&stage_filter(stage)) {
            Ok(rows) => rows,
            Err(e) => {
                report.failures.push(format!("cannot read instances of {}/{}: {e}", stage.project, stage.stage));
                Vec::new()
            }
        };
        for dead in &plan.abandoned {
            let mine: Vec<String> = rows
                .iter()
                .filter(|r| r.deploy_id == dead.id)
                .flat_map(|r| left_of(&r.container_name))
                .map(|l| l.to_string())
                .collect();
            let error = if mine.is_empty() {
                "abandoned by its process; rolled back by prune".to_owned()
            } else {
                format!("abandoned by its process; left: {}", mine.join("; "))
            };
            let end = DeployEnd { status: DeployStatus::Interrupted, error: Some(&error), url: None, leftovers: &mine };
            match self.store.finish_deploy(dead.id, &end) {
                Ok(()) => report.actions.push(format!(
                    "mark deploy {} of {}/{}:{} interrupted: abandoned by its process",
                    dead.id, dead.project, dead.stage, dead.tag
                )),
                Err(e) => report.failures.push(format!("cannot mark deploy {} interrupted: {e}", dead.id)),
            }
        }
        let mut leftovers = leftovers;
        for l in plan.kept.into_iter().chain(plan.unseen) {
            report.failures.push(l.to_string());
            leftovers.push(l);
        }
        let (project, stage_name) = (stage.project.as_str(), stage.stage.as_str());
        let recorded = self
            .store
            .clear_leftovers(project, stage_name)
            .and_then(|()| self.store.add_leftovers(project, stage_name, None, &leftovers));
        if let Err(e) = recorded {
            report.failures.push(format!("cannot record what is left of {project}/{stage_name}: {e}"));
        }
        report.leftovers.extend(leftovers);
    }
}

/// What taking a slot away means now (see [`Deployer::removal_of`]).
pub(super) struct SlotRemoval {
    /// The slot's rows.
    pub(super) rows: Vec<crate::store::InstanceRecord>,
    /// The undo that takes it away.
    pub(super) comps: Vec<Compensation>,
    /// What could not be listed.
    pub(super) unseen: Vec<Leftover>,
    /// There is nothing of it to take away.
    pub(super) nothing: bool,
}
