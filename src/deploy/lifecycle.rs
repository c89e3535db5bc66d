//! Lifecycle operations beside `deploy`: `remove` a slot on purpose, find the deploy a
//! `rollback` returns to, and `prune` (the cron job). All of them take instances down through
//! [`take_down`], proxy host first, and record what they did in history.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::outcome::DeployError;
use super::saga::emit;
use super::teardown::take_down;
use super::{Deployer, recover};
use crate::config::ResolvedStage;
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Slot, Tag, Trigger};
use crate::engine::{self, ContainerRuntime};
use crate::lock::{LockError, LockWait, StageLock};
use crate::proxy::Proxy;
use crate::report::{Event, Level, Step};
use crate::store::{DeployEnd, DeployRecord, Filter, InstanceRecord, NewDeploy, Store, now_ms};

/// What `remove` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveReport {
    /// The history row of the removal (`None` when there was nothing to remove).
    pub deploy_id: Option<DeployId>,
    /// One line per instance taken down.
    pub removed: Vec<String>,
    /// What could not be removed (`prune` finishes it).
    pub leftovers: Vec<String>,
}

/// Why there is nothing to roll back to.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    /// No earlier successful deploy of the slot ran another image.
    #[error(
        "nothing to roll back to: {slot} has no earlier successful deploy of another image; see `tiny-forge history`"
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
    /// One line per action, in the imperative ("remove …: why"), the same whether done or
    /// only planned (`dry_run`).
    pub actions: Vec<String>,
    /// Stages skipped because a deploy holds their lock.
    pub skipped: Vec<String>,
    /// Actions that failed.
    pub failures: Vec<String>,
}

impl<R, P, S, Pr> Deployer<'_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    /// Records a non-deploy operation on `slot` as a history row.
    fn record(&self, slot: &Slot, image: String, trigger: Trigger) -> Result<DeployId, DeployError> {
        let id = self.store.begin_deploy(&NewDeploy {
            slot: slot.clone(),
            image,
            trigger,
            pid: std::process::id(),
            host: self.host.clone(),
        })?;
        Ok(id)
    }

    fn finish(&self, id: DeployId, leftovers: &[String]) {
        let (status, error) = if leftovers.is_empty() {
            (DeployStatus::Succeeded, None)
        } else {
            (DeployStatus::Failed, Some(format!("left behind: {}", leftovers.join("; "))))
        };
        let _ = self.store.finish_deploy(id, &DeployEnd { status, error: error.as_deref(), url: None, leftovers });
    }

    /// Takes `tag`'s instance of `stage` down: proxy host, container, row; recorded in history
    /// with trigger `remove`. Nothing to remove is not an error.
    ///
    /// # Errors
    /// [`DeployError`] when the lock or the state file is unusable.
    pub async fn remove(&self, stage: &ResolvedStage, tag: &Tag, wait: LockWait) -> Result<RemoveReport, DeployError> {
        let what = format!("{}/{}", stage.project, stage.stage);
        let _lock = StageLock::acquire(&self.lock_path(&stage.project, &stage.stage), &what, wait).await?;
        let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: tag.clone() };
        let filter = Filter {
            project: Some(slot.project.to_string()),
            stage: Some(slot.stage.to_string()),
            tag: Some(tag.to_string()),
        };
        let instances = self.store.instances(&filter)?;
        let Some(first) = instances.first() else { return Ok(RemoveReport::default()) };
        let id = self.record(&slot, format!("{}@{}", stage.image, first.digest), Trigger::Remove)?;
        let mut report = RemoveReport { deploy_id: Some(id), ..RemoveReport::default() };
        emit(self, Some(id), &Event::StepStarted { step: Step::Remove });
        let t0 = tokio::time::Instant::now();
        for inst in &instances {
            match take_down(self, inst, true).await {
                Ok(done) => {
                    emit(self, Some(id), &Event::Log { step: Step::Remove, level: Level::Info, message: done.clone() });
                    report.removed.push(format!("{} ({done})", inst.container_name));
                }
                Err(e) => {
                    emit(self, Some(id), &Event::Log { step: Step::Remove, level: Level::Warn, message: e.clone() });
                    report.leftovers.push(e);
                }
            }
        }
        let elapsed_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
        emit(self, Some(id), &Event::StepFinished { step: Step::Remove, elapsed_ms });
        self.finish(id, &report.leftovers);
        Ok(report)
    }

    /// The deploy a rollback of `tag`'s slot returns to: `to` when given, else the newest
    /// succeeded deploy of the slot whose digest differs from the one serving now.
    ///
    /// # Errors
    /// [`RollbackError`] when there is none, or `to` does not fit.
    pub fn rollback_source(
        &self,
        stage: &ResolvedStage,
        tag: &Tag,
        to: Option<DeployId>,
    ) -> Result<DeployRecord, RollbackError> {
        let slot = format!("{}/{}:{tag}", stage.project, stage.stage);
        let usable = |d: &DeployRecord| {
            matches!(d.status, DeployStatus::Succeeded | DeployStatus::RolledBack) && d.digest.is_some()
        };
        if let Some(id) = to {
            let d = self.store.deploy(id)?.ok_or(RollbackError::NotFound(id))?;
            if d.project != stage.project.as_str() || d.stage != stage.stage.as_str() || d.tag != tag.as_str() {
                return Err(RollbackError::WrongSlot {
                    id,
                    other: format!("{}/{}:{}", d.project, d.stage, d.tag),
                    slot,
                });
            }
            if !usable(&d) {
                return Err(RollbackError::NotSucceeded { id, status: d.status });
            }
            return Ok(d);
        }
        let filter = Filter {
            project: Some(stage.project.to_string()),
            stage: Some(stage.stage.to_string()),
            tag: Some(tag.to_string()),
        };
        let serving: HashSet<String> = self
            .store
            .instances(&filter)?
            .into_iter()
            .filter(|i| i.status == InstanceStatus::Live)
            .map(|i| i.digest)
            .collect();
        self.store
            .deploys(&filter, 10_000)?
            .into_iter()
            .find(|d| usable(d) && d.digest.as_ref().is_some_and(|g| !serving.contains(g)))
            .ok_or(RollbackError::Nothing { slot })
    }

    /// Cleans up what deploys, crashes and time left behind (see [`PruneRequest`]); a second run
    /// right after finds nothing to do. Nothing without tiny-forge's label or marker is touched.
    ///
    /// # Errors
    /// [`DeployError`] when the state file is unusable.
    pub async fn prune(&self, req: &PruneRequest) -> Result<PruneReport, DeployError> {
        let mut report = PruneReport::default();
        let containers = match self.runtime.list_managed().await {
            Ok(c) => Some(c),
            Err(e) => {
                report.failures.push(format!("cannot list containers: {e}"));
                None
            }
        };
        let hosts = match self.proxy.list_managed().await {
            Ok(h) => h,
            Err(e) => {
                report.failures.push(format!("cannot list proxy hosts: {e}"));
                Vec::new()
            }
        };
        let all_rows = self.store.instances(&Filter::default())?;
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
            self.prune_stage(stage, req, containers.as_deref(), &hosts, &all_rows, &mut report).await?;
        }
        let before = now_ms() - i64::try_from(req.history_retention.as_millis()).unwrap_or(i64::MAX);
        if req.dry_run {
            let n = self.store.count_trimmable(before)?;
            if n > 0 {
                report.actions.push(format!(
                    "trim {n} deploys older than {} from history",
                    crate::report::fmt_span(req.history_retention)
                ));
            }
        } else {
            let n = self.store.trim_history(before)?;
            if n > 0 {
                report.actions.push(format!(
                    "trim {n} deploys older than {} from history",
                    crate::report::fmt_span(req.history_retention)
                ));
            }
        }
        Ok(report)
    }

    #[allow(clippy::too_many_lines, reason = "one pass per kind of leftover, in order")]
    async fn prune_stage(
        &self,
        stage: &ResolvedStage,
        req: &PruneRequest,
        containers: Option<&[engine::ContainerInfo]>,
        hosts: &[(String, String)],
        all_rows: &[InstanceRecord],
        report: &mut PruneReport,
    ) -> Result<(), DeployError> {
        let what = format!("{}/{}", stage.project, stage.stage);
        // 1. Deploys whose process died: roll them back.
        if req.dry_run {
            for d in recover::find(self, stage, None) {
                report.actions.push(format!("roll back deploy {} of {what}:{}: abandoned by its process", d.id, d.tag));
            }
        } else {
            report
                .actions
                .extend(recover::abandoned(self, None, stage).await.into_iter().map(|l| format!("roll back {l}")));
        }
        // 2. Instance rows that should go, for a reason.
        let filter =
            Filter { project: Some(stage.project.to_string()), stage: Some(stage.stage.to_string()), tag: None };
        let rows = self.store.instances(&filter)?;
        let by_name: HashMap<&str, &engine::ContainerInfo> =
            containers.unwrap_or_default().iter().map(|c| (c.name.as_str(), c)).collect();
        let now = now_ms();
        let ttl = req.older_than.or(stage.ttl);
        let mut doomed: Vec<(&InstanceRecord, String)> = Vec::new();
        let mut live: Vec<&InstanceRecord> = Vec::new();
        for row in &rows {
            let age = Duration::from_millis(u64::try_from(now - row.created_at).unwrap_or(0));
            let is_default = row.tag == stage.default_tag.as_str();
            let reason = match row.status {
                InstanceStatus::Leftover => Some("left behind by an incomplete rollback or removal".to_owned()),
                InstanceStatus::Pending => None, // its deploy is running, or step 1 handled it
                // Confirmed with a fresh look: the list may predate a deploy that just finished.
                InstanceStatus::Live
                    if containers.is_some()
                        && !by_name.contains_key(row.container_name.as_str())
                        && matches!(self.runtime.inspect(&row.container_name, &stage.network).await, Ok(None)) =>
                {
                    Some("its container is gone".to_owned())
                }
                InstanceStatus::Live if ttl.is_some_and(|t| age > t) && (!is_default || req.include_default) => {
                    Some(format!("older than {}", crate::report::fmt_span(ttl.unwrap_or_default())))
                }
                InstanceStatus::Live => {
                    live.push(row);
                    None
                }
            };
            if let Some(r) = reason {
                doomed.push((row, r));
            }
        }
        let max = usize::try_from(stage.max_instances).unwrap_or(usize::MAX);
        let excess = live.len().saturating_sub(max);
        for row in live.iter().take(excess) {
            doomed.push((row, format!("beyond max_instances ({max})")));
        }
        for (row, why) in doomed {
            let desc = format!("{what}:{} ({}): {why}", row.tag, row.container_name);
            if req.dry_run {
                report.actions.push(format!("remove {desc}"));
                continue;
            }
            let slot = Tag::new(&row.tag).ok().map(|tag| Slot {
                project: stage.project.clone(),
                stage: stage.stage.clone(),
                tag,
            });
            let id = match &slot {
                Some(s) => Some(self.record(s, format!("{}@{}", stage.image, row.digest), Trigger::Prune)?),
                None => None,
            };
            match take_down(self, row, true).await {
                Ok(done) => {
                    if let Some(id) = id {
                        emit(
                            self,
                            Some(id),
                            &Event::Log { step: Step::Prune, level: Level::Info, message: format!("{why}: {done}") },
                        );
                        self.finish(id, &[]);
                    }
                    report.actions.push(format!("remove {desc}"));
                }
                Err(e) => {
                    if let Some(id) = id {
                        self.finish(id, std::slice::from_ref(&e));
                    }
                    report.failures.push(e);
                }
            }
        }
        // 3. Managed containers of this stage that no row knows.
        let known: HashSet<&str> = all_rows.iter().map(|r| r.container_name.as_str()).collect();
        for c in containers.unwrap_or_default() {
            let label = |k: &str| c.labels.get(k).map(String::as_str);
            if label(engine::LABEL_PROJECT) != Some(stage.project.as_str())
                || label(engine::LABEL_STAGE) != Some(stage.stage.as_str())
                || known.contains(c.name.as_str())
            {
                continue;
            }
            if req.dry_run {
                report.actions.push(format!("remove orphan container {} of {what} (no instance row)", c.name));
                continue;
            }
            match self.runtime.remove(&c.id).await {
                Ok(_) => report.actions.push(format!("remove orphan container {} of {what} (no instance row)", c.name)),
                Err(e) => report.failures.push(format!("orphan container {}: {e}", c.name)),
            }
        }
        // 4. Proxy hosts marked as ours, for this stage's names, that no instance owns.
        // Ownership as it was before this run, so that a host taken down with its row above is
        // not counted twice, and the dry run plans exactly what the real run does.
        // Rows read now are added: a deploy may have recorded its host since the snapshot.
        let current = self.store.instances(&Filter::default())?;
        let owned: HashSet<&String> =
            all_rows.iter().chain(&current).filter_map(|r| r.proxy_host_id.as_ref()).collect();
        for (id, domain) in hosts.iter().filter(|(id, domain)| stage.owns_host(domain) && !owned.contains(id)) {
            if req.dry_run {
                report.actions.push(format!("delete orphan proxy host {domain} (id {id})"));
                continue;
            }
            match self.proxy.delete(id, domain).await {
                Ok(_) => report.actions.push(format!("delete orphan proxy host {domain} (id {id})")),
                Err(e) => report.failures.push(format!("orphan proxy host {domain} (id {id}): {e}")),
            }
        }
        Ok(())
    }
}
