//! What a slot's instance is made of: its labels here, its container or service spec in its
//! placement (`place/`). Both are built once, for the create (or the service create and update)
//! and for the no-op check, so that the hash a no-op compares covers exactly what the instance
//! gets: the env after substitution (`TF_URL`, `TF_HOST`, `{url}`, `{host}`, which follow the
//! domain, the subdomain patterns and the proxy's certificate settings), the labels, limits,
//! command, volumes, health policy and Swarm settings (review F6).

use std::collections::BTreeMap;

use crate::config::ResolvedStage;
use crate::domain::{DeployId, Slot};
use crate::engine;

/// Ours and the user's labels of `slot`'s instance made by deploy `id` of state file `state_id`.
pub(super) fn labels(stage: &ResolvedStage, slot: &Slot, state_id: &str, id: DeployId) -> BTreeMap<String, String> {
    let mut labels: BTreeMap<String, String> = stage.labels.clone();
    for (k, v) in [
        (engine::LABEL_MANAGED, "true".to_owned()),
        (engine::LABEL_STATE, state_id.to_owned()),
        (engine::LABEL_PROJECT, slot.project.to_string()),
        (engine::LABEL_STAGE, slot.stage.to_string()),
        (engine::LABEL_TAG, slot.tag.to_string()),
        (engine::LABEL_SLOT, slot.key()),
        (engine::LABEL_DEPLOY_ID, id.to_string()),
    ] {
        labels.insert(k.to_owned(), v);
    }
    labels
}

/// The placeholder an instance's own name stands in for in the URL a no-op hash is made of:
/// with no proxy, the URL is the instance's address, which every deploy names anew.
pub(super) const OWN_NAME: &str = "{instance}";

/// A hash of what `slot`'s instance is made of besides its image: the spec its placement builds
/// (without its name, image and deploy id), with `url` the slot's public URL
/// as the proxy makes it for an instance named [`OWN_NAME`], and the slot's host name `domain`.
/// Two deploys with the same hash and digest make the same instance behind the same host.
pub(crate) fn hash(stage: &ResolvedStage, slot: &Slot, state_id: &str, url: &str, domain: &str) -> String {
    use sha2::Digest as _;
    let mut labels = labels(stage, slot, state_id, DeployId(0));
    labels.remove(engine::LABEL_DEPLOY_ID);
    let text = super::place::Placement::spec_text(&super::place::for_stage(stage), stage, slot, url, labels);
    let text = format!("{text}|host {domain}");
    sha2::Sha256::digest(text.as_bytes()).iter().fold(String::with_capacity(64), |mut hex, b| {
        use std::fmt::Write as _;
        let _ = write!(hex, "{b:02x}");
        hex
    })
}
