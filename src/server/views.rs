//! What `list` shows, built once for the CLI and the server: the state file's instances,
//! cross-checked with the engine, plus managed containers the state file does not know and what
//! undos left behind. Each item is the JSON object `list --output json` prints.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use crate::engine::{self, ContainerInfo, ContainerRuntime};
use crate::store::{Filter, InstanceRecord, LeftoverRecord, Store, StoreError};

/// RFC 3339 with milliseconds, UTC.
#[must_use]
pub fn rfc3339(ts_ms: i64) -> String {
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ts_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// The list items. `docker` is `None` when the engine could not be asked (states are then
/// `unknown`); `health` maps instance rows to a probe result (`list --probe`).
#[must_use]
pub fn list_items(
    instances: &[InstanceRecord],
    leftovers: &[LeftoverRecord],
    state_id: Option<&str>,
    docker: Option<&[ContainerInfo]>,
    health: &HashMap<i64, String, impl std::hash::BuildHasher>,
    filter: &Filter,
) -> Vec<Value> {
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
        items.push(json!({
            "project": i.project, "stage": i.stage, "tag": i.tag, "url": i.url, "status": i.status.as_str(),
            "container": i.container_name, "container_state": shown, "health": health.get(&i.id), "digest": i.digest,
            "deploy_id": i.deploy_id.0, "created_at": rfc3339(i.created_at),
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
        items.push(json!({
            "project": l(engine::LABEL_PROJECT), "stage": l(engine::LABEL_STAGE),
            "tag": l(engine::LABEL_TAG), "url": null, "status": "orphan", "container": c.name,
            "container_state": c.state, "digest": null, "deploy_id": null, "created_at": null,
        }));
    }
    items.extend(leftovers.iter().map(|l| {
        json!({"project": l.project, "stage": l.stage, "status": "leftover", "leftover": l.item,
            "deploy_id": l.deploy_id.map(|d| d.0), "created_at": rfc3339(l.created_at)})
    }));
    items
}

/// [`list_items`] for the server: reads the state file and asks the engine now.
///
/// # Errors
/// When the state file cannot be read (an engine that does not answer gives `unknown` states).
pub async fn instances<R: ContainerRuntime, S: Store>(
    runtime: &R,
    store: &S,
    filter: &Filter,
) -> Result<Vec<Value>, StoreError> {
    let instances = store.instances(filter)?;
    let leftovers = store.leftovers(filter)?;
    let state_id = store.state_id()?;
    let docker = engine::managed_for_display(runtime).await;
    Ok(list_items(&instances, &leftovers, Some(&state_id), docker.as_deref(), &HashMap::new(), filter))
}
