//! Review F5 and F13: one-offs (release, hooks) a crashed run left are found by their labels,
//! waited for while they may still finish, then removed; a run never removes a one-off it did
//! not make, and every one-off the executor runs is bounded in time.

use super::*;

/// A deploy of `latest` that died during its release: its row says running, its release
/// container (labelled with its deploy id and role) still runs.
fn dead_deploy_in_its_release(bed: &Bed) -> (DeployId, String) {
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
    let name = crate::naming::one_off_name(&slot("latest"), dead, "release");
    bed.runtime.add(
        &name,
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, &bed.state()),
            (crate::engine::LABEL_PROJECT, "shop"),
            (crate::engine::LABEL_STAGE, "dev"),
            (crate::engine::LABEL_DEPLOY_ID, &dead.to_string()),
            (crate::engine::LABEL_ROLE, "release"),
        ],
    );
    (dead, name)
}

#[tokio::test]
async fn the_next_deploy_waits_for_a_release_a_crashed_deploy_left_then_removes_it_and_runs_its_own() {
    let bed = Bed::new();
    let (dead, left) = dead_deploy_in_its_release(&bed);
    let mut req = request("latest", 3);
    req.stage = with_hooks(true, false, false);
    let DeployOutcome::Succeeded(ok) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(!bed.runtime.has(&left), "the crashed run's release is gone");
    let calls = bed.runtime.calls.borrow().clone();
    let waited = calls.iter().position(|c| c == &format!("wait_exit {left}")).expect("it was waited for");
    let removed = calls.iter().position(|c| c == &format!("remove {left}")).expect("then removed");
    let ours = crate::naming::one_off_name(&slot("latest"), ok.deploy_id, "release");
    let own = calls.iter().position(|c| c == &format!("create {ours}")).expect("its own release ran");
    assert!(waited < removed && removed < own, "never two releases at once: {calls:#?}");
    assert_eq!(bed.store.deploy(dead).unwrap().unwrap().status, DeployStatus::Interrupted);
    bed.assert_consistent();
}

#[tokio::test]
async fn prune_keeps_a_one_off_that_still_runs_and_removes_it_once_it_ended() {
    let bed = Bed::new();
    let (_, left) = dead_deploy_in_its_release(&bed);
    let stage = with_hooks(true, false, false);
    let prune = || prune_of(stage.clone());
    let first = bed.deployer().prune(&prune()).await.unwrap();
    assert!(bed.runtime.has(&left), "a migration that may still finish is never killed halfway");
    assert!(first.failures.iter().any(|f| f.contains(&left) && f.contains("still runs")), "{first:?}");
    bed.runtime.containers.borrow_mut().get_mut(&left).unwrap().running = false;
    let second = bed.deployer().prune(&prune()).await.unwrap();
    assert!(!bed.runtime.has(&left), "{second:?}");
    assert!(second.failures.is_empty() && second.leftovers.is_empty(), "{second:?}");
}

#[tokio::test]
async fn a_one_off_never_removes_a_container_of_its_name_that_it_did_not_make() {
    let bed = Bed::new();
    let (_, left) = dead_deploy_in_its_release(&bed);
    let run = super::super::oneoff::OneOffRun {
        name: left.clone(),
        image: "shop@sha256:feed".into(),
        env: Vec::new(),
        labels: std::collections::BTreeMap::new(),
        network: "n".into(),
        port: 8080,
        what: crate::config::OneOff { command: vec!["/migrate".into()], timeout: Duration::from_secs(30) },
        auth: None,
    };
    let err = super::super::oneoff::run(&bed.runtime, &run, &mut |_, _| {}).await.unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");
    assert!(bed.runtime.containers.borrow().get(&left).is_some_and(|c| c.running), "still there, still running");
}

/// Review F13: an `on_remove` the executor runs is bounded as a whole (pull, create and run),
/// so a hang cannot hold the stage's lock for ever.
#[tokio::test(start_paused = true)]
async fn a_hanging_on_remove_is_a_leftover_within_its_bound() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, false, true);
    bed.deployer().deploy(&req).await.unwrap();
    // The create never answers (a hung engine): the hook's own timeout covers only its command.
    bed.runtime.fail("create", Mode::Hang);
    let r = bed.deployer().remove(&req.stage, &req.tag, LockWait::NoWait).await.unwrap();
    assert!(
        matches!(r.leftovers.as_slice(), [Leftover::Hook { cause: LeftoverCause::Failed { error }, .. }] if error.contains("did not finish within")),
        "{r:?}"
    );
    assert!(bed.rows().is_empty(), "the instance went anyway");
}

/// Review F7 (b): a second state file deploying a slot that another one serves never runs
/// `on_create` for it, nor the `on_remove` of its rollback (the same `TF_SLOT`: the other's
/// database).
#[tokio::test]
async fn on_create_never_runs_for_a_slot_another_state_file_holds() {
    let bed = Bed::new();
    let domain = "stage-dev-shop-pr-7.localhost";
    let owner = Owner::Marked(Marker { state: "another-state".into(), slot: "shop/dev/pr-7".into() });
    bed.proxy.add(domain, owner, Target { host: "tf-shop-dev-pr-7-1".into(), port: 8080 });
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, true, true);
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::OnCreate);
    assert!(f.failed.to_string().contains("another state file"), "{}", f.failed);
    let hooks: Vec<String> = bed
        .runtime
        .calls
        .borrow()
        .iter()
        .filter(|c| c.contains("on-create") || c.contains("on-remove"))
        .cloned()
        .collect();
    assert!(hooks.is_empty(), "neither hook ran: {hooks:?}");
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.proxy.host(domain).map(|h| h.target.host), Some("tf-shop-dev-pr-7-1".into()), "theirs stays");
    // The same with a container of theirs.
    bed.proxy.hosts.borrow_mut().clear();
    bed.runtime.add(
        "tf-shop-dev-pr-7-1",
        &[
            (crate::engine::LABEL_MANAGED, "true"),
            (crate::engine::LABEL_STATE, "another-state"),
            (crate::engine::LABEL_SLOT, "shop/dev/pr-7"),
        ],
    );
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!("succeeded") };
    assert!(
        f.failed.to_string().contains("container tf-shop-dev-pr-7-1 belongs to another state file"),
        "{}",
        f.failed
    );
    assert!(bed.runtime.has("tf-shop-dev-pr-7-1"));
}

/// Adversarial review M3: a release whose output stream breaks and whose exit code cannot be
/// read at first is waited for, not force-removed half-way: the deploy goes on with its real
/// exit code, and its container is removed only after the engine gave that code.
#[tokio::test(start_paused = true)]
async fn a_release_whose_log_stream_breaks_is_waited_for_not_killed() {
    let bed = Bed::new();
    bed.runtime.fail_times("logs", Mode::Error, 1);
    bed.runtime.fail_times("wait_exit", Mode::Error, 2);
    let mut req = request("latest", 3);
    req.stage = with_hooks(true, false, false);
    let DeployOutcome::Succeeded(done) = bed.deployer().deploy(&req).await.unwrap() else {
        panic!("the release was cut short")
    };
    let calls = bed.runtime.calls.borrow().clone();
    let release = |c: &&String| c.ends_with("-release");
    let waits: Vec<usize> =
        calls.iter().enumerate().filter(|(_, c)| c.starts_with("wait_exit") && release(c)).map(|(i, _)| i).collect();
    assert_eq!(waits.len(), 3, "two failed looks, then the code: {calls:?}");
    let removed = calls.iter().position(|c| c.starts_with("remove ") && release(&c)).expect("its container goes");
    assert!(removed > waits[2], "removed only after the engine gave its code: {calls:?}");
    assert!(created_ones(&bed).iter().all(|n| !bed.runtime.has(n)), "no one-off stays");
    let logs = bed.store.logs(done.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.message.contains("output stream broke")), "{logs:?}");
}

fn created_ones(bed: &Bed) -> Vec<String> {
    bed.runtime
        .calls
        .borrow()
        .iter()
        .filter_map(|c| c.strip_prefix("create ").map(str::to_owned))
        .filter(|n| n.ends_with("-release"))
        .collect()
}
