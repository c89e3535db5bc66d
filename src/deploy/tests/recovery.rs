//! Issue 11: what a dead run or someone else left. An abandoned deploy that switched the host,
//! recovered by the next deploy or by prune; a switch-back that fails during recovery; a
//! vanished host; a host of another slot; another state file's containers and hosts; a create
//! whose answer was lost.

use super::*;

/// A deploy that died (kill -9) after creating its container and switching the host to it,
/// before recording the switch.
fn dead_deploy_that_switched(bed: &Bed) -> (DeployId, String) {
    let dead = bed
        .store
        .begin_deploy(&NewDeploy {
            slot: slot("latest"),
            image: "shop:latest".into(),
            trigger: Trigger::Deploy,
            pid: 1,
            host: "h".into(),
            actor: None,
        })
        .unwrap();
    let name = format!("tf-shop-dev-latest-{dead}");
    bed.store
        .insert_instance(&NewInstance {
            deploy_id: dead,
            slot: slot("latest"),
            container_name: name.clone(),
            digest: "d".into(),
            domain: DOMAIN.into(),
            port: 8080,
            spec_hash: None,
        })
        .unwrap();
    bed.runtime.add(
        &name,
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, &bed.state()),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
        ],
    );
    if let Some(id) = bed.proxy.host(DOMAIN).map(|_| bed.proxy.hosts.borrow().keys().next().unwrap().clone()) {
        bed.proxy.hosts.borrow_mut().get_mut(&id).unwrap().target = Target { host: name.clone(), port: 8080 };
    }
    (dead, name)
}

/// Issue 11, scenario 5: recovery points the host back at the live instance before it removes
/// the dead deploy's container (the host pointed at it).
#[tokio::test]
async fn an_abandoned_deploy_that_switched_the_host_is_recovered_by_the_next_deploy() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    assert_eq!(bed.proxy.host(DOMAIN).unwrap().target.host, name);
    // The next deploy of another tag of the stage recovers it first.
    let other = bed.deploy("other", 3).await;
    assert!(matches!(other, DeployOutcome::Succeeded(_)));
    assert!(!bed.runtime.has(&name));
    bed.assert_host(DOMAIN, &first.container);
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.assert_consistent();
}

#[tokio::test]
async fn an_abandoned_deploy_is_recovered_by_prune_the_same_way() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    assert!(r.actions.iter().any(|a| a.contains(&format!("mark deploy {dead}"))), "{r:?}");
    assert!(!bed.runtime.has(&name));
    bed.assert_host(DOMAIN, &first.container);
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.assert_consistent();
    assert!(bed.prune().await.actions.is_empty(), "a second prune finds nothing to do");
}

/// Issue 11, scenario 7: a switch-back that fails during recovery leaves a leftover, a
/// non-zero prune, and is repaired by the next run.
#[tokio::test]
async fn a_switch_back_that_fails_during_recovery_is_a_leftover_and_repaired_next_time() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let (dead, name) = dead_deploy_that_switched(&bed);
    bed.proxy.fail("update", Mode::Error);
    let r = bed.prune().await;
    assert!(!r.failures.is_empty(), "prune must say it could not finish");
    assert!(bed.runtime.has(&name), "kept: the host points at it");
    assert!(!bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    assert!(!bed.runtime.has(&name));
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    bed.assert_consistent();
}

/// Issue 11, scenario 1: a host deleted behind our back (Caddy restarted, NPM UI) is
/// recreated by the next redeploy, and by prune.
#[tokio::test]
async fn a_vanished_host_is_recreated_by_the_redeploy_and_by_prune() {
    let bed = Bed::new();
    bed.ok("latest").await;
    bed.proxy.hosts.borrow_mut().clear();
    let second = bed.ok("latest").await;
    bed.assert_host(DOMAIN, &second.container);
    bed.assert_consistent();
    bed.proxy.hosts.borrow_mut().clear();
    let r = bed.prune().await;
    assert!(r.actions.iter().any(|a| a.contains("has no proxy host")), "{r:?}");
    bed.assert_host(DOMAIN, &second.container);
    // Pointed elsewhere: repaired.
    bed.proxy.hosts.borrow_mut().values_mut().for_each(|h| h.target = Target { host: "elsewhere".into(), port: 1 });
    bed.prune().await;
    bed.assert_host(DOMAIN, &second.container);
    bed.assert_consistent();
}

/// Issue 11, scenario 2: two slots fold to one host name; the second is refused, nothing of
/// the first is touched, and the message names both slots and the pattern to change.
#[tokio::test]
async fn a_host_of_another_slot_is_refused_and_left_untouched() {
    let bed = Bed::new();
    let other = Marker { state: bed.state(), slot: "web-2/dev/latest".into() };
    let target = Target { host: "tf-web-2-dev-latest-1".into(), port: 8080 };
    bed.proxy.add(DOMAIN, Owner::Marked(other.clone()), target.clone());
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("took over another slot's host") };
    let msg = f.failed.to_string();
    assert!(
        msg.contains("web-2/dev/latest") && msg.contains("shop/dev/latest") && msg.contains("tag_subdomain"),
        "{msg}"
    );
    assert!(f.rollback.is_complete());
    let h = bed.proxy.host(DOMAIN).unwrap();
    assert_eq!((h.owner, h.target), (Owner::Marked(other), target), "untouched");
    assert!(bed.runtime.containers.borrow().is_empty());
    assert!(bed.rows().is_empty());
    // Nor does remove or prune touch it.
    bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    bed.prune().await;
    assert!(bed.proxy.host(DOMAIN).is_some());
}

/// Issue 11, scenario 9: what another state file made is a stranger's.
#[tokio::test]
async fn another_state_files_containers_and_hosts_are_never_touched() {
    let bed = Bed::new();
    bed.runtime.add(
        "tf-shop-dev-latest-1",
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, "someone-else"),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
            (crate::engine::LABEL_SLOT, "shop/dev/latest"),
        ],
    );
    let theirs = Marker { state: "someone-else".into(), slot: "shop/dev/x".into() };
    bed.proxy.add("stage-dev-shop-x.localhost", Owner::Marked(theirs), Target { host: "c".into(), port: 1 });
    // Our deploy 1 wants the same container name: create conflicts, and the rollback must not
    // remove the stranger's container by name.
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert_eq!(f.failed.step, Step::Create);
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "the other state file's container was removed");
    let r = bed.prune().await;
    // Only the image our failed deploy pulled goes (no container uses it).
    assert!(r.actions.iter().all(|a| a.starts_with("delete image shop@")), "{r:?}");
    assert!(bed.runtime.has("tf-shop-dev-latest-1"));
    assert_eq!(bed.proxy.hosts.borrow().len(), 1);
}

/// Issue 11, scenario 6: a create whose answer is lost (it happened) is found by name and
/// deleted; one that has not shown up yet is reported (exit 3), not claimed done.
#[tokio::test(start_paused = true)]
async fn a_create_whose_answer_was_lost_is_found_by_name_or_reported() {
    let bed = Bed::new();
    bed.proxy.fail_times("create", Mode::ActThenFail, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    bed.assert_nothing_left();

    let bed = Bed::new();
    bed.proxy.fail_times("create", Mode::Timeout, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Host { cause: LeftoverCause::Unsettled, .. })),
        "{:?}",
        f.rollback
    );
    bed.prune().await;
    bed.assert_nothing_left();
}
