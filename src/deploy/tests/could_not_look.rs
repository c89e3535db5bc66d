//! Issue 21: a look that failed is never an absence. Prune, remove, rollback and recovery keep
//! what they could not see: no host deleted or repaired, no container or row removed, no hook
//! run, and the run says so (a failure line, an unseen leftover, exit 3).

use super::*;

/// Two live previews, with an `on_remove` hook: what a failed look must never take down.
async fn two_previews(bed: &Bed) -> (crate::config::ResolvedStage, Vec<DeploySuccess>) {
    let stage = with_hooks(false, false, true);
    let mut done = Vec::new();
    for tag in ["pr-1", "pr-2"] {
        let mut req = request(tag, 3);
        req.stage = stage.clone();
        let DeployOutcome::Succeeded(s) = bed.deployer().deploy(&req).await.unwrap() else { panic!("{tag} failed") };
        done.push(s);
    }
    (stage, done)
}

/// Both previews are exactly as they were: containers running, hosts on them, rows live, and
/// no `on_remove` ever ran.
#[track_caller]
fn assert_untouched(bed: &Bed, previews: &[DeploySuccess]) {
    let rows = bed.rows();
    for p in previews {
        assert!(bed.runtime.containers.borrow().get(&p.container).is_some_and(|c| c.running), "{} went", p.container);
        let row =
            rows.iter().find(|r| r.container_name == p.container).unwrap_or_else(|| panic!("row of {}", p.container));
        assert_eq!(row.status, InstanceStatus::Live, "{}", p.container);
        let host = bed.proxy.host(row.domain.as_deref().unwrap()).unwrap_or_else(|| panic!("host of {}", p.container));
        assert_eq!(host.target.host, p.container);
        let hook = format!("{}-on-remove", p.container);
        let ran = bed.runtime.calls.borrow().iter().any(|c| c.contains(&hook));
        assert!(!ran, "the on_remove hook of {} ran", p.container);
    }
}

/// Issue 26: prune reads a stage's containers from the one list it takes, not with an inspect
/// per preview, so its engine calls do not grow with the number of previews; a failing inspect
/// then changes nothing.
#[tokio::test]
async fn prune_reads_listed_previews_from_the_list_without_an_inspect_each() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    bed.runtime.fail("inspect", Mode::Error);
    bed.runtime.calls.borrow_mut().clear();
    let report = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(report.failures.is_empty() && report.leftovers.is_empty(), "{report:?}");
    let calls = bed.runtime.calls.borrow().clone();
    assert!(!calls.iter().any(|c| c.starts_with("inspect")), "no inspect: {calls:?}");
    assert_eq!(calls.iter().filter(|c| c.starts_with("list")).count(), 1, "one list: {calls:?}");
    assert_untouched(&bed, &previews);
}

/// A preview the list does not show may be gone, or made after the list was read: only an
/// inspect tells, and a failed one keeps the slot whole.
#[tokio::test]
async fn prune_with_every_inspect_failing_keeps_live_previews_and_says_it_could_not_look() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    let gone = bed.runtime.containers.borrow_mut().remove(&previews[0].container).expect("the first preview's");
    bed.runtime.fail("inspect", Mode::Error);
    let report = bed.deployer().prune(&prune_of(stage.clone())).await.unwrap();
    bed.runtime.containers.borrow_mut().insert(previews[0].container.clone(), gone.clone());
    assert_untouched(&bed, &previews);
    bed.runtime.containers.borrow_mut().remove(&previews[0].container);
    assert!(!report.failures.is_empty(), "a prune that could not look does not exit 0: {report:?}");
    assert!(report.failures.iter().any(|f| f.contains("could not look")), "{report:?}");
    assert!(
        report.leftovers.iter().all(|l| matches!(l, Leftover::Unseen { .. })) && !report.leftovers.is_empty(),
        "{report:?}"
    );
    // Healed, with the container really there again: nothing to do and nothing left.
    bed.runtime.heal();
    bed.runtime.containers.borrow_mut().insert(previews[0].container.clone(), gone);
    let again = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(again.failures.is_empty() && again.leftovers.is_empty(), "{again:?}");
    assert_untouched(&bed, &previews);
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
}

#[tokio::test]
async fn prune_with_the_container_list_failing_removes_no_container_and_deletes_no_row() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    // An orphan of ours that a working list would have found: it stays too.
    bed.runtime.add(
        "tf-shop-dev-pr-9-99",
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
            (crate::engine::LABEL_STATE, &bed.state()),
        ],
    );
    bed.runtime.fail("list", Mode::Error);
    bed.runtime.fail("inspect", Mode::Error);
    let report = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert_untouched(&bed, &previews);
    assert!(bed.runtime.has("tf-shop-dev-pr-9-99"), "an orphan is removed only after a list that worked");
    assert!(report.failures.iter().any(|f| f.contains("cannot list containers")), "{report:?}");
}

/// The reviewer's fake-based proof of F1: one transient inspect error used to delete the host
/// and then remove the live container.
#[tokio::test]
async fn one_transient_inspect_error_during_prune_takes_nothing_down() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    // The list fails, so prune looks at each preview by inspect; one inspect fails.
    bed.runtime.fail_times("list", Mode::Error, 1);
    bed.runtime.fail_times("inspect", Mode::Error, 1);
    let report = bed.deployer().prune(&prune_of(stage.clone())).await.unwrap();
    assert_untouched(&bed, &previews);
    assert!(!report.failures.is_empty(), "{report:?}");
    let again = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(again.failures.is_empty() && again.leftovers.is_empty(), "{again:?}");
}

#[tokio::test]
async fn a_container_that_is_really_gone_takes_its_host_and_row_but_never_runs_on_remove() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    // `docker container prune` took the first preview's (stopped) container.
    bed.runtime.containers.borrow_mut().remove(&previews[0].container);
    let report = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(report.failures.is_empty(), "{report:?}");
    assert!(report.actions.iter().any(|a| a.contains("its container is gone")), "{report:?}");
    assert!(bed.proxy.host("stage-dev-shop-pr-1.localhost").is_none(), "its host goes");
    assert!(!bed.rows().iter().any(|r| r.container_name == previews[0].container), "its row goes");
    let hooks = bed.runtime.calls.borrow().iter().filter(|c| c.contains("on-remove")).cloned().collect::<Vec<_>>();
    assert!(hooks.is_empty(), "a vanished container does not drop the slot's data: {hooks:?}");
    assert_untouched(&bed, &previews[1..]);
}

#[tokio::test]
async fn remove_with_the_container_list_failing_exits_incomplete_and_prune_finishes_it() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    bed.runtime.fail("list", Mode::Error);
    let tag = Tag::new("pr-1").unwrap();
    let r = bed.deployer().remove(&stage, &tag, LockWait::NoWait).await.unwrap();
    assert!(r.leftovers.iter().any(|l| matches!(l, Leftover::Unseen { .. })), "{r:?}");
    assert_untouched(&bed, &previews[1..]);
    bed.runtime.heal();
    let done = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    assert_untouched(&bed, &previews[1..]);
}

#[tokio::test]
async fn a_redeploy_that_cannot_look_at_the_serving_instance_never_moves_or_deletes_its_host() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    // The create and start work; every later inspect fails (the health step's look included).
    bed.runtime.fail_after("inspect", Mode::Error, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert!(matches!(f.failed.step, Step::Health | Step::Proxy), "{}", f.failed);
    bed.runtime.heal();
    bed.assert_host(DOMAIN, &first.container);
    assert!(bed.runtime.containers.borrow().get(&first.container).is_some_and(|c| c.running));
}

#[tokio::test]
async fn a_rollback_whose_look_at_the_previous_instance_fails_keeps_the_host_on_it() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    // Health passes (one inspect), then the publish step's look at the serving instance fails.
    bed.runtime.fail_after("inspect", Mode::Error, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy, "{}", f.failed);
    assert!(f.failed.to_string().contains("traffic stays"), "{}", f.failed);
    bed.runtime.heal();
    bed.assert_host(DOMAIN, &first.container);
    let rows = bed.rows();
    assert!(rows.iter().any(|r| r.container_name == first.container && r.status == InstanceStatus::Live));
}

#[tokio::test]
async fn swarm_prune_with_the_swarm_unable_to_answer_keeps_the_service_its_host_and_row() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(_) = bed.swarm_deploy("sha256:aaa").await else { panic!("failed") };
    let stage = swarm_request("sha256:aaa").stage;
    // A locked swarm: services cannot be listed or looked at.
    bed.runtime.fail("service", Mode::Error);
    bed.runtime.fail("list_services", Mode::Error);
    let report = bed.deployer().prune(&prune_of(stage.clone())).await.unwrap();
    assert!(!report.failures.is_empty(), "{report:?}");
    assert!(bed.runtime.services.borrow().contains_key(SERVICE), "the service stays");
    bed.assert_host(DOMAIN, SERVICE);
    assert_eq!(bed.rows().len(), 1);
    bed.runtime.heal();
    let again = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(again.failures.is_empty() && again.leftovers.is_empty(), "{again:?}");
    assert!(bed.runtime.services.borrow().contains_key(SERVICE));
    bed.assert_host(DOMAIN, SERVICE);
}

/// A `remove` killed mid-way (found by chaos: killed while the engine was still deleting the
/// container, so prune's list still showed it) is finished by the next prune: the slot was to
/// go, so its row, container and host go, and the other preview stays.
#[tokio::test]
async fn prune_finishes_a_remove_its_process_abandoned() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    let domain = abandoned_remove_of_pr_1(&bed, &stage, &previews);
    bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert_pr_1_removed_and_pr_2_untouched(&bed, &previews, &domain);
}

/// A `remove` of pr-1 whose process died before it did anything; the host name of pr-1.
fn abandoned_remove_of_pr_1(
    bed: &Bed,
    stage: &crate::config::ResolvedStage,
    previews: &[DeploySuccess],
) -> (DeployId, String) {
    let slot = crate::domain::Slot {
        project: stage.project.clone(),
        stage: stage.stage.clone(),
        tag: crate::domain::Tag::new("pr-1").unwrap(),
    };
    let id = bed
        .store
        .begin_deploy(&crate::store::NewDeploy {
            slot,
            image: "127.0.0.1:5000/shop:pr-1".into(),
            trigger: crate::domain::Trigger::Remove,
            pid: 999_999,
            host: "elsewhere".into(),
            actor: None,
        })
        .unwrap();
    let domain = bed.rows().into_iter().find(|r| r.container_name == previews[0].container).unwrap().domain.unwrap();
    (id, domain)
}

/// pr-1 is gone (container, row, host) and its `on_remove` ran once, the abandoned remove is
/// no longer running, and pr-2 is as it was.
#[track_caller]
fn assert_pr_1_removed_and_pr_2_untouched(
    bed: &Bed,
    previews: &[DeploySuccess],
    (remove, domain): &(DeployId, String),
) {
    assert!(!bed.runtime.has(&previews[0].container), "the removed slot's container went");
    let rows = bed.rows();
    assert!(!rows.iter().any(|r| r.container_name == previews[0].container), "{rows:?}");
    assert!(bed.proxy.host(domain).is_none(), "its host went");
    let hooks = bed
        .runtime
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("create tf-shop-dev-pr-1-") && c.ends_with("-on-remove"))
        .count();
    assert_eq!(hooks, 1, "the removal's on_remove ran once");
    let record = bed.store.deploy(*remove).unwrap().unwrap();
    assert_ne!(record.status, DeployStatus::Running, "{record:?}");
    assert_untouched(bed, &previews[1..]);
}

/// Adversarial review M2: a deploy of another slot that finds the dead remove finishes it (it
/// used to mark it rolled back, so the half-removed slot was never finished and its `on_remove`
/// never ran).
#[tokio::test]
async fn a_deploy_finishes_a_remove_its_process_abandoned() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    let dead = abandoned_remove_of_pr_1(&bed, &stage, &previews);
    let mut req = request("pr-3", 3);
    req.stage = stage.clone();
    let DeployOutcome::Succeeded(_) = bed.deployer().deploy(&req).await.unwrap() else { panic!("pr-3 failed") };
    assert_pr_1_removed_and_pr_2_untouched(&bed, &previews, &dead);
    let record = bed.store.deploy(dead.0).unwrap().unwrap();
    assert!(record.error.as_deref().is_some_and(|e| e.contains("removal was finished")), "{record:?}");
    // Nothing left for prune to do about pr-1.
    let again = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(again.failures.is_empty() && again.leftovers.is_empty(), "{again:?}");
    assert!(bed.runtime.has(&previews[1].container));
}

/// Adversarial review H1: a slot whose host or container stays because the proxy could not be
/// asked is not gone, so its `on_remove` (which drops the preview's database) must not run; it
/// stays a leftover, and the prune that finishes the take-down runs it.
#[tokio::test]
async fn on_remove_waits_while_the_proxy_cannot_be_asked_and_prune_runs_it_once_the_slot_is_gone() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    // The hook's one-off is named after the deploy that runs it (the remove, or prune's retry).
    let ran = |bed: &Bed| {
        bed.runtime
            .calls
            .borrow()
            .iter()
            .any(|c| c.starts_with("create tf-shop-dev-pr-1-") && c.ends_with("-on-remove"))
    };
    bed.proxy.fail("find", Mode::Error);
    bed.proxy.fail("list", Mode::Error);
    let tag = Tag::new("pr-1").unwrap();
    let r = bed.deployer().remove(&stage, &tag, LockWait::NoWait).await.unwrap();
    assert!(bed.runtime.has(&previews[0].container), "the container stays while the proxy cannot be asked");
    assert!(!ran(&bed), "on_remove ran while the preview may still be served");
    assert!(
        r.leftovers.iter().any(
            |l| matches!(l, Leftover::Hook { cause: LeftoverCause::Failed { error }, .. } if error.contains("not gone"))
        ),
        "{r:?}"
    );
    // The proxy answers again: prune finishes the take-down, then runs the hook, once.
    bed.proxy.heal();
    let done = bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    assert!(!bed.runtime.has(&previews[0].container), "{done:?}");
    assert!(ran(&bed), "{done:?}");
    assert!(bed.proxy.host("stage-dev-shop-pr-1.localhost").is_none());
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    // The other preview was never touched.
    assert!(bed.runtime.containers.borrow().get(&previews[1].container).is_some_and(|c| c.running));
}

/// The same for a preview prune expires (its TTL) while the proxy's admin API is down: nothing
/// of it goes and its hook does not run.
#[tokio::test]
async fn an_expired_preview_keeps_its_on_remove_while_the_proxy_cannot_be_asked() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    bed.proxy.fail("find", Mode::Error);
    bed.proxy.fail("list", Mode::Error);
    let mut req = prune_of(stage);
    req.older_than = Some(Duration::ZERO);
    let report = bed.deployer().prune(&req).await.unwrap();
    assert!(!report.failures.is_empty() || !report.leftovers.is_empty(), "{report:?}");
    for p in &previews {
        let hook = format!("{}-on-remove", p.container);
        assert!(!bed.runtime.calls.borrow().iter().any(|c| c.contains(&hook)), "{hook} ran: {report:?}");
    }
}

/// Second review F1: a `remove` that died, and whose slot was deployed again afterwards (its
/// recovery could not finish it then), is superseded: neither a later deploy's recovery nor
/// prune takes the newer instance away.
#[tokio::test]
async fn a_dead_remove_never_takes_away_what_was_deployed_after_it() {
    let bed = Bed::new();
    let (stage, previews) = two_previews(&bed).await;
    let (remove, _) = abandoned_remove_of_pr_1(&bed, &stage, &previews);
    // pr-1 deployed again after the remove died, written as a deploy records it.
    let newer = bed
        .store
        .begin_deploy(&crate::store::NewDeploy {
            slot: crate::domain::Slot {
                project: stage.project.clone(),
                stage: stage.stage.clone(),
                tag: Tag::new("pr-1").unwrap(),
            },
            image: "shop@sha256:feed".into(),
            trigger: Trigger::Deploy,
            pid: std::process::id(),
            host: "h".into(),
            actor: None,
        })
        .unwrap();
    let name = format!("tf-shop-dev-pr-1-{newer}");
    bed.runtime.add(
        &name,
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
            (crate::engine::LABEL_TAG, "pr-1"),
            (crate::engine::LABEL_SLOT, "shop/dev/pr-1"),
            (crate::engine::LABEL_DEPLOY_ID, &newer.to_string()),
            (crate::engine::LABEL_STATE, &bed.state()),
        ],
    );
    let row = bed
        .store
        .insert_instance(&crate::store::NewInstance {
            deploy_id: newer,
            slot: crate::domain::Slot {
                project: stage.project.clone(),
                stage: stage.stage.clone(),
                tag: Tag::new("pr-1").unwrap(),
            },
            container_name: name.clone(),
            digest: "sha256:feed".into(),
            domain: "stage-dev-shop-pr-1.localhost".into(),
            port: 8080,
            spec_hash: None,
        })
        .unwrap();
    let old = bed.rows().into_iter().filter(|r| r.tag == "pr-1" && r.id != row).map(|r| r.id).collect::<Vec<_>>();
    bed.store
        .finish_success(&crate::store::Success {
            deploy_id: newer,
            instance: row,
            url: "http://stage-dev-shop-pr-1.localhost",
            proxy_host_id: None,
            retire: &old,
            rolled_back: &[],
        })
        .unwrap();
    // Another slot's deploy recovers the dead remove; then prune runs.
    let mut req = request("pr-3", 3);
    req.stage = stage.clone();
    let DeployOutcome::Succeeded(_) = bed.deployer().deploy(&req).await.unwrap() else { panic!("pr-3 failed") };
    bed.deployer().prune(&prune_of(stage)).await.unwrap();
    assert!(bed.runtime.has(&name), "the newer pr-1 stays");
    assert!(bed.rows().iter().any(|r| r.id == row && r.status == InstanceStatus::Live), "{:?}", bed.rows());
    let hooks = bed.runtime.calls.borrow().iter().filter(|c| c.contains("pr-1") && c.contains("on-remove")).count();
    assert_eq!(hooks, 0, "no on_remove for the slot that was deployed again");
    let record = bed.store.deploy(remove).unwrap().unwrap();
    assert!(record.error.as_deref().is_some_and(|e| e.contains("deployed again")), "{record:?}");
}
