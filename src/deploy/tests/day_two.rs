//! Issue 12, day two: image GC after retire and by prune (with the bytes freed), images of a
//! repository a running deploy pulls from, the idle network, and a redeploy of what already
//! runs.

use super::*;

/// Issue 12: after retire, only the last `keep_images` digests of a live slot stay; an image a
/// container uses (managed or not) and one of a repository the config does not name are never
/// deleted.
#[tokio::test]
async fn images_no_container_uses_go_after_retire_except_the_slots_last_digests() {
    let bed = Bed::new();
    let mut req = request("latest", 3);
    for n in 1..=6 {
        req.image_override = Some(format!("shop@sha256:d{n}"));
        assert!(matches!(bed.deployer().deploy(&req).await.unwrap(), DeployOutcome::Succeeded(_)));
    }
    let ids: Vec<String> = bed.runtime.images.borrow().keys().cloned().collect();
    assert_eq!(ids, ["img-sha256:d4", "img-sha256:d5", "img-sha256:d6"], "keep_images = 3, newest first");
    // Someone else's image, an image that is also another repository's, and one a container
    // outside tiny-forge uses.
    let other = |id: &str, digests: &[&str]| crate::engine::ImageInfo {
        id: id.into(),
        repo_digests: digests.iter().map(|d| (*d).to_owned()).collect(),
        repo_tags: Vec::new(),
        size: 10,
    };
    bed.runtime.images.borrow_mut().insert("img-x".into(), other("img-x", &["unrelated@sha256:x"]));
    bed.runtime.images.borrow_mut().insert("img-y".into(), other("img-y", &["shop@sha256:y", "mirror/shop@sha256:y"]));
    bed.runtime.images.borrow_mut().insert("img-sha256:z".into(), other("img-sha256:z", &["shop@sha256:z"]));
    bed.runtime.add("bystander", &[]);
    bed.runtime.containers.borrow_mut().get_mut("bystander").unwrap().image = "shop@sha256:z".into();
    req.image_override = Some("shop@sha256:d7".into());
    bed.deployer().deploy(&req).await.unwrap();
    let ids: Vec<String> = bed.runtime.images.borrow().keys().cloned().collect();
    assert_eq!(ids, ["img-sha256:d5", "img-sha256:d6", "img-sha256:d7", "img-sha256:z", "img-x", "img-y"]);
    // A rollback to a kept digest needs no pull from a registry that is gone.
    bed.runtime.fail("pull", Mode::Error);
    assert!(bed.runtime.images.borrow().contains_key("img-sha256:d5"));
}

#[tokio::test]
async fn prune_reports_the_bytes_it_frees_and_a_dry_run_the_bytes_it_would() {
    let bed = Bed::new();
    let mut req = request("latest", 3);
    req.stage.keep_images = 5;
    for n in 1..=4 {
        req.image_override = Some(format!("shop@sha256:d{n}"));
        bed.deployer().deploy(&req).await.unwrap();
    }
    assert_eq!(bed.runtime.images.borrow().len(), 4, "keep_images = 5 kept them all");
    let mut prune = PruneRequest {
        stages: vec![stage(3)],
        older_than: None,
        include_default: false,
        dry_run: true,
        history_retention: Duration::from_secs(86_400),
    };
    let dry = bed.deployer().prune(&prune).await.unwrap();
    assert_eq!(dry.bytes_freed, 1 << 20, "with keep_images = 3, one image goes");
    assert_eq!(dry.actions.iter().filter(|a| a.starts_with("delete image shop@sha256:d1")).count(), 1, "{dry:?}");
    assert_eq!(bed.runtime.images.borrow().len(), 4, "a dry run deletes nothing");
    prune.dry_run = false;
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert_eq!(done.bytes_freed, 1 << 20);
    assert!(!bed.runtime.images.borrow().contains_key("img-sha256:d1"));
    assert_eq!(bed.deployer().prune(&prune).await.unwrap().bytes_freed, 0, "nothing more the second time");
}

#[tokio::test]
async fn images_of_a_repository_a_running_deploy_pulls_from_are_left_alone() {
    let bed = Bed::new();
    bed.runtime.images.borrow_mut().insert(
        "img-old".into(),
        crate::engine::ImageInfo {
            id: "img-old".into(),
            repo_digests: vec!["shop@sha256:old".into()],
            repo_tags: Vec::new(),
            size: 1,
        },
    );
    bed.store
        .begin_deploy(&NewDeploy {
            slot: slot("other"),
            image: "shop:other".into(),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        })
        .unwrap();
    let tidied = bed.deployer().tidy(&stage(3), None, &bed.state()).await;
    assert!(tidied.notes.iter().any(|n| n.contains("is running")), "{tidied:?}");
    assert!(bed.runtime.images.borrow().contains_key("img-old"));
}

/// Issue 12: `settings.remove_idle_network` removes the stage's network once its last instance
/// is gone; without it the network stays.
#[tokio::test]
async fn the_idle_network_goes_only_when_asked_and_only_when_nothing_is_left() {
    for remove_it in [false, true] {
        let bed = Bed::new();
        let mut st = stage(3);
        st.remove_idle_network = remove_it;
        let mut req = request("latest", 3);
        req.stage = st.clone();
        bed.deployer().deploy(&req).await.unwrap();
        let mut other = req.clone();
        other.tag = Tag::new("b").unwrap();
        bed.deployer().deploy(&other).await.unwrap();
        bed.deployer().remove(&st, &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
        assert!(bed.runtime.networks.borrow().contains(&st.network), "another instance still uses it");
        bed.deployer().remove(&st, &Tag::new("b").unwrap(), LockWait::NoWait).await.unwrap();
        assert_eq!(bed.runtime.networks.borrow().contains(&st.network), !remove_it);
    }
}

/// Issue 12: a redeploy of the digest the slot already runs, with the same settings, deploys
/// nothing (and repairs the host); a changed env, a stopped container or `--force` redeploy.
#[tokio::test]
async fn a_redeploy_of_what_already_runs_does_nothing_unless_something_changed() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let mut req = request("latest", 3);
    req.force = false;
    let DeployOutcome::Succeeded(same) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(same.unchanged);
    assert_eq!(same.container, first.container);
    assert_eq!(bed.runtime.containers.borrow().len(), 1);
    assert_eq!(bed.runtime.calls.borrow().iter().filter(|c| c.starts_with("pull")).count(), 1, "nothing pulled");
    assert_eq!(bed.store.deploy(same.deploy_id).unwrap().unwrap().status, DeployStatus::Succeeded);
    // The host vanished: the no-op repairs it.
    bed.proxy.hosts.borrow_mut().clear();
    let DeployOutcome::Succeeded(repaired) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(repaired.unchanged);
    bed.assert_host(DOMAIN, &first.container);
    // A changed env redeploys.
    req.stage.env.push(("NEW".into(), "1".into()));
    let DeployOutcome::Succeeded(changed) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!changed.unchanged);
    assert_ne!(changed.container, first.container);
    // A stopped container redeploys.
    bed.runtime.containers.borrow_mut().get_mut(&changed.container).unwrap().running = false;
    let DeployOutcome::Succeeded(restarted) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!restarted.unchanged);
    // --force redeploys.
    req.force = true;
    let DeployOutcome::Succeeded(forced) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(!forced.unchanged);
    bed.assert_consistent();
}
