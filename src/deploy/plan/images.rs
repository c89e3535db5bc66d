//! Which images of the configured repositories can go (DESIGN §11): those this state file
//! pulled that no container uses and no live slot or pending hook keeps.

use std::collections::{BTreeMap, BTreeSet};

use super::{Action, Reason};
use crate::deploy::Deployer;
use crate::deploy::undo::Compensation;
use crate::domain::{DeployId, InstanceStatus};
use crate::engine::ContainerRuntime;
use crate::store::Store;

/// The canonical repository of an image reference (`repo:tag` or `repo@digest`, any spelling):
/// `docker.io/library/nginx` for `nginx@…`. What is not a reference stays as it is (it matches
/// no configured repository).
pub(in crate::deploy) fn repository_of(image: &str) -> String {
    crate::image_ref::Reference::parse(image).map_or_else(|_| image.to_owned(), |r| r.repo.canonical())
}

/// The images of `repos` that can go (DESIGN §11): no container uses them (managed or not), and
/// none of their digests is among the last `keep_of(project, stage)` digests a live slot ran.
/// An image that also belongs to a repository outside `repos` is never touched, and a
/// repository a running deploy (other than `ours`) pulls from is left for later. Returns the
/// actions and what was left out, and why.
pub(in crate::deploy) async fn image_actions<R, P, S, Pr>(
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
    let images = match d.runtime.list_images().await {
        Ok(i) => i,
        Err(e) => {
            skipped.push(format!("images: cannot list them: {}", crate::fmt::one_line(&e)));
            return Ok((Vec::new(), skipped));
        }
    };
    // Only images wholly of the repositories in scope; with none, nothing else is read (the
    // common case after a deploy that pulled nothing new).
    let mut candidates: Vec<(&crate::engine::ImageInfo, BTreeSet<String>)> = images
        .iter()
        .map(|image| (image, image.repositories()))
        .filter(|(_, repos_of)| !repos_of.is_empty() && repos_of.iter().all(|r| scope.contains(r.as_str())))
        .collect();
    if candidates.is_empty() {
        return Ok((Vec::new(), skipped));
    }
    // Only images this state file pulled: another state file's (its rollback cache, its hook's
    // image) are not ours to delete, even in a repository we share.
    let pulled = d.store.deployed_digests()?;
    candidates.retain(|(image, _)| image.digests().iter().any(|g| pulled.contains(*g)));
    if candidates.is_empty() {
        return Ok((Vec::new(), skipped));
    }
    let (keep, limits) = kept_digests(d, keep_of)?;
    candidates.retain(|(image, repos_of)| {
        let digests = image.digests();
        !repos_of.iter().any(|r| keep.get(r).is_some_and(|k| digests.iter().any(|g| k.contains(*g))))
    });
    if candidates.is_empty() {
        return Ok((Vec::new(), skipped));
    }
    // Last, and only about the few images that could go: which of them a container (any,
    // managed or not) was created from.
    let ids: BTreeSet<String> = candidates.iter().map(|(image, _)| image.id.clone()).collect();
    let in_use = match d.runtime.images_in_use(&ids).await {
        Ok(u) => u,
        Err(e) => {
            skipped.push(format!("images: cannot list the containers that use them: {}", crate::fmt::one_line(&e)));
            return Ok((Vec::new(), skipped));
        }
    };
    let mut actions = Vec::new();
    for (image, repos_of) in candidates.into_iter().filter(|(image, _)| !in_use.contains(&image.id)) {
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

/// What each live slot keeps, by repository: the digest it runs and its newest
/// `keep_of(project, stage)` digests; and the largest keep count of each repository. Two reads
/// of the state file whatever the number of live slots (the instances, and every live slot's
/// history in one statement: [`Store::live_slot_history`]). Pending `on_remove` hooks keep what
/// they will run from (their retry must not need the registry, where a merged branch's tag is
/// often gone).
#[allow(clippy::type_complexity)]
fn kept_digests<R, P, S: Store, Pr>(
    d: &Deployer<'_, R, P, S, Pr>,
    keep_of: &dyn Fn(&str, &str) -> u32,
) -> Result<(BTreeMap<String, BTreeSet<String>>, BTreeMap<String, u32>), crate::store::StoreError> {
    let mut keep: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut limits: BTreeMap<String, u32> = BTreeMap::new();
    let mut history: BTreeMap<(String, String, String), Vec<crate::store::SlotDeploy>> = BTreeMap::new();
    for past in d.store.live_slot_history(HISTORY_READ)? {
        history.entry((past.project.clone(), past.stage.clone(), past.tag.clone())).or_default().push(past);
    }
    for row in d.store.instances(&crate::store::Filter::default())? {
        if row.status != InstanceStatus::Live {
            continue;
        }
        let slot_history = history.get(&(row.project.clone(), row.stage.clone(), row.tag.clone()));
        // The image of the deploy that made the row: in the slot's history, unless that deploy
        // is still running (ours, retiring its predecessor).
        let image = match slot_history.and_then(|h| h.iter().find(|p| p.id == row.deploy_id)) {
            Some(p) => p.image.clone(),
            None => match d.store.deploy(row.deploy_id)? {
                Some(deploy) => deploy.image,
                None => continue,
            },
        };
        let repo = repository_of(&image);
        let n = keep_of(&row.project, &row.stage);
        limits.entry(repo.clone()).and_modify(|k| *k = (*k).max(n)).or_insert(n);
        let kept = keep.entry(repo).or_default();
        kept.insert(row.digest.clone());
        let mut newest: Vec<&str> = Vec::new();
        for past in slot_history.into_iter().flatten() {
            if !newest.contains(&past.digest.as_str()) {
                newest.push(&past.digest);
            }
        }
        kept.extend(newest.into_iter().take(usize::try_from(n).unwrap_or(usize::MAX)).map(str::to_owned));
    }
    for left in d.store.leftovers(&crate::store::Filter::default())? {
        if let crate::domain::Leftover::Hook { image, .. } = &left.item
            && let Some((_, digest)) = image.rsplit_once('@')
        {
            keep.entry(repository_of(image)).or_default().insert(digest.to_owned());
        }
    }
    Ok((keep, limits))
}

/// How many of a live slot's deploys image GC reads to find its newest digests.
const HISTORY_READ: usize = 500;

/// Digests a live slot keeps when its stage's config is not at hand.
pub(in crate::deploy) const DEFAULT_KEEP_IMAGES: u32 = 3;
