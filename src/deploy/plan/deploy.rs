//! `deploy --dry-run`: what a deploy would do now, read from the registry, the engine, the
//! proxy and the state file; nothing is changed and no lock is taken.

use crate::deploy::Deployer;
use crate::deploy::place::{Placement as _, for_stage};
use crate::domain::InstanceStatus;
use crate::engine::{ContainerRuntime, InstanceKind};
use crate::fmt::one_line;
use crate::look::Look;
use crate::proxy::{Proxy, Upstream};
use crate::store::{InstanceRecord, Store};

/// What `deploy --dry-run` shows: what a deploy would do now, touching nothing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeployPlan {
    /// `project/stage:tag`.
    pub slot: String,
    /// The reference asked for (`repo:tag`, or `repo@digest` for a rollback).
    pub image: String,
    /// The digest it resolves to now (a manifest lookup; nothing is pulled).
    pub digest: String,
    /// The slot's host name.
    pub host: String,
    /// The container that serves the slot now, if any.
    pub running: Option<String>,
    /// It already runs this digest with the same settings: the deploy would do nothing.
    pub unchanged: bool,
    /// What the proxy step would do, in words.
    pub proxy: String,
    /// Instances `max_instances` would evict, as `tag (container)`.
    pub evicts: Vec<String>,
    /// The release command it would run first (exec form), if any.
    pub release: Option<Vec<String>>,
    /// The `on_create` hook it would run (the slot's first deploy), if any.
    pub on_create: Option<Vec<String>>,
    /// What the verify step would do after the cut-over, in words (`None`: no verify step,
    /// the stage has none or `--no-verify`).
    pub verify: Option<String>,
}

/// Why a plan cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The registry does not have the tag, or cannot be asked.
    #[error(transparent)]
    Resolve(#[from] crate::engine::RuntimeError),
    /// The state file.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl<R, P, S, Pr> Deployer<'_, R, P, S, Pr>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    /// What deploying `req` would do now, read from the registry, the engine, the proxy and
    /// the state file; nothing is changed and no lock is taken.
    ///
    /// # Errors
    /// [`PlanError::Resolve`] when the registry lacks the tag (or cannot be asked).
    pub async fn plan_deploy(&self, req: &crate::deploy::DeployRequest) -> Result<DeployPlan, PlanError> {
        let stage = &req.stage;
        let image = req.image_override.clone().unwrap_or_else(|| stage.image_ref(&req.tag));
        let digest = self.digest_now(stage, &image).await?;
        let state_id = self.store.state_id()?;
        let slot =
            crate::domain::Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: req.tag.clone() };
        let host = stage.host_name(&req.tag);
        let rows = self.store.instances(&crate::deploy::journal::stage_filter(stage))?;
        let live: Vec<&InstanceRecord> = rows.iter().filter(|r| r.status == InstanceStatus::Live).collect();
        let current = live.iter().rev().find(|r| r.tag == req.tag.as_str());
        let kind = stage.engine.instance_kind();
        let mut notes = Vec::new();
        let running = match current {
            Some(r) => {
                match crate::deploy::look_instance(self.runtime, kind, &r.container_name, &stage.network).await {
                    Look::Found(info) if info.state == "running" => Some(((*r).clone(), info.ip)),
                    Look::Found(_) | Look::Absent => None,
                    Look::Unknown(e) => {
                        notes.push(format!("cannot look at {}: {}", r.container_name, one_line(&e)));
                        None
                    }
                }
            }
            None => None,
        };
        let own = Upstream { name: crate::deploy::spec::OWN_NAME.to_owned(), ip: None, port: stage.port };
        let hash = crate::deploy::spec::hash(stage, &slot, &state_id, &self.proxy.url(&host, &own), &host);
        let unchanged = !req.force
            && running
                .as_ref()
                .is_some_and(|(r, _)| r.digest == digest && r.spec_hash.as_deref() == Some(hash.as_str()));
        let proxy = if self.proxy.keeps_hosts() {
            match self.proxy.find(&host).await {
                Look::Absent => format!("create proxy host {host}"),
                Look::Found(h) if h.belongs_to(&state_id, &slot.key()) => match (&running, unchanged) {
                    (Some((r, _)), true) => format!("keep proxy host {host} on {}", r.container_name),
                    (Some((r, _)), false) if for_stage(stage).kind() == InstanceKind::Service => format!(
                        "keep proxy host {host} on service {}: Swarm updates it in place, start-first",
                        r.container_name
                    ),
                    _ => format!(
                        "switch proxy host {host} from {} to the new container",
                        h.target.map_or_else(|| "?".to_owned(), |t| t.to_string())
                    ),
                },
                Look::Found(h) => {
                    format!("refuse: proxy host {host} (id {}) is not this slot's ({:?})", h.id, h.owner)
                }
                Look::Unknown(e) => format!("unknown: cannot ask the proxy: {}", one_line(&e)),
            }
        } else {
            "none: the URL is the container's own address".to_owned()
        };
        let others: Vec<&&InstanceRecord> = live.iter().filter(|r| r.tag != req.tag.as_str()).collect();
        let max = usize::try_from(stage.max_instances).unwrap_or(usize::MAX);
        let excess = (others.len() + 1).saturating_sub(max);
        let evicts = if unchanged {
            Vec::new()
        } else {
            others.iter().take(excess).map(|r| format!("{} ({})", r.tag, r.container_name)).collect()
        };
        let first = current.is_none();
        Ok(DeployPlan {
            release: stage.release.as_ref().filter(|_| !unchanged).map(|r| r.command.clone()),
            on_create: stage.on_create.as_ref().filter(|_| first).map(|h| h.command.clone()),
            verify: stage.verify.as_ref().filter(|_| req.verify).map(|v| {
                let back = if first { "take the slot down" } else { "switch back to the previous instance" };
                format!(
                    "request {} through the proxy every {} for {}; {} failures in a row or a crash {back}",
                    v.path,
                    humantime::format_duration(v.interval),
                    humantime::format_duration(v.window),
                    v.failures
                )
            }),
            slot: slot.to_string(),
            image,
            digest,
            host,
            running: running.map(|(r, _)| r.container_name),
            unchanged,
            proxy,
            evicts,
        })
    }
}
