//! `prune` as a plan (DESIGN §8): read what the engine, the proxy and the state file hold now,
//! decide what each stage needs, as data. `--dry-run` prints the plan; a real run hands its
//! compensations to the one executor. The plan repairs drift:
//!
//! - a slot serves through its newest live instance whose container exists; older live rows,
//!   retiring rows and rows of deploys that ended or died are taken down;
//! - instances past their TTL, and the oldest beyond `max_instances`, are taken down;
//! - every serving instance's host exists, is ours, and forwards to its container on *its*
//!   port (created or repaired otherwise);
//! - a host of ours whose slot serves nothing is deleted;
//! - a container of ours that no row names is removed (never one a host points at: the
//!   executor asks the proxy first, and hosts are repaired before containers go).
//!
//! Nothing that is not this state file's is ever in a plan.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use crate::config::ResolvedStage;
use crate::deploy::Deployer;
use crate::deploy::instance::{self, domain_of, port_of, take_down};
use crate::deploy::recover;
use crate::deploy::undo::Compensation;
use crate::domain::{DeployId, InstanceStatus};
use crate::engine::{self, ContainerInfo, ContainerRuntime, EngineLook, InstanceKind};
use crate::fmt::one_line;
use crate::look::Look;
use crate::proxy::{HostAccess, HostView, Owner, Proxy, Upstream};
use crate::store::{DeployRecord, InstanceRecord, Store, now_ms};

/// Why `prune` does something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// What a deploy whose process died had made.
    Abandoned {
        /// The deploy.
        deploy: DeployId,
    },
    /// Left by an incomplete rollback, retire or removal.
    LeftBehind,
    /// A newer live instance serves the slot.
    Replaced,
    /// The row says live, and its container is gone.
    ContainerGone,
    /// Older than the stage's TTL (or `--older-than`).
    Expired {
        /// The TTL.
        ttl: Duration,
    },
    /// The oldest beyond `max_instances`.
    BeyondMax {
        /// The limit.
        max: u32,
    },
    /// A `remove` of the slot whose process died before it finished: prune finishes it.
    UnfinishedRemove {
        /// The remove's history row.
        deploy: DeployId,
    },
    /// A container of ours that no row names.
    OrphanContainer,
    /// A host of ours whose slot serves nothing.
    OrphanHost,
    /// A serving instance has no host.
    HostMissing,
    /// A serving instance's host forwards elsewhere or does not serve.
    HostDrift {
        /// What the host does now.
        found: String,
    },
    /// An image of a configured repository that no container uses and no live slot keeps.
    UnusedImage {
        /// How many digests each live slot keeps.
        keep: u32,
    },
    /// The stage's network, now that its last instance is gone (`settings.remove_idle_network`).
    IdleNetwork,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Abandoned { deploy } => write!(f, "deploy {deploy} was abandoned by its process"),
            Self::LeftBehind => f.write_str("left behind by an incomplete rollback or removal"),
            Self::Replaced => f.write_str("a newer instance serves the slot"),
            Self::ContainerGone => f.write_str("its container is gone"),
            Self::Expired { ttl } => write!(f, "older than {}", crate::fmt::span(*ttl)),
            Self::BeyondMax { max } => write!(f, "beyond max_instances ({max})"),
            Self::UnfinishedRemove { deploy } => {
                write!(f, "remove {deploy} was abandoned by its process; finishing it")
            }
            Self::OrphanContainer => f.write_str("orphan: no instance row names it"),
            Self::OrphanHost => f.write_str("orphan: no live instance serves its slot"),
            Self::HostMissing => f.write_str("the live instance has no proxy host"),
            Self::HostDrift { found } => write!(f, "repair: {found}"),
            Self::UnusedImage { keep } => {
                write!(f, "no container uses it, and it is not among the last {keep} digests of a live slot")
            }
            Self::IdleNetwork => f.write_str("the stage has no instance any more"),
        }
    }
}

/// One thing `prune` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The compensation that does it.
    pub what: Compensation,
    /// The slot (`project/stage/tag`) it concerns.
    pub slot: String,
    /// Why.
    pub why: Reason,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [{}]: {}", self.what.describe(), self.slot, self.why)
    }
}

/// What `prune` does to one stage.
#[derive(Debug, Clone, Default)]
pub struct StagePlan {
    /// Actions, in the order the executor runs them (hosts, containers, rows).
    pub actions: Vec<Action>,
    /// Deploys whose process died: marked interrupted once their resources are undone.
    pub abandoned: Vec<DeployRecord>,
    /// Live instances that lose their slot (recorded in history as `prune` removals).
    pub removals: Vec<(InstanceRecord, Reason)>,
    /// What this run cannot do now and leaves for a later one, recorded as leftovers:
    /// `on_remove` hooks that cannot run (the stage's env cannot be read), and one-offs a
    /// crashed run left that still run within their timeout (never killed halfway).
    pub kept: Vec<crate::domain::Leftover>,
    /// What could not be looked at: slots whose instance could not be inspected are kept
    /// exactly as they are (no host repaired or deleted, no row or container removed, no hook
    /// run); orphans are not looked for when the list failed. Recorded as leftovers, so that
    /// the run exits 3 and the next one looks again.
    pub unseen: Vec<crate::domain::Leftover>,
}

/// What the world looks like to one stage's plan.
pub(in crate::deploy) struct Seen<'w> {
    /// Managed containers (any state file), `None` when the engine could not list them.
    pub(in crate::deploy) containers: Option<&'w [ContainerInfo]>,
    /// Managed services (any state file), `None` when the swarm could not list them (or no
    /// stage runs on it).
    pub(in crate::deploy) services: Option<&'w [ContainerInfo]>,
    /// Hosts with a tiny-forge mark (any state file), `None` when the proxy could not list them.
    pub(in crate::deploy) hosts: Option<&'w [HostView]>,
    /// This state file's id.
    pub(in crate::deploy) state_id: &'w str,
}

/// Is container `c` this state file's and this stage's? A container without the state label
/// (made before state identity) counts only when a row of ours names it.
fn ours(c: &ContainerInfo, stage: &ResolvedStage, state_id: &str, known: &HashSet<&str>) -> bool {
    let label = |k: &str| c.labels.get(k).map(String::as_str);
    label(engine::LABEL_PROJECT) == Some(stage.project.as_str())
        && label(engine::LABEL_STAGE) == Some(stage.stage.as_str())
        && match label(engine::LABEL_STATE) {
            Some(s) => s == state_id,
            None => known.contains(c.name.as_str()),
        }
}

/// Is host `h` this state file's and this stage's?
fn our_host(h: &HostView, stage: &ResolvedStage, state_id: &str) -> Option<String> {
    let prefix = format!("{}/{}/", stage.project, stage.stage);
    match &h.owner {
        Owner::Marked(m) if m.state == state_id && m.slot.starts_with(&prefix) => Some(m.slot.clone()),
        Owner::Legacy if stage.owns_host(&h.domain) => Some(String::new()),
        _ => None,
    }
}

/// A serving instance: its row and its container's address on the stage's network.
type Serving<'r> = (&'r InstanceRecord, Option<std::net::IpAddr>);

impl Seen<'_> {
    /// The list a stage's instances appear in (containers, or services on a swarm stage), when
    /// it could be read.
    fn instances_of(&self, stage: &ResolvedStage) -> Option<&[ContainerInfo]> {
        match stage.engine.instance_kind() {
            InstanceKind::Container => self.containers,
            InstanceKind::Service => self.services,
        }
    }
}

fn slot_key(r: &InstanceRecord) -> String {
    format!("{}/{}/{}", r.project, r.stage, r.tag)
}

/// Builds the plan for `stage`. `older_than` and `include_default` are `prune`'s options.
pub(in crate::deploy) async fn stage_plan<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    seen: &Seen<'_>,
    (older_than, include_default): (Option<Duration>, bool),
) -> Result<StagePlan, crate::store::StoreError>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    let mut plan = StagePlan { abandoned: recover::find(d, stage, None)?, ..StagePlan::default() };
    let rows = d.store.instances(&crate::deploy::journal::stage_filter(stage))?;
    let running: HashSet<DeployId> =
        d.store.running(&crate::deploy::journal::stage_filter(stage))?.iter().map(|r| r.id).collect();
    let Classified { mut serving, mut doomed, unseen } = classify(d, stage, seen, &rows, &running).await;
    limit(stage, &mut serving, &mut doomed, older_than, include_default);
    finish_abandoned_removals(&plan.abandoned, &mut serving, &mut doomed);
    let blind: HashSet<String> = unseen.iter().map(|(r, _)| slot_key(r)).collect();
    plan.unseen = unseen_of(stage, seen, &unseen, d.proxy.keeps_hosts());
    if d.proxy.keeps_hosts()
        && let Some(hosts) = seen.hosts
    {
        host_actions(d.proxy, stage, seen.state_id, hosts, &serving, &blind, &mut plan.actions);
    }
    for (row, why) in &doomed {
        // A swarm slot's service that a doomed row shares with the row serving the slot: it
        // goes back to the serving row's spec (a no-op when it runs it), and stays.
        if let Some((live, _)) = serving.iter().find(|(s, _)| s.container_name == row.container_name && s.id != row.id)
        {
            plan.actions.push(Action {
                what: instance::service_back_to(stage, live),
                slot: slot_key(row),
                why: why.clone(),
            });
        }
        for c in take_down(stage, row, false) {
            // Absent from a list that was read: nothing to remove. A list that failed proves
            // nothing; the executor looks by name then.
            let may_exist = match &c {
                Compensation::Container { name, kind, .. } => {
                    let list = match kind {
                        InstanceKind::Container => seen.containers,
                        InstanceKind::Service => seen.services,
                    };
                    list.is_none_or(|l| l.iter().any(|x| &x.name == name))
                }
                _ => true,
            };
            if may_exist {
                plan.actions.push(Action { what: c, slot: slot_key(row), why: why.clone() });
            }
        }
        if matches!(row.status, InstanceStatus::Live) {
            plan.removals.push(((*row).clone(), why.clone()));
            // The slot goes for good, on purpose (its TTL, max_instances): its on_remove hook.
            // Not when it was replaced, and not when its container vanished: `docker container
            // prune` taking a stopped preview must not drop the slot's database.
            let on_purpose =
                matches!(why, Reason::Expired { .. } | Reason::BeyondMax { .. } | Reason::UnfinishedRemove { .. });
            if on_purpose && !serving.iter().any(|(s, _)| slot_key(s) == slot_key(row)) {
                let (away, unrunnable) = instance::take_slot_away(d.proxy, stage, row, seen.state_id);
                for c in away.into_iter().filter(|c| matches!(c, Compensation::Hook { .. })) {
                    plan.actions.push(Action { what: c, slot: slot_key(row), why: why.clone() });
                }
                plan.kept.extend(unrunnable);
            }
        }
    }
    retry_hooks(d, stage, seen.state_id, &rows, &mut plan)?;
    let known: HashSet<&str> = rows.iter().map(|r| r.container_name.as_str()).collect();
    let services = match stage.engine.instance_kind() {
        InstanceKind::Service => seen.services.unwrap_or_default(),
        InstanceKind::Container => &[],
    };
    let listed = seen
        .containers
        .unwrap_or_default()
        .iter()
        .map(|c| (c, InstanceKind::Container))
        .chain(services.iter().map(|c| (c, InstanceKind::Service)));
    let now = now_ms() / 1000;
    for (c, kind) in listed {
        if ours(c, stage, seen.state_id, &known) && !known.contains(c.name.as_str()) {
            // A one-off a crashed run left that may still finish its work: kept until it ends
            // or overruns its own timeout.
            if let Some(role) = c.labels.get(engine::LABEL_ROLE)
                && c.state == "running"
            {
                let age = Duration::from_secs(c.created.map_or(0, |t| u64::try_from(now - t).unwrap_or(0)));
                if age < instance::one_off_limit(stage, role) + d.timeouts.engine {
                    plan.kept.push(crate::domain::Leftover::Container {
                        name: c.name.clone(),
                        cause: crate::domain::LeftoverCause::Failed {
                            error: format!("a {role} that still runs; it goes once it ends or overruns its timeout"),
                        },
                    });
                    continue;
                }
            }
            let domain = c
                .labels
                .get(engine::LABEL_TAG)
                .and_then(|t| crate::domain::Tag::new(t).ok())
                .map(|t| stage.host_name(&t));
            let slot = c.labels.get(engine::LABEL_SLOT).cloned().unwrap_or_default();
            let network = stage.network.clone();
            let what = Compensation::Container { slot: slot.clone(), name: c.name.clone(), kind, network, domain };
            plan.actions.push(Action { what, slot, why: Reason::OrphanContainer });
        }
    }
    plan.actions.sort_by_key(|a| a.what.phase());
    Ok(plan)
}

/// What a stage's plan could not look at, as leftovers: slots whose instance could not be
/// inspected, and the lists that failed.
fn unseen_of(
    stage: &ResolvedStage,
    seen: &Seen<'_>,
    unseen: &[(&InstanceRecord, String)],
    keeps_hosts: bool,
) -> Vec<crate::domain::Leftover> {
    let failed = |error: String| crate::domain::LeftoverCause::Failed { error };
    let mut out: Vec<crate::domain::Leftover> = unseen
        .iter()
        .map(|(r, e): &(&InstanceRecord, String)| crate::domain::Leftover::Unseen {
            what: format!("instance {} of {}", r.container_name, slot_key(r)),
            cause: failed(e.clone()),
        })
        .collect();
    let what = match stage.engine.instance_kind() {
        InstanceKind::Container => "containers",
        InstanceKind::Service => "services",
    };
    if seen.instances_of(stage).is_none() || seen.containers.is_none() {
        out.push(crate::domain::Leftover::Unseen {
            what: format!("{what} of {}/{} that no instance row names", stage.project, stage.stage),
            cause: failed("the engine could not list them".into()),
        });
    }
    if seen.hosts.is_none() && keeps_hosts {
        out.push(crate::domain::Leftover::Unseen {
            what: format!("proxy hosts of {}/{}", stage.project, stage.stage),
            cause: failed("the proxy could not list them".into()),
        });
    }
    out
}

/// `on_remove` hooks an earlier run could not finish, run again (with the stage's full env; else
/// they stay leftovers).
fn retry_hooks<R, P: Proxy, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    state_id: &str,
    rows: &[InstanceRecord],
    plan: &mut StagePlan,
) -> Result<(), crate::store::StoreError> {
    for left in d.store.leftovers(&crate::deploy::journal::stage_filter(stage))? {
        let crate::domain::Leftover::Hook { slot, image, .. } = &left.item else { continue };
        let Some(tag) = slot.rsplit('/').next() else { continue };
        let Some(digest) = image.rsplit_once('@').map(|(_, g)| g) else { continue };
        // The slot came back meanwhile: its hook is not for now.
        if rows.iter().any(|r| r.tag == tag && r.status == InstanceStatus::Live) {
            continue;
        }
        let Ok(tag_name) = crate::domain::Tag::new(tag) else { continue };
        let deploy_id = left.deploy_id.unwrap_or(DeployId(0));
        let ghost_slot =
            crate::domain::Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: tag_name };
        let ghost = InstanceRecord {
            id: 0,
            deploy_id,
            project: stage.project.to_string(),
            stage: stage.stage.to_string(),
            tag: tag.to_owned(),
            // Never made: the name the slot's instance of that deploy had, for its URL.
            container_name: crate::naming::container_name(&ghost_slot, deploy_id),
            container_id: None,
            proxy_host_id: None,
            digest: digest.to_owned(),
            url: None,
            status: InstanceStatus::Retiring,
            domain: None,
            port: None,
            spec_hash: None,
            created_at: 0,
            updated_at: 0,
        };
        let (away, unrunnable) = instance::take_slot_away(d.proxy, stage, &ghost, state_id);
        for c in away.into_iter().filter(|c| matches!(c, Compensation::Hook { .. })) {
            plan.actions.push(Action { what: c, slot: slot.clone(), why: Reason::LeftBehind });
        }
        plan.kept.extend(unrunnable);
    }
    Ok(())
}

/// Rows sorted by what `prune` does with them.
struct Classified<'r> {
    /// The instance serving each slot (the newest live row whose instance exists).
    serving: Vec<Serving<'r>>,
    /// Rows that go, and why.
    doomed: Vec<(&'r InstanceRecord, Reason)>,
    /// Live rows of slots one of whose instances could not be looked at, and why: such a slot
    /// is kept exactly as it is.
    unseen: Vec<(&'r InstanceRecord, String)>,
}

/// Sorts rows into the instances that serve their slot (the newest live row with a
/// container), those that go, and the slots that could not be looked at. Only a definite
/// absence (a 404, with the instance list read) makes a live row's container "gone"; a look that
/// failed keeps the whole slot as it is.
async fn classify<'r, R: ContainerRuntime, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    seen: &Seen<'_>,
    rows: &'r [InstanceRecord],
    running: &HashSet<DeployId>,
) -> Classified<'r> {
    let mut doomed = Vec::new();
    let mut candidates: BTreeMap<String, Vec<(&InstanceRecord, EngineLook<ContainerInfo>)>> = BTreeMap::new();
    let kind = stage.engine.instance_kind();
    // A container stage's instances as the container list shows them. Services are always
    // looked at afresh: the service list does not say which of a service's tasks run.
    let in_list: HashMap<&str, &ContainerInfo> = match kind {
        // One the engine is removing (a `remove` killed mid-way leaves dockerd finishing it) is
        // not taken from the list: a fresh look sees it gone.
        InstanceKind::Container => seen
            .containers
            .unwrap_or_default()
            .iter()
            .filter(|c| !matches!(c.state.as_str(), "removing" | "dead"))
            .map(|c| (c.name.as_str(), c))
            .collect(),
        InstanceKind::Service => HashMap::new(),
    };
    for row in rows {
        match row.status {
            InstanceStatus::Pending if running.contains(&row.deploy_id) => {
                doomed.push((row, Reason::Abandoned { deploy: row.deploy_id }));
            }
            InstanceStatus::Pending | InstanceStatus::Retiring => doomed.push((row, Reason::LeftBehind)),
            InstanceStatus::Live => {
                // In the list that was read: there, with its address from the same list (one
                // engine call for the whole stage, however many previews it runs). Not in it:
                // a fresh look, as the list may predate a deploy that just finished.
                let look = match in_list.get(row.container_name.as_str()) {
                    Some(c) => {
                        Look::Found(ContainerInfo { ip: c.addresses.get(&stage.network).copied(), ..(*c).clone() })
                    }
                    None => crate::deploy::look_instance(d.runtime, kind, &row.container_name, &stage.network).await,
                };
                candidates.entry(slot_key(row)).or_default().push((row, look));
            }
        }
    }
    let listed = seen.instances_of(stage).is_some();
    let mut serving = Vec::new();
    let mut unseen = Vec::new();
    for rows in candidates.values() {
        if let Some(e) = rows.iter().find_map(|(_, look)| match look {
            Look::Unknown(e) => Some(one_line(e)),
            _ => None,
        }) {
            unseen.extend(rows.iter().map(|(row, _)| (*row, e.clone())));
            continue;
        }
        let mut chosen = None;
        for (row, look) in rows.iter().rev() {
            match look {
                Look::Found(info) if chosen.is_none() => chosen = Some((*row, info.ip)),
                Look::Found(_) => doomed.push((row, Reason::Replaced)),
                Look::Absent if listed => doomed.push((row, Reason::ContainerGone)),
                Look::Absent | Look::Unknown(_) => {}
            }
        }
        serving.extend(chosen);
    }
    serving.sort_by_key(|(r, _)| (r.created_at, r.id));
    Classified { serving, doomed, unseen }
}

/// A `remove` its process abandoned (killed mid-way, perhaps with the engine still finishing
/// its container delete, so the list still shows it): the slot was to go, so prune finishes
/// taking it down.
fn finish_abandoned_removals<'r>(
    abandoned: &[crate::store::DeployRecord],
    serving: &mut Vec<Serving<'r>>,
    doomed: &mut Vec<(&'r InstanceRecord, Reason)>,
) {
    let removing: HashMap<&str, DeployId> = abandoned
        .iter()
        .filter(|a| a.trigger == crate::domain::Trigger::Remove)
        .map(|a| (a.tag.as_str(), a.id))
        .collect();
    // Only what the remove was taking away: a slot deployed again after it died stays.
    serving.retain(|(row, _)| {
        if let Some(remove) = removing.get(row.tag.as_str())
            && row.deploy_id < *remove
        {
            doomed.push((row, Reason::UnfinishedRemove { deploy: *remove }));
            false
        } else {
            true
        }
    });
}

/// Moves serving instances past their TTL, then the oldest beyond `max_instances`, to `doomed`.
fn limit<'r>(
    stage: &ResolvedStage,
    serving: &mut Vec<Serving<'r>>,
    doomed: &mut Vec<(&'r InstanceRecord, Reason)>,
    older_than: Option<Duration>,
    include_default: bool,
) {
    let now = now_ms();
    let ttl = older_than.or(stage.ttl);
    serving.retain(|(row, _)| {
        let age = Duration::from_millis(u64::try_from(now - row.created_at).unwrap_or(0));
        let is_default = row.tag == stage.default_tag.as_str();
        match ttl {
            Some(t) if age > t && (!is_default || include_default) => {
                doomed.push((row, Reason::Expired { ttl: t }));
                false
            }
            _ => true,
        }
    });
    let max = usize::try_from(stage.max_instances).unwrap_or(usize::MAX);
    let excess = serving.len().saturating_sub(max);
    for (row, _) in serving.drain(..excess) {
        doomed.push((row, Reason::BeyondMax { max: stage.max_instances }));
    }
}

/// Every serving instance's host as it should be; hosts of ours whose slot serves nothing go.
fn host_actions<P: Proxy>(
    proxy: &P,
    stage: &ResolvedStage,
    state_id: &str,
    hosts: &[HostView],
    serving: &[Serving<'_>],
    blind: &HashSet<String>,
    actions: &mut Vec<Action>,
) {
    for (row, ip) in serving {
        let domain = domain_of(stage, row);
        let up = Upstream { name: row.container_name.clone(), ip: *ip, port: port_of(stage, row) };
        let found = hosts.iter().find(|h| h.domain.eq_ignore_ascii_case(&domain));
        let why = match (found, proxy.target(&domain, &up)) {
            (None, _) => Some(Reason::HostMissing),
            (Some(h), Ok(want)) if h.target.as_ref() != Some(&want) => Some(Reason::HostDrift {
                found: format!(
                    "it forwards to {}, not to {want}",
                    h.target.as_ref().map_or_else(|| "?".to_owned(), ToString::to_string)
                ),
            }),
            (Some(h), _) if h.problem.is_some() => {
                Some(Reason::HostDrift { found: h.problem.clone().unwrap_or_default() })
            }
            (Some(h), _) if h.owner == Owner::Legacy => {
                Some(Reason::HostDrift { found: "it carries the old mark, without state and slot".into() })
            }
            _ => None,
        };
        if let Some(why) = why {
            actions.push(Action {
                what: Compensation::Host {
                    slot: slot_key(row),
                    domain,
                    to: Some(up),
                    unsettled: false,
                    access: instance::host_access(stage),
                },
                slot: slot_key(row),
                why,
            });
        }
    }
    let serving_slots: HashSet<String> = serving.iter().map(|(r, _)| slot_key(r)).collect();
    for h in hosts {
        let Some(slot) = our_host(h, stage, state_id) else { continue };
        let serves = serving.iter().any(|(r, _)| domain_of(stage, r).eq_ignore_ascii_case(&h.domain));
        // A slot whose instance could not be looked at may well serve: its host stays.
        if blind.contains(&slot) || (slot.is_empty() && !blind.is_empty()) {
            continue;
        }
        if !serves && (slot.is_empty() || !serving_slots.contains(&slot)) {
            let slot = if slot.is_empty() { format!("{}/{}/?", stage.project, stage.stage) } else { slot };
            actions.push(Action {
                what: Compensation::Host {
                    slot: slot.clone(),
                    domain: h.domain.clone(),
                    to: None,
                    unsettled: false,
                    access: HostAccess::Public,
                },
                slot,
                why: Reason::OrphanHost,
            });
        }
    }
}
