//! Review F9: image GC deletes only what this state file pulled and no longer needs: never
//! another state file's images (its rollback cache), nor the image a pending `on_remove` hook
//! will run from.

use super::*;

fn an_image(digest: &str) -> crate::engine::ImageInfo {
    crate::engine::ImageInfo {
        id: FakeRuntime::image_id(digest),
        repo_digests: vec![format!("shop@{digest}")],
        repo_tags: Vec::new(),
        size: 1000,
    }
}

#[tokio::test]
async fn prune_never_deletes_an_image_another_state_file_pulled() {
    let bed = Bed::new();
    bed.ok("latest").await;
    // Another state file on this host keeps a digest of the same repository for its rollback.
    let theirs = an_image("sha256:0abc");
    bed.runtime.images.borrow_mut().insert(theirs.id.clone(), theirs.clone());
    let report = bed.prune().await;
    assert!(bed.runtime.images.borrow().contains_key(&theirs.id), "{report:?}");
}

#[tokio::test]
async fn the_image_of_a_pending_on_remove_stays_for_its_retry() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, false, true);
    bed.deployer().deploy(&req).await.unwrap();
    bed.runtime.one_off_code.set(1);
    let r = bed.deployer().remove(&req.stage, &req.tag, LockWait::NoWait).await.unwrap();
    assert!(matches!(r.leftovers.as_slice(), [Leftover::Hook { .. }]), "{r:?}");
    let id = FakeRuntime::image_id("sha256:feed");
    assert!(bed.runtime.images.borrow().contains_key(&id), "the hook's image stays for its retry");
    // Once the hook ran, the image goes too.
    bed.runtime.one_off_code.set(0);
    let prune = prune_of(req.stage.clone());
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    let gone = bed.deployer().prune(&prune).await.unwrap();
    assert!(!bed.runtime.images.borrow().contains_key(&id), "{gone:?}");
}
