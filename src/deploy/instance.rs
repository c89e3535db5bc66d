//! What every undo of an instance shares: its slot's host name and port, the compensations
//! that take it down (or take its slot away for good, with the slot's `on_remove`), who may open
//! its host, and where the instance serving a slot listens. Used by the saga's rollback and
//! retire, `remove`, recovery and `prune`.

use super::Deployer;
use super::undo::Compensation;
use crate::config::ResolvedStage;
use crate::domain::Tag;
use crate::engine::{ContainerRuntime, EngineLook};
use crate::look::Look;
use crate::proxy::{HostAccess, Proxy, Upstream};
use crate::store::InstanceRecord;

/// The host name of `row`'s slot (stored since state identity; computed for older rows).
pub(super) fn domain_of(stage: &ResolvedStage, row: &InstanceRecord) -> String {
    row.domain.clone().unwrap_or_else(|| match Tag::new(&row.tag) {
        Ok(tag) => stage.host_name(&tag),
        Err(_) => String::new(),
    })
}
/// The `on_remove` hook of `row`'s slot, to run from the digest it ran, with the slot's env;
/// `None` when the stage has none. `url` is the slot's public URL.
pub(super) fn on_remove_run(
    stage: &ResolvedStage,
    row: &InstanceRecord,
    state_id: &str,
    url: &str,
) -> Option<super::oneoff::OneOffRun> {
    let hook = stage.on_remove.clone()?;
    let tag = Tag::new(&row.tag).ok()?;
    let slot = crate::domain::Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag };
    Some(super::oneoff::OneOffRun {
        name: crate::naming::one_off_name(&slot, row.deploy_id, "on_remove"),
        image: stage.image.at_digest(&row.digest),
        env: stage.env_for(&slot.tag, url),
        labels: super::oneoff::labels(&slot, row.deploy_id, state_id, "on_remove"),
        network: stage.network.clone(),
        port: port_of(stage, row),
        what: hook,
        auth: stage.registry_auth.clone(),
    })
}
/// The compensations that take `row`'s slot away for good: its host, container and row, then
/// its `on_remove` hook (with the stage's full env; without it the hook is a leftover that a
/// later `prune` runs).
pub(super) fn take_slot_away<P: Proxy>(
    proxy: &P,
    stage: &ResolvedStage,
    row: &InstanceRecord,
    state_id: &str,
) -> (Vec<Compensation>, Option<crate::domain::Leftover>) {
    let mut comps = take_down(stage, row, true);
    let domain = domain_of(stage, row);
    let url = proxy.url(&domain, &Upstream { name: row.container_name.clone(), ip: None, port: port_of(stage, row) });
    let slot = format!("{}/{}/{}", row.project, row.stage, row.tag);
    match on_remove_run(stage, row, state_id, &url) {
        Some(_) if stage.resolution != crate::config::Resolution::Full => {
            let left = crate::domain::Leftover::Hook {
                slot,
                hook: "on_remove".into(),
                image: stage.image.at_digest(&row.digest),
                cause: crate::domain::LeftoverCause::Failed {
                    error: "not run: the stage's env files or secrets could not be read".into(),
                },
                logs: Box::default(),
            };
            return (comps, Some(left));
        }
        Some(run) => comps.push(Compensation::Hook { slot, run: Box::new(run) }),
        None => {}
    }
    (comps, None)
}
/// Who may open `stage`'s slots, in the proxy's words (unreadable when a protected stage's
/// hash could not be read: such a host is never written).
pub(super) fn host_access(stage: &ResolvedStage) -> HostAccess {
    stage.access.clone()
}
/// The port `row`'s app listens on (stored since state identity; the stage's for older rows).
pub(super) fn port_of(stage: &ResolvedStage, row: &InstanceRecord) -> u16 {
    row.port.unwrap_or(stage.port)
}
/// The compensations that take `row`'s instance down: its slot's host when `delete_host`, then
/// its container (kept while a host points at it), then its row.
pub(super) fn take_down(stage: &ResolvedStage, row: &InstanceRecord, delete_host: bool) -> Vec<Compensation> {
    let domain = domain_of(stage, row);
    let mut out = Vec::new();
    if delete_host {
        out.push(Compensation::Host {
            slot: format!("{}/{}/{}", row.project, row.stage, row.tag),
            domain: domain.clone(),
            to: None,
            unsettled: false,
            access: HostAccess::Public,
        });
    }
    out.push(Compensation::Container {
        slot: format!("{}/{}/{}", row.project, row.stage, row.tag),
        name: row.container_name.clone(),
        kind: stage.engine.instance_kind(),
        network: stage.network.clone(),
        domain: Some(domain),
    });
    out.push(Compensation::Row { row: row.id, container: row.container_name.clone() });
    out
}
/// How long Swarm may take to take a stage's service back to its previous spec (the pull is
/// not counted: the previous tasks' image is on the nodes).
pub(super) fn swarm_back_within(stage: &ResolvedStage) -> std::time::Duration {
    use super::place::Placement as _;
    let replicas = super::place::for_stage(stage).replicas();
    crate::engine::service::update_bound(&stage.health, replicas, std::time::Duration::ZERO)
}
/// Takes the swarm slot's service that `live` names back to the spec `live`'s deploy made.
pub(super) fn service_back_to(stage: &ResolvedStage, live: &InstanceRecord) -> Compensation {
    Compensation::Service {
        name: live.container_name.clone(),
        image: stage.image.at_digest(&live.digest),
        generation: live.deploy_id.generation(),
        within: swarm_back_within(stage),
    }
}
/// Where the newest of `rows` whose instance still exists listens, on the stage's network:
/// [`Look::Absent`] only when every one of them is definitely gone; a look that failed before a
/// found one is [`Look::Unknown`] (that row may well serve).
pub(super) async fn upstream_of_newest<R: ContainerRuntime, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    rows: &[InstanceRecord],
) -> EngineLook<Upstream> {
    for row in rows.iter().rev() {
        let kind = stage.engine.instance_kind();
        match super::look_instance(d.runtime, kind, &row.container_name, &stage.network).await {
            Look::Found(info) => {
                return Look::Found(Upstream {
                    name: row.container_name.clone(),
                    ip: info.ip,
                    port: port_of(stage, row),
                });
            }
            Look::Absent => {}
            Look::Unknown(e) => return Look::Unknown(e),
        }
    }
    Look::Absent
}
/// How long a one-off of `role` may run: its own timeout, as the stage has it now (the
/// default when the stage no longer has that one-off).
pub(super) fn one_off_limit(stage: &ResolvedStage, role: &str) -> std::time::Duration {
    let what = match role {
        "release" => stage.release.as_ref(),
        "on_create" => stage.on_create.as_ref(),
        _ => stage.on_remove.as_ref(),
    };
    what.map_or(std::time::Duration::from_secs(300), |w| w.timeout)
}
