//! What `list` shows, built once for the CLI and the server: the state file's instances,
//! cross-checked with the engine, plus managed containers the state file does not know and what
//! undos left behind. A [`ListItem`] is the JSON object `list --output json` prints and
//! `GET /v1/instances` answers (the fields of each variant are in key order, as every JSON
//! object this tool prints).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{Config, Resolution};
use crate::domain::{DeployId, InstanceStatus, Leftover, ProjectName, StageName};
use crate::engine::{self, ContainerInfo, Containers, Services};
use crate::fmt::rfc3339;
use crate::health::Probe;
use crate::look::Look;
use crate::store::{Filter, InstanceRecord, LeftoverRecord, Store, StoreError};

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ListItem {
    /// What an undo could not remove (`prune` finishes it).
    Leftover(LeftoverItem),
    /// An instance the state file records.
    Instance(InstanceItem),
    /// A managed container of this state file that the state file does not record.
    Orphan(OrphanItem),
}

/// An instance the state file records, as the engine sees it now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceItem {
    /// Its container (or service) name.
    pub container: String,
    /// The engine's state of it: `running`, `exited`, …, `missing` (the engine has none),
    /// `unknown` (the engine could not be asked), with ` (image changed)` when it runs another
    /// image than the one deployed.
    pub container_state: String,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// The deploy that created it.
    pub deploy_id: i64,
    /// The digest deployed.
    pub digest: String,
    /// `list --probe`: `healthy`, `unhealthy (…)`, `no address`.
    pub health: Option<String>,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// `pending`, `live`, `retiring`.
    pub status: InstanceStatus,
    /// Tag.
    pub tag: String,
    /// Its URL (`null` while pending).
    pub url: Option<String>,
}

/// `orphan`: a managed container the state file does not know, worth showing as drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrphanStatus {
    /// The one value.
    Orphan,
}

/// A managed container (or service) of this state file that it does not record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrphanItem {
    /// Its name.
    pub container: String,
    /// The engine's state of it.
    pub container_state: String,
    /// Always `null`: the state file has no row.
    pub created_at: Option<String>,
    /// Always `null`.
    pub deploy_id: Option<i64>,
    /// Always `null`.
    pub digest: Option<String>,
    /// Its project label.
    pub project: String,
    /// Its stage label.
    pub stage: String,
    /// `orphan`.
    pub status: OrphanStatus,
    /// Its tag label.
    pub tag: String,
    /// Always `null`.
    pub url: Option<String>,
}

/// `leftover`: what an undo left behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeftoverStatus {
    /// The one value.
    Leftover,
}

/// What an undo could not remove.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeftoverItem {
    /// When it was recorded (RFC 3339).
    pub created_at: String,
    /// The deploy (or removal, or prune) that left it.
    pub deploy_id: Option<i64>,
    /// What is left, and why.
    pub leftover: Leftover,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// `leftover`.
    pub status: LeftoverStatus,
}

impl ListItem {
    /// The item's project.
    #[must_use]
    pub fn project(&self) -> &str {
        match self {
            Self::Leftover(l) => &l.project,
            Self::Instance(i) => &i.project,
            Self::Orphan(o) => &o.project,
        }
    }

    /// The item's stage.
    #[must_use]
    pub fn stage(&self) -> &str {
        match self {
            Self::Leftover(l) => &l.stage,
            Self::Instance(i) => &i.stage,
            Self::Orphan(o) => &o.stage,
        }
    }
}

/// The list items. `docker` is `None` when the engine could not be asked (states are then
/// `unknown`); `health` maps instance rows to a probe result (`list --probe`).
#[must_use]
pub fn items(
    instances: &[InstanceRecord],
    leftovers: &[LeftoverRecord],
    state_id: Option<&str>,
    docker: Option<&[ContainerInfo]>,
    health: &HashMap<i64, String, impl std::hash::BuildHasher>,
    filter: &Filter,
) -> Vec<ListItem> {
    let by_name: HashMap<&str, &ContainerInfo> =
        docker.iter().flat_map(|d| d.iter()).map(|c| (c.name.as_str(), c)).collect();
    let mut items = Vec::new();
    for i in instances {
        let shown = match (docker, by_name.get(i.container_name.as_str())) {
            (None, _) => "unknown".to_owned(),
            (Some(_), None) => "missing".to_owned(),
            (Some(_), Some(c)) if !c.image.is_empty() && !c.image.contains(&i.digest) => {
                format!("{} (image changed)", c.state)
            }
            (Some(_), Some(c)) => c.state.clone(),
        };
        items.push(ListItem::Instance(InstanceItem {
            container: i.container_name.clone(),
            container_state: shown,
            created_at: rfc3339(i.created_at),
            deploy_id: i.deploy_id.0,
            digest: i.digest.clone(),
            health: health.get(&i.id).cloned(),
            project: i.project.clone(),
            stage: i.stage.clone(),
            status: i.status,
            tag: i.tag.clone(),
            url: i.url.clone(),
        }));
    }
    // Managed containers the state file does not know: drift worth showing.
    let known: HashSet<&str> = instances.iter().map(|i| i.container_name.as_str()).collect();
    let stranger = |c: &ContainerInfo| c.labels.get(engine::LABEL_STATE).is_some_and(|s| Some(s.as_str()) != state_id);
    for c in docker.iter().flat_map(|d| d.iter()).filter(|c| !known.contains(c.name.as_str()) && !stranger(c)) {
        let l = |k: &str| c.labels.get(k).cloned().unwrap_or_default();
        if filter.project.as_deref().is_some_and(|p| l(engine::LABEL_PROJECT) != p)
            || filter.stage.as_deref().is_some_and(|s| l(engine::LABEL_STAGE) != s)
        {
            continue;
        }
        items.push(ListItem::Orphan(OrphanItem {
            container: c.name.clone(),
            container_state: c.state.clone(),
            created_at: None,
            deploy_id: None,
            digest: None,
            project: l(engine::LABEL_PROJECT),
            stage: l(engine::LABEL_STAGE),
            status: OrphanStatus::Orphan,
            tag: l(engine::LABEL_TAG),
            url: None,
        }));
    }
    items.extend(leftovers.iter().map(|l| {
        ListItem::Leftover(LeftoverItem {
            created_at: rfc3339(l.created_at),
            deploy_id: l.deploy_id.map(|d| d.0),
            leftover: l.item.clone(),
            project: l.project.clone(),
            stage: l.stage.clone(),
            status: LeftoverStatus::Leftover,
        })
    }));
    items
}

/// What [`list`] found.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// The items.
    pub items: Vec<ListItem>,
    /// Whether the engine answered; when it did not, every state is `unknown`.
    pub engine_answered: bool,
}

/// What `list` shows now: the state file (when there is one) read, the engine (when it
/// answers) asked, and, with `probe`, every live instance probed on its container address.
/// `engine` is `None` when it could not be reached: every state is then `unknown`.
///
/// # Errors
/// When the state file cannot be read.
pub async fn list<R: Containers + Services, S: Store, Pr: Probe>(
    engine: Option<&R>,
    store: Option<&S>,
    filter: &Filter,
    probe: Option<(&Pr, &Config)>,
) -> Result<Listing, StoreError> {
    let (instances, leftovers, state_id) = match store {
        Some(s) => (s.instances(filter)?, s.leftovers(filter)?, Some(s.state_id()?)),
        None => (Vec::new(), Vec::new(), None),
    };
    let docker = match engine {
        Some(e) => engine::managed_for_display(e).await,
        None => None,
    };
    let health = match (engine, probe) {
        (Some(e), Some((p, config))) => probe_live(e, p, config, &instances).await,
        _ => HashMap::new(),
    };
    let items = items(&instances, &leftovers, state_id.as_deref(), docker.as_deref(), &health, filter);
    Ok(Listing { items, engine_answered: docker.is_some() })
}

/// What `list` shows (without probes) from managed containers already seen: `docker`, from a
/// view kept current (`serve`), or `None` when the engine could not be asked.
///
/// # Errors
/// When the state file cannot be read.
pub fn list_seen<S: Store>(
    docker: Option<&[ContainerInfo]>,
    store: &S,
    filter: &Filter,
) -> Result<Listing, StoreError> {
    let (instances, leftovers, state_id) = (store.instances(filter)?, store.leftovers(filter)?, store.state_id()?);
    let items = items(&instances, &leftovers, Some(&state_id), docker, &HashMap::new(), filter);
    Ok(Listing { items, engine_answered: docker.is_some() })
}

/// Probes every live instance's health path on its container address, all at once.
async fn probe_live<R: Containers, Pr: Probe>(
    runtime: &R,
    probe: &Pr,
    config: &Config,
    instances: &[InstanceRecord],
) -> HashMap<i64, String> {
    let checks = instances.iter().filter(|i| i.status == InstanceStatus::Live).map(|i| async move {
        let stage = ProjectName::new(&i.project)
            .ok()
            .zip(StageName::new(&i.stage).ok())
            .and_then(|(p, s)| config.resolve_with(&p, &s, Resolution::ConfigOnly).ok());
        let Some(stage) = stage else { return (i.id, "? (not in config)".to_owned()) };
        let ip = match runtime.inspect(&i.container_name, &stage.network).await {
            Look::Found(c) => c.ip,
            Look::Absent | Look::Unknown(_) => None,
        };
        let Some(ip) = ip else { return (i.id, "no address".to_owned()) };
        let url = format!("http://{}{}", std::net::SocketAddr::new(ip, stage.port), stage.health.path);
        let r = probe.probe(&url, Duration::from_secs(2)).await;
        (i.id, if r.passed { "healthy".to_owned() } else { format!("unhealthy ({})", r.detail) })
    });
    futures_util::future::join_all(checks).await.into_iter().collect()
}

impl LeftoverItem {
    /// As the state file records it (for the leftover table).
    #[must_use]
    pub fn record(&self) -> LeftoverRecord {
        LeftoverRecord {
            project: self.project.clone(),
            stage: self.stage.clone(),
            deploy_id: self.deploy_id.map(DeployId),
            item: self.leftover.clone(),
            created_at: 0,
        }
    }
}
