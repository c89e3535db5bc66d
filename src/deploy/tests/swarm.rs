//! The swarm engine: a slot is one service that each deploy updates in place. Swarm's own
//! rollback, a task that fails, our probe taking an update back, and the plan of a redeploy.

use super::*;

#[tokio::test]
async fn swarm_a_new_slot_is_a_service_and_a_redeploy_updates_it_in_place() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.swarm_deploy("sha256:aaa").await else { panic!("first failed") };
    assert_eq!(first.container, SERVICE);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"));
    let labels = bed.runtime.services.borrow()[SERVICE].labels.clone();
    assert_eq!(labels.get(crate::engine::LABEL_SLOT).map(String::as_str), Some("shop/dev/latest"));
    bed.assert_host(DOMAIN, SERVICE);
    assert!(bed.runtime.containers.borrow().is_empty(), "no container of our own on swarm");

    let DeployOutcome::Succeeded(second) = bed.swarm_deploy("sha256:bbb").await else { panic!("update failed") };
    assert_eq!(second.container, SERVICE);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:bbb"));
    assert_eq!(bed.runtime.services.borrow()[SERVICE].update, Some(crate::engine::UpdateState::Completed));
    let rows = bed.rows();
    assert_eq!(rows.len(), 1, "the replaced row goes, the service stays: {rows:?}");
    assert_eq!((rows[0].deploy_id, rows[0].status), (second.deploy_id, InstanceStatus::Live));
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_an_update_swarm_rolled_back_is_a_failed_deploy_and_the_slot_keeps_serving() {
    let bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let before = bed.rows();
    bed.runtime.swarm.set(crate::testing::SwarmBehaviour::RollsBack);
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:bbb").await else {
        panic!("a rolled-back update succeeded")
    };
    assert_eq!(f.failed.step, Step::Health);
    assert!(f.failed.to_string().contains("did not complete the update"), "{}", f.failed);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"));
    assert_eq!(bed.rows().iter().map(|r| r.id).collect::<Vec<_>>(), before.iter().map(|r| r.id).collect::<Vec<_>>());
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_a_task_that_fails_ends_the_deploy_with_its_exit_code_and_a_new_service_goes() {
    let bed = Bed::new();
    bed.runtime.swarm.set(crate::testing::SwarmBehaviour::TaskFails(3));
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:aaa").await else { panic!("succeeded") };
    assert!(
        matches!(&f.failed.cause, StepError::Health(crate::health::HealthError::Exited { code: 3, .. })),
        "{}",
        f.failed
    );
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert!(bed.runtime.services.borrow().is_empty(), "the service it created is removed");
    bed.assert_nothing_left();
}

#[tokio::test(start_paused = true)]
async fn swarm_an_update_whose_tasks_fail_our_probe_is_taken_back_to_the_previous_spec() {
    let mut bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let before = bed.rows();
    bed.probe = FakeProbe::Fail;
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:bbb").await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Health);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"), "Swarm's rollback, asked for by the undo");
    assert!(bed.runtime.calls.borrow().iter().any(|c| c == &format!("rollback_service {SERVICE}")));
    assert_eq!(bed.rows().iter().map(|r| r.id).collect::<Vec<_>>(), before.iter().map(|r| r.id).collect::<Vec<_>>());
    bed.assert_host(DOMAIN, SERVICE);
}

#[tokio::test]
async fn swarm_the_plan_of_a_redeploy_keeps_the_host_on_the_service_that_swarm_updates() {
    let bed = Bed::new();
    bed.swarm_deploy("sha256:aaa").await;
    let plan = bed.deployer().plan_deploy(&swarm_request("sha256:bbb")).await.unwrap();
    assert_eq!(plan.running.as_deref(), Some(SERVICE));
    assert!(plan.proxy.starts_with(&format!("keep proxy host {DOMAIN} on service {SERVICE}")), "{}", plan.proxy);
    assert!(!plan.unchanged);
}
