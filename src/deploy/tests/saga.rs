//! The deploy saga, step by step: the happy path, each step failing in turn (engine, health,
//! proxy), a failing compensation, a redeploy over a live instance, `max_instances`,
//! cancellation and a second signal, a busy lock, a container name someone else took, and an
//! image gone before the create.

use super::*;

#[tokio::test]
async fn happy_path_leaves_a_live_instance_a_marked_host_and_a_log_per_step() {
    let bed = Bed::new();
    let ok = bed.ok("latest").await;
    assert_eq!(ok.url, format!("http://{DOMAIN}"));
    let rows = bed.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, InstanceStatus::Live);
    assert_eq!(rows[0].port, Some(8080));
    assert_eq!(rows[0].domain.as_deref(), Some(DOMAIN));
    bed.assert_host(DOMAIN, &ok.container);
    let c = bed.runtime.containers.borrow()[&ok.container].clone();
    assert_eq!(c.labels.get(crate::engine::LABEL_STATE), Some(&bed.state()));
    let d = bed.store.deploy(ok.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Succeeded);
    assert_eq!(d.digest.as_deref(), Some("sha256:feed"));
    let logs = bed.store.logs(ok.deploy_id, 0).unwrap();
    for step in ["lock", "pull", "network", "create", "start", "health", "proxy", "finish", "retire"] {
        assert!(logs.iter().any(|l| l.step == step && l.message.contains("done in")), "no finished entry for {step}");
    }
}

#[tokio::test]
async fn each_failing_engine_step_is_rolled_back_completely() {
    for op in ["pull", "network", "create", "start", "inspect"] {
        let bed = Bed::new();
        bed.runtime.fail_times(op, Mode::Error, 1);
        let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("{op}: succeeded") };
        assert!(f.rollback.is_complete(), "{op}: {:?}", f.rollback);
        bed.assert_nothing_left();
        let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
        assert_eq!(d.status, DeployStatus::Failed, "{op}");
        assert!(d.error.as_deref().unwrap().contains("injected"), "{op}: {:?}", d.error);
    }
}

#[tokio::test(start_paused = true)]
async fn unhealthy_container_is_removed_and_never_published() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Health);
    assert_eq!(bed.proxy.created.get(), 0, "no host was ever created");
    bed.assert_nothing_left();
}

#[tokio::test]
async fn container_that_exits_fails_the_health_step_with_its_code_and_logs() {
    let bed = Bed::new();
    bed.runtime.exit_at_start.set(Some(2));
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    let msg = f.failed.to_string();
    assert!(msg.contains("exited with code 2") && msg.contains("boom"), "{msg}");
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_host_that_does_not_serve_after_create_is_deleted_with_the_container() {
    let bed = Bed::new();
    bed.proxy.offline.set(true);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(f.failed.to_string().contains("nginx -t failed"), "{}", f.failed);
    bed.assert_nothing_left();
}

/// Issue 11, scenario 11: a switch-back is read back like any switch; one that the proxy does
/// not serve (NPM's `nginx_online: false`) is not reported complete.
#[tokio::test]
async fn a_switch_back_that_does_not_serve_is_not_reported_complete() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    bed.proxy.offline.set(true);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(!f.rollback.is_complete(), "{:?}", f.rollback);
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    bed.assert_consistent();
}

#[tokio::test]
async fn a_proxy_that_refuses_the_create_leaves_nothing() {
    let bed = Bed::new();
    bed.proxy.fail("create", Mode::Error);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Proxy);
    assert!(f.rollback.is_complete());
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_failing_compensation_does_not_stop_the_others_and_is_a_typed_leftover() {
    let bed = Bed::new();
    bed.runtime.fail("remove", Mode::Error);
    bed.proxy.fail("create", Mode::Error);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(
        f.rollback.leftovers,
        vec![Leftover::Container {
            name: "tf-shop-dev-latest-1".into(),
            cause: LeftoverCause::Failed { error: "remove tf-shop-dev-latest-1 failed: injected".into() },
        }]
    );
    let rows = bed.rows();
    assert_eq!(rows[0].status, InstanceStatus::Retiring, "kept for prune, never live");
    let stored = bed.store.leftovers(&Filter::default()).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].deploy_id, Some(f.deploy_id));
    let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
    assert_eq!(d.status, DeployStatus::Failed);
    assert!(d.error.unwrap().contains("rollback incomplete"));
    // Prune finishes the job and forgets the leftover.
    bed.runtime.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_nothing_left();
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
}

/// Issue 11, scenario 4: a redeploy whose switch-back fails keeps the new container (the host
/// points at it); prune repairs the host first and only then removes it.
#[tokio::test]
async fn a_failed_switch_back_keeps_the_container_the_host_points_at_and_prune_repairs_the_host_first() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    // The switch works; finish fails; switching back fails.
    *bed.store.fail.borrow_mut() = Some("finish");
    bed.proxy.fail_after("update", Mode::Error, 1);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    *bed.store.fail.borrow_mut() = None;
    let new_container = format!("tf-shop-dev-latest-{}", f.deploy_id);
    assert!(f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Host { .. })), "{:?}", f.rollback);
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Container { name, .. } if *name == new_container)),
        "{:?}",
        f.rollback
    );
    assert!(bed.runtime.has(&new_container), "a host must never point at a removed container");
    assert_eq!(bed.proxy.host(DOMAIN).unwrap().target.host, new_container);
    // Cron prune: the host goes back to the live instance first, then the container goes.
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_host(DOMAIN, &first.container);
    assert!(!bed.runtime.has(&new_container));
    bed.assert_consistent();
}

#[tokio::test]
async fn redeploy_of_an_occupied_slot_switches_the_host_and_retires_the_old_container() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let second = bed.ok("latest").await;
    bed.assert_host(DOMAIN, &second.container);
    assert_eq!(bed.proxy.created.get(), 1, "switched, not recreated");
    assert!(!bed.runtime.has(&first.container), "old container retired");
    assert_eq!(bed.rows().len(), 1);
    bed.assert_consistent();
}

#[tokio::test(start_paused = true)]
async fn failed_redeploy_switches_nothing_and_keeps_the_old_instance() {
    let mut bed = Bed::new();
    let first = bed.ok("latest").await;
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(_) = bed.deploy("latest", 3).await else { panic!() };
    bed.assert_host(DOMAIN, &first.container);
    let rows = bed.rows();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, InstanceStatus::Live);
    bed.assert_consistent();
}

#[tokio::test]
async fn max_instances_evicts_the_oldest_but_never_the_new_one() {
    let bed = Bed::new();
    let a = bed.deploy("a", 2).await;
    bed.deploy("b", 2).await;
    let c = bed.deploy("c", 2).await;
    let (DeployOutcome::Succeeded(a), DeployOutcome::Succeeded(c)) = (a, c) else { panic!() };
    let tags: Vec<String> = bed.rows().into_iter().map(|i| i.tag).collect();
    assert_eq!(tags, ["b", "c"]);
    assert!(!bed.runtime.has(&a.container));
    assert!(bed.runtime.has(&c.container));
    assert_eq!(bed.proxy.hosts.borrow().len(), 2, "a's host deleted");
    bed.assert_consistent();
}

#[tokio::test]
async fn cancellation_rolls_back_and_marks_the_deploy_interrupted() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let (handle, cancel) = CancelHandle::new();
    let deployer = bed.deployer().with_cancel(cancel);
    let mut req = request("latest", 3);
    req.stage.health.retries = 1000;
    let stop = async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.cancel();
    };
    let (outcome, ()) = tokio::join!(deployer.deploy(&req), stop);
    let DeployOutcome::Failed(f) = outcome.unwrap() else { panic!() };
    assert!(f.interrupted);
    assert!(f.rollback.is_complete());
    bed.assert_nothing_left();
    assert_eq!(bed.store.deploy(f.deploy_id).unwrap().unwrap().status, DeployStatus::Interrupted);
}

/// Issue 11, scenario 11: a second signal stops the rollback; what it did not undo is
/// recorded (never a clean 130), and prune finishes it.
#[tokio::test(start_paused = true)]
async fn a_second_signal_stops_the_rollback_and_records_what_is_left() {
    let bed = Bed::new();
    bed.runtime.fail("remove", Mode::Hang);
    bed.proxy.fail("create", Mode::Error);
    let (handle, cancel) = CancelHandle::new();
    let deployer = bed.deployer().with_cancel(cancel);
    let stop = async {
        tokio::time::sleep(Duration::from_secs(1)).await;
        handle.abort();
    };
    let req = request("latest", 3);
    let (outcome, ()) = tokio::join!(deployer.deploy(&req), stop);
    let DeployOutcome::Failed(f) = outcome.unwrap() else { panic!() };
    assert!(!f.rollback.is_complete());
    assert!(
        f.rollback.leftovers.iter().any(|l| matches!(l, Leftover::Container { cause: LeftoverCause::Abandoned, .. }))
    );
    assert!(!bed.store.leftovers(&Filter::default()).unwrap().is_empty());
    bed.runtime.heal();
    bed.prune().await;
    bed.assert_nothing_left();
}

#[tokio::test]
async fn a_busy_lock_fails_before_anything_is_recorded() {
    let bed = Bed::new();
    let path = bed.dir.path().join("shop.dev.lock");
    let _held = crate::lock::StageLock::acquire(&path, "shop/dev", LockWait::NoWait).await.unwrap();
    let r = bed.deployer().deploy(&request("latest", 3)).await;
    assert!(matches!(r, Err(DeployError::Lock(crate::lock::LockError::Busy { .. }))));
    assert!(bed.store.deploys(&Filter::default(), 10).unwrap().is_empty());
}

/// A container of the same name that tiny-forge did not make (no managed label): the create is
/// refused with a line saying so, and neither the rollback nor prune touches that container.
#[tokio::test]
async fn a_container_name_someone_else_took_is_refused_and_never_removed() {
    let bed = Bed::new();
    bed.runtime.add("tf-shop-dev-latest-1", &[(crate::engine::LABEL_PROJECT, "shop")]);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Create);
    assert!(
        f.failed.to_string().contains("container tf-shop-dev-latest-1 already exists and tiny-forge did not make it"),
        "{}",
        f.failed
    );
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "the rollback removed a container it did not make");
    assert!(bed.rows().is_empty());
    assert!(bed.proxy.hosts.borrow().is_empty());
    bed.prune().await;
    assert!(bed.runtime.has("tf-shop-dev-latest-1"), "prune removed a container tiny-forge did not make");
}

/// Another run's image cleanup takes the image between the pull and the create: the deploy pulls
/// it again, says so, and goes on.
#[tokio::test]
async fn an_image_gone_before_the_create_is_pulled_again_and_the_deploy_goes_on() {
    let bed = Bed::new();
    bed.runtime.images_vanish.set(1);
    let ok = bed.ok("latest").await;
    let calls: Vec<String> = bed
        .runtime
        .calls
        .borrow()
        .iter()
        .filter(|c| c.starts_with("pull ") || c.starts_with("create "))
        .cloned()
        .collect();
    assert_eq!(calls.len(), 4, "pull, create, pull again, create again: {calls:?}");
    let logs = bed.store.logs(ok.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "create" && l.message.contains("pulling it again")), "{logs:?}");
    bed.assert_host(DOMAIN, &ok.container);
    bed.assert_consistent();
}

#[tokio::test]
async fn a_failed_deploy_is_never_reported_as_a_success() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Fail;
    let mut req = request("latest", 3);
    req.stage.health.retries = 1;
    let outcome = bed.deployer().deploy(&req).await.unwrap();
    assert!(matches!(outcome, DeployOutcome::Failed(_)));
    let events = bed.events.0.borrow();
    assert!(!events.iter().any(|e| matches!(e, Event::StepStarted { step: Step::Finish })));
    assert!(events.iter().any(|e| matches!(e, Event::StepFailed { step: Step::Health, .. })));
    let d = bed.store.deploys(&Filter::default(), 1).unwrap();
    assert_ne!(d[0].status, DeployStatus::Succeeded);
    assert_eq!(d[0].url, None);
}
