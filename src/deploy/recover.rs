//! Recovery of abandoned deploys: a deploy of this stage still marked `running` while we hold
//! the stage's lock belongs to a process that died (kill -9, power loss). Its pending instances
//! are undone in saga order (proxy host, then container, then row) and it is marked interrupted.

use super::Deployer;
use super::saga::emit;
use crate::config::ResolvedStage;
use crate::domain::{DeployId, DeployStatus, InstanceStatus, Slot, Tag};
use crate::health::Probe;
use crate::proxy::{Proxy, Upstream};
use crate::report::{Event, Level, Step};
use crate::runtime::ContainerRuntime;
use crate::store::{DeployEnd, Filter, InstancePatch, Store};

pub(super) async fn abandoned<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    ours: DeployId,
    slot: &Slot,
    stage: &ResolvedStage,
) where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
    Pr: Probe,
{
    let filter = Filter { project: Some(slot.project.to_string()), stage: Some(slot.stage.to_string()), tag: None };
    let Ok(deploys) = d.store.deploys(&filter, 1000) else {
        return;
    };
    let log = |message: String, level: Level| emit(d, Some(ours), &Event::Log { step: Step::Record, level, message });
    for dead in deploys.into_iter().filter(|x| x.status == DeployStatus::Running && x.id != ours) {
        log(
            format!("deploy {} (pid {} on {}) was abandoned; rolling it back", dead.id, dead.pid, dead.host),
            Level::Warn,
        );
        let Ok(instances) = d.store.instances(&filter) else {
            return;
        };
        let mut leftovers = Vec::new();
        for inst in instances.iter().filter(|i| i.deploy_id == dead.id && i.status != InstanceStatus::Live) {
            let domain = Tag::new(&inst.tag).map(|t| stage.host_name(&t)).unwrap_or_default();
            let mut proxy_ok = true;
            if let Some(host_id) = &inst.proxy_host_id {
                // If the slot's live instance shares the host, the dead deploy had switched it:
                // switch back. Otherwise it created the host: delete it.
                let owner = instances
                    .iter()
                    .find(|i| i.status == InstanceStatus::Live && i.proxy_host_id.as_ref() == Some(host_id));
                let r = match owner {
                    Some(o) => {
                        let ip = d
                            .runtime
                            .inspect(&o.container_name, &stage.network)
                            .await
                            .ok()
                            .flatten()
                            .and_then(|i| i.ip);
                        let up = Upstream { name: o.container_name.clone(), ip, port: stage.port };
                        d.proxy.switch(host_id, &domain, &up).await
                    }
                    None => d.proxy.delete(host_id, &domain).await.map(|_| ()),
                };
                if let Err(e) = r {
                    proxy_ok = false;
                    leftovers.push(format!("proxy host {host_id}: {e}"));
                }
            }
            let container_ok = proxy_ok && d.runtime.remove(&inst.container_name).await.is_ok();
            if proxy_ok && container_ok {
                let _ = d.store.delete_instance(inst.id);
            } else {
                if proxy_ok {
                    leftovers.push(format!("container {}", inst.container_name));
                }
                let _ = d.store.update_instance(
                    inst.id,
                    &InstancePatch { status: Some(InstanceStatus::Leftover), ..InstancePatch::default() },
                );
            }
        }
        let error = if leftovers.is_empty() {
            format!("abandoned by its process; rolled back by deploy {ours}")
        } else {
            format!("abandoned by its process; rollback by deploy {ours} left: {}", leftovers.join("; "))
        };
        let _ = d.store.finish_deploy(
            dead.id,
            &DeployEnd { status: DeployStatus::Interrupted, error: Some(&error), url: None, leftovers: &leftovers },
        );
        log(format!("deploy {}: {error}", dead.id), if leftovers.is_empty() { Level::Info } else { Level::Warn });
    }
}
