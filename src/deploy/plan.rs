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

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt;
use std::time::Duration;

use super::Deployer;
use super::recover::{self, domain_of, port_of, take_down};
use super::undo::Compensation;
use crate::config::ResolvedStage;
use crate::domain::{DeployId, InstanceStatus};
use crate::engine::{self, ContainerInfo, ContainerRuntime, EngineLook, InstanceKind};
use crate::look::Look;
use crate::proxy::{HostAccess, HostView, Owner, Proxy, Upstream};
use crate::report::one_line;
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
            Self::Expired { ttl } => write!(f, "older than {}", crate::report::fmt_span(*ttl)),
            Self::BeyondMax { max } => write!(f, "beyond max_instances ({max})"),
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
pub(super) struct Seen<'w> {
    /// Managed containers (any state file), `None` when the engine could not list them.
    pub(super) containers: Option<&'w [ContainerInfo]>,
    /// Managed services (any state file), `None` when the swarm could not list them (or no
    /// stage runs on it).
    pub(super) services: Option<&'w [ContainerInfo]>,
    /// Hosts with a tiny-forge mark (any state file), `None` when the proxy could not list them.
    pub(super) hosts: Option<&'w [HostView]>,
    /// This state file's id.
    pub(super) state_id: &'w str,
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
pub(super) async fn stage_plan<R, P, S, Pr>(
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
    let rows = d.store.instances(&super::journal::stage_filter(stage))?;
    let running: HashSet<DeployId> =
        d.store.running(&super::journal::stage_filter(stage))?.iter().map(|r| r.id).collect();
    let Classified { mut serving, mut doomed, unseen } = classify(d, stage, seen, &rows, &running).await;
    limit(stage, &mut serving, &mut doomed, older_than, include_default);
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
                what: recover::service_back_to(stage, live),
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
            let on_purpose = matches!(why, Reason::Expired { .. } | Reason::BeyondMax { .. });
            if on_purpose && !serving.iter().any(|(s, _)| slot_key(s) == slot_key(row)) {
                let (away, unrunnable) = recover::take_slot_away(d.proxy, stage, row, seen.state_id);
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
                if age < recover::one_off_limit(stage, role) + d.timeouts.engine {
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
            plan.actions.push(Action {
                what: Compensation::Container { name: c.name.clone(), kind, network: stage.network.clone(), domain },
                slot: c.labels.get(engine::LABEL_SLOT).cloned().unwrap_or_default(),
                why: Reason::OrphanContainer,
            });
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
    for left in d.store.leftovers(&super::journal::stage_filter(stage))? {
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
        let (away, unrunnable) = recover::take_slot_away(d.proxy, stage, &ghost, state_id);
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
    for row in rows {
        match row.status {
            InstanceStatus::Pending if running.contains(&row.deploy_id) => {
                doomed.push((row, Reason::Abandoned { deploy: row.deploy_id }));
            }
            InstanceStatus::Pending | InstanceStatus::Retiring => doomed.push((row, Reason::LeftBehind)),
            InstanceStatus::Live => {
                // A fresh look: the listing may predate a deploy that just finished.
                let look = super::look_instance(d.runtime, kind, &row.container_name, &stage.network).await;
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
                    access: recover::host_access(stage),
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

/// The canonical repository of an image reference (`repo:tag` or `repo@digest`, any spelling):
/// `docker.io/library/nginx` for `nginx@…`. What is not a reference stays as it is (it matches
/// no configured repository).
pub(super) fn repository_of(image: &str) -> String {
    crate::image_ref::Reference::parse(image).map_or_else(|_| image.to_owned(), |r| r.repo.canonical())
}

/// The images of `repos` that can go (DESIGN §11): no container uses them (managed or not), and
/// none of their digests is among the last `keep_of(project, stage)` digests a live slot ran.
/// An image that also belongs to a repository outside `repos` is never touched, and a
/// repository a running deploy (other than `ours`) pulls from is left for later. Returns the
/// actions and what was left out, and why.
pub(super) async fn image_actions<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    repos: &BTreeSet<String>,
    keep_of: &dyn Fn(&str, &str) -> u32,
    ours: Option<DeployId>,
) -> Result<(Vec<Action>, Vec<String>), crate::store::StoreError>
where
    R: ContainerRuntime,
    S: Store,
{
    let mut skipped = Vec::new();
    let mut scope: BTreeSet<&str> = repos.iter().map(String::as_str).collect();
    for running in d.store.running(&crate::store::Filter::default())? {
        let repo = repository_of(&running.image);
        if Some(running.id) != ours && scope.remove(repo.as_str()) {
            skipped.push(format!("images of {repo}: deploy {} is running", running.id));
        }
    }
    if scope.is_empty() {
        return Ok((Vec::new(), skipped));
    }
    let (images, in_use) = match (d.runtime.list_images().await, d.runtime.images_in_use().await) {
        (Ok(i), Ok(u)) => (i, u),
        (Err(e), _) | (_, Err(e)) => {
            skipped.push(format!("images: cannot list them: {}", crate::report::one_line(&e)));
            return Ok((Vec::new(), skipped));
        }
    };
    // What each live slot keeps: its newest digests, the one it runs first.
    let mut keep: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut limits: BTreeMap<String, u32> = BTreeMap::new();
    for row in d.store.instances(&crate::store::Filter::default())? {
        if row.status != InstanceStatus::Live {
            continue;
        }
        let Some(deploy) = d.store.deploy(row.deploy_id)? else { continue };
        let repo = repository_of(&deploy.image);
        let n = keep_of(&row.project, &row.stage);
        limits.entry(repo.clone()).and_modify(|k| *k = (*k).max(n)).or_insert(n);
        let slot = crate::store::Filter {
            project: Some(row.project.clone()),
            stage: Some(row.stage.clone()),
            tag: Some(row.tag.clone()),
        };
        let kept = keep.entry(repo).or_default();
        kept.insert(row.digest.clone());
        let mut newest: Vec<String> = Vec::new();
        for past in d.store.deploys(&slot, 500)? {
            if matches!(past.status, crate::domain::DeployStatus::Succeeded | crate::domain::DeployStatus::RolledBack)
                && let Some(g) = past.digest
                && !newest.contains(&g)
            {
                newest.push(g);
            }
        }
        kept.extend(newest.into_iter().take(usize::try_from(n).unwrap_or(usize::MAX)));
    }
    // What a pending on_remove hook will run from (its retry must not need the registry, where
    // a merged branch's tag is often gone).
    for left in d.store.leftovers(&crate::store::Filter::default())? {
        if let crate::domain::Leftover::Hook { image, .. } = &left.item
            && let Some((_, digest)) = image.rsplit_once('@')
        {
            keep.entry(repository_of(image)).or_default().insert(digest.to_owned());
        }
    }
    // Only images this state file pulled: another state file's (its rollback cache, its hook's
    // image) are not ours to delete, even in a repository we share.
    let pulled = d.store.deployed_digests()?;
    let mut actions = Vec::new();
    for image in &images {
        let repos_of = image.repositories();
        if repos_of.is_empty() || !repos_of.iter().all(|r| scope.contains(r.as_str())) || in_use.contains(&image.id) {
            continue;
        }
        let digests = image.digests();
        if !digests.iter().any(|g| pulled.contains(*g)) {
            continue;
        }
        if repos_of.iter().any(|r| keep.get(r).is_some_and(|k| digests.iter().any(|g| k.contains(*g)))) {
            continue;
        }
        let repo = repos_of.iter().next().cloned().unwrap_or_default();
        let reference =
            image.repo_digests.first().or(image.repo_tags.first()).cloned().unwrap_or_else(|| image.id.clone());
        actions.push(Action {
            what: Compensation::Image {
                id: image.id.clone(),
                names: image
                    .repo_tags
                    .iter()
                    .chain(&image.repo_digests)
                    .filter(|n| !n.starts_with("<none>"))
                    .cloned()
                    .collect(),
                reference,
                bytes: image.size,
            },
            slot: repo.clone(),
            why: Reason::UnusedImage { keep: limits.get(&repo).copied().unwrap_or(DEFAULT_KEEP_IMAGES) },
        });
    }
    Ok((actions, skipped))
}

/// Digests a live slot keeps when its stage's config is not at hand.
pub(super) const DEFAULT_KEEP_IMAGES: u32 = 3;

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
    pub async fn plan_deploy(&self, req: &super::DeployRequest) -> Result<DeployPlan, PlanError> {
        let stage = &req.stage;
        let image = req.image_override.clone().unwrap_or_else(|| stage.image_ref(&req.tag));
        let digest = self.digest_now(stage, &image).await?;
        let state_id = self.store.state_id()?;
        let slot =
            crate::domain::Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: req.tag.clone() };
        let host = stage.host_name(&req.tag);
        let rows = self.store.instances(&super::journal::stage_filter(stage))?;
        let live: Vec<&InstanceRecord> = rows.iter().filter(|r| r.status == InstanceStatus::Live).collect();
        let current = live.iter().rev().find(|r| r.tag == req.tag.as_str());
        let kind = stage.engine.instance_kind();
        let mut notes = Vec::new();
        let running = match current {
            Some(r) => match super::look_instance(self.runtime, kind, &r.container_name, &stage.network).await {
                Look::Found(info) if info.state == "running" => Some(((*r).clone(), info.ip)),
                Look::Found(_) | Look::Absent => None,
                Look::Unknown(e) => {
                    notes.push(format!("cannot look at {}: {}", r.container_name, one_line(&e)));
                    None
                }
            },
            None => None,
        };
        let own = Upstream { name: super::spec::OWN_NAME.to_owned(), ip: None, port: stage.port };
        let hash = super::spec::hash(stage, &slot, &state_id, &self.proxy.url(&host, &own), &host);
        let unchanged = !req.force
            && running
                .as_ref()
                .is_some_and(|(r, _)| r.digest == digest && r.spec_hash.as_deref() == Some(hash.as_str()));
        let proxy = if self.proxy.keeps_hosts() {
            match self.proxy.find(&host).await {
                Look::Absent => format!("create proxy host {host}"),
                Look::Found(h) if h.belongs_to(&state_id, &slot.key()) => match (&running, unchanged) {
                    (Some((r, _)), true) => format!("keep proxy host {host} on {}", r.container_name),
                    (Some((r, _)), false) if matches!(stage.engine, crate::config::Engine::Swarm(_)) => format!(
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
