//! After a deploy: `rollback` (never back to a deploy rolled back from), `remove` (host first),
//! and a switch-back that uses the old instance's own port.

use super::*;

/// Issue 11, scenario 8: each instance keeps its port; a switch-back after a release that
/// changed `port` uses the old instance's.
#[tokio::test]
async fn a_switch_back_uses_the_old_instances_own_port() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let mut req = request("latest", 3);
    req.stage.port = 9090;
    *bed.store.fail.borrow_mut() = Some("finish");
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    let h = bed.proxy.host(DOMAIN).unwrap();
    assert_eq!(h.target, Target { host: first.container, port: 8080 });
}

/// Issue 11, scenario 10: `rollback` twice does not return to the version just rolled back
/// from; `--to` still can.
#[tokio::test]
async fn a_deploy_that_was_rolled_back_is_never_an_automatic_rollback_target() {
    let bed = Bed::new();
    let v1 = bed.ok("latest").await;
    // v2 of the same tag: another digest.
    let mut req = request("latest", 3);
    req.image_override = Some("shop@sha256:v2".into());
    let DeployOutcome::Succeeded(v2) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let st = stage(3);
    let tag = Tag::new("latest").unwrap();
    let d = bed.deployer();
    let back = d.rollback_source(&st, &tag, None).unwrap();
    assert_eq!(back.id, v1.deploy_id);
    let mut rb = request("latest", 3);
    rb.trigger = Trigger::Rollback;
    rb.image_override = Some("shop@sha256:feed".into());
    assert!(matches!(d.deploy(&rb).await.unwrap(), DeployOutcome::Succeeded(_)));
    assert_eq!(bed.store.deploy(v2.deploy_id).unwrap().unwrap().status, DeployStatus::RolledBack);
    assert!(matches!(d.rollback_source(&st, &tag, None), Err(RollbackError::Nothing { .. })));
    assert_eq!(d.rollback_source(&st, &tag, Some(v2.deploy_id)).unwrap().id, v2.deploy_id);
}

#[tokio::test]
async fn remove_takes_the_slot_down_host_first() {
    let bed = Bed::new();
    bed.ok("latest").await;
    let r = bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    assert!(r.leftovers.is_empty(), "{r:?}");
    bed.assert_nothing_left();
    let calls = bed.proxy.calls.borrow().clone();
    let delete = calls.iter().position(|c| c.starts_with("delete")).unwrap();
    let removed = bed.runtime.calls.borrow().iter().any(|c| c.starts_with("remove"));
    assert!(removed && delete > 0);
    let again = bed.deployer().remove(&stage(3), &Tag::new("latest").unwrap(), LockWait::NoWait).await.unwrap();
    assert_eq!(again.deploy_id, None, "nothing to remove the second time");
}
