//! Recovery of abandoned deploys: a deploy of a stage still marked `running` while we hold the
//! stage's lock belongs to a process that died (kill -9, power loss). Its unfinished instances
//! are undone in saga order (proxy host switched back or deleted, then container, then row) and
//! it is marked interrupted. Runs at the start of every deploy of the stage and in `prune`.

use super::Deployer;
use super::saga::emit;
use super::teardown::take_down;
use crate::config::ResolvedStage;
use crate::domain::{DeployId, DeployStatus, InstanceStatus};
use crate::engine::ContainerRuntime;
use crate::proxy::{Proxy, Upstream};
use crate::report::{Event, Level, Step};
use crate::store::{DeployEnd, DeployRecord, Filter, Store};

/// Running deploys of `stage` other than `ours` (abandoned, when the caller holds the lock).
pub(super) fn find<R, P, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    stage: &ResolvedStage,
    ours: Option<DeployId>,
) -> Vec<DeployRecord> {
    let filter = Filter { project: Some(stage.project.to_string()), stage: Some(stage.stage.to_string()), tag: None };
    d.store.running(&filter).unwrap_or_default().into_iter().filter(|x| Some(x.id) != ours).collect()
}

/// Rolls back every abandoned deploy of `stage`; logs into `ours` when given. Returns one line
/// per deploy rolled back.
pub(super) async fn abandoned<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    ours: Option<DeployId>,
    stage: &ResolvedStage,
) -> Vec<String>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    let filter = Filter { project: Some(stage.project.to_string()), stage: Some(stage.stage.to_string()), tag: None };
    let mut done = Vec::new();
    for dead in find(d, stage, ours) {
        let log = |message: String, level: Level| {
            emit(d, Some(ours.unwrap_or(dead.id)), &Event::Log { step: Step::Record, level, message });
        };
        log(
            format!("deploy {} (pid {} on {}) was abandoned; rolling it back", dead.id, dead.pid, dead.host),
            Level::Warn,
        );
        let instances = d.store.instances(&filter).unwrap_or_default();
        let mut leftovers = Vec::new();
        for inst in instances.iter().filter(|i| i.deploy_id == dead.id && i.status != InstanceStatus::Live) {
            // If a live instance shares the host, the dead deploy had switched it: switch back.
            let owner = inst.proxy_host_id.as_ref().and_then(|h| {
                instances.iter().find(|o| {
                    o.id != inst.id && o.status == InstanceStatus::Live && o.proxy_host_id.as_ref() == Some(h)
                })
            });
            if let (Some(owner), Some(host_id)) = (owner, &inst.proxy_host_id) {
                let ip =
                    d.runtime.inspect(&owner.container_name, &stage.network).await.ok().flatten().and_then(|i| i.ip);
                let up = Upstream { name: owner.container_name.clone(), ip, port: stage.port };
                let domain = owner.url.clone().unwrap_or_default();
                if let Err(e) = d.proxy.switch(host_id, &domain, &up).await {
                    leftovers.push(format!("proxy host {host_id} still points at {}: {e}", inst.container_name));
                    continue;
                }
            }
            if let Err(e) = take_down(d, inst, owner.is_none()).await {
                leftovers.push(e);
            }
        }
        let error = if leftovers.is_empty() {
            "abandoned by its process; rolled back".to_owned()
        } else {
            format!("abandoned by its process; rollback left: {}", leftovers.join("; "))
        };
        let end =
            DeployEnd { status: DeployStatus::Interrupted, error: Some(&error), url: None, leftovers: &leftovers };
        let _ = d.store.finish_deploy(dead.id, &end);
        log(format!("deploy {}: {error}", dead.id), if leftovers.is_empty() { Level::Info } else { Level::Warn });
        done.push(format!(
            "deploy {} of {}/{}:{}: abandoned by its process",
            dead.id, dead.project, dead.stage, dead.tag
        ));
    }
    done
}
