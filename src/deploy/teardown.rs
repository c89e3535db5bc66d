//! Taking one instance down, in the only safe order: its proxy host first (a host must never
//! point at a container that is gone), then its container, then its row. Used by retire,
//! eviction, `remove` and `prune`. On failure the row is kept as `leftover` so that `prune`
//! finishes the job, and the error says what is left.

use super::Deployer;
use crate::domain::InstanceStatus;
use crate::engine::{ContainerRuntime, Removal};
use crate::proxy::{Deleted, Proxy};
use crate::report::one_line;
use crate::store::{Filter, InstancePatch, InstanceRecord, Store};

/// Takes `inst` down. `delete_host` is false when its host was switched to another instance;
/// a host that another instance row still references is never deleted. Returns what was done.
pub(super) async fn take_down<R, P, S, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    inst: &InstanceRecord,
    delete_host: bool,
) -> Result<String, String>
where
    R: ContainerRuntime,
    P: Proxy,
    S: Store,
{
    let mut done = Vec::new();
    if delete_host && let Some(host_id) = &inst.proxy_host_id {
        let shared = d
            .store
            .instances(&Filter { project: Some(inst.project.clone()), stage: Some(inst.stage.clone()), tag: None })
            .map_err(|e| format!("instance {}: {e}", inst.container_name))?
            .iter()
            .any(|other| other.id != inst.id && other.proxy_host_id.as_ref() == Some(host_id));
        if !shared {
            let domain = inst.url.clone().unwrap_or_else(|| format!("host {host_id}"));
            match d.proxy.delete(host_id, &domain).await {
                Ok(Deleted::Deleted) => done.push(format!("deleted proxy host {host_id}")),
                Ok(Deleted::AlreadyGone) => done.push(format!("proxy host {host_id} was already gone")),
                Err(e) => {
                    let _ = d.store.update_instance(
                        inst.id,
                        &InstancePatch { status: Some(InstanceStatus::Leftover), ..InstancePatch::default() },
                    );
                    return Err(format!(
                        "instance {}: proxy host {host_id} not deleted: {}",
                        inst.container_name,
                        one_line(&e)
                    ));
                }
            }
        }
    }
    let target = inst.container_id.as_deref().unwrap_or(&inst.container_name);
    match d.runtime.remove(target).await {
        Ok(Removal::Removed) => done.push(format!("removed container {}", inst.container_name)),
        Ok(Removal::AlreadyGone) => done.push(format!("container {} was already gone", inst.container_name)),
        Err(e) => {
            let _ = d.store.update_instance(
                inst.id,
                &InstancePatch {
                    status: Some(InstanceStatus::Leftover),
                    proxy_host_id: delete_host.then_some(None),
                    ..InstancePatch::default()
                },
            );
            return Err(format!("instance {}: container not removed: {}", inst.container_name, one_line(&e)));
        }
    }
    d.store.delete_instance(inst.id).map_err(|e| format!("instance {}: row not deleted: {e}", inst.container_name))?;
    Ok(done.join(", "))
}
