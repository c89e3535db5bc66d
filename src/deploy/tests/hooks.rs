//! Issue 15: the release phase, the slot hooks (`on_create`, `on_remove`) and the instance's
//! own env.

use super::*;

fn created(bed: &Bed) -> Vec<String> {
    bed.runtime.calls.borrow().iter().filter(|c| c.starts_with("create ")).cloned().collect()
}

/// Issue 15: the release runs from the digest before the instance is created, `on_create` only
/// on a slot's first deploy, both with the instance's env; their containers never stay.
#[tokio::test]
async fn release_runs_before_the_instance_and_on_create_only_on_a_slots_first_deploy() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(true, true, false);
    let DeployOutcome::Succeeded(first) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let names = created(&bed);
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(names[0].ends_with("-release") && names[1].ends_with("-on-create"), "{names:?}");
    assert_eq!(names[2], format!("create {}", first.container));
    assert_eq!(bed.runtime.containers.borrow().len(), 1, "one-offs are gone");
    let env = bed.runtime.containers.borrow()[&first.container].labels.clone();
    assert!(env.contains_key(crate::engine::LABEL_STATE));
    let logs = bed.store.logs(first.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "release" && l.message == "boom"), "output streams into the log");
    // A redeploy runs the release, not on_create.
    let DeployOutcome::Succeeded(_) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    let names = created(&bed);
    assert_eq!(names.iter().filter(|n| n.ends_with("-on-create")).count(), 1, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with("-release")).count(), 2, "{names:?}");
    bed.assert_consistent();
}

#[tokio::test(start_paused = true)]
async fn a_failing_or_hanging_release_fails_the_deploy_and_leaves_nothing() {
    for hang in [false, true] {
        let bed = Bed::new();
        if hang {
            bed.runtime.one_off_hangs.set(true);
        } else {
            bed.runtime.one_off_code.set(4);
        }
        let mut req = request("latest", 3);
        req.stage = with_hooks(true, false, false);
        let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
        assert_eq!(f.failed.step, Step::Release);
        let msg = f.failed.to_string();
        let expected = if hang { "did not finish within 30s" } else { "exited with code 4" };
        assert!(msg.contains(expected) && msg.contains("boom"), "{msg}");
        assert!(f.rollback.is_complete(), "{:?}", f.rollback);
        bed.assert_nothing_left();
        assert!(!created(&bed).iter().any(|c| c.ends_with(&format!("-{}", 1))), "no instance was created");
    }
}

/// Issue 15: the instance knows itself (TF_* env), and `{slot}`/`{url}` are substituted.
#[tokio::test]
async fn the_instance_env_holds_its_own_names_and_substitutions() {
    let stage = with_hooks(false, false, false);
    let tag = Tag::new("Feature/Login").unwrap_or_else(|_| Tag::new("Feature.Login").unwrap());
    let env: std::collections::BTreeMap<String, String> =
        stage.env_for(&tag, "https://x.example").into_iter().collect();
    assert_eq!(env["TF_PROJECT"], "shop");
    assert_eq!(env["TF_TAG"], "Feature.Login");
    assert_eq!(env["TF_URL"], "https://x.example");
    assert_eq!(env["APP_URL"], "https://x.example");
    let slot = &env["TF_SLOT"];
    assert!(slot.starts_with("shop-dev-feature-login"), "{slot}");
    assert!(slot.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{slot}");
    assert_eq!(env["DATABASE_URL"], format!("postgres://db/{slot}"));
    assert_eq!(env["TF_HOST"], stage.host_name(&tag));
}

/// Issue 15: a failed `on_remove` is reported (a leftover, exit 3 for `remove`), the instance
/// still goes, and prune runs the hook again.
#[tokio::test]
async fn a_failed_on_remove_is_a_leftover_the_instance_still_goes_and_prune_retries_it() {
    let bed = Bed::new();
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, false, true);
    bed.deployer().deploy(&req).await.unwrap();
    bed.runtime.one_off_code.set(1);
    let r = bed.deployer().remove(&req.stage, &req.tag, LockWait::NoWait).await.unwrap();
    assert!(matches!(r.leftovers.as_slice(), [Leftover::Hook { hook, .. }] if hook == "on_remove"), "{r:?}");
    assert!(bed.rows().is_empty(), "the instance went anyway");
    assert_eq!(bed.runtime.containers.borrow().len(), 0, "no instance, no one-off left");
    bed.runtime.one_off_code.set(0);
    let prune = prune_of(req.stage.clone());
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    assert!(done.actions.iter().any(|a| a.contains("on_remove")), "{done:?}");
    assert!(bed.store.leftovers(&Filter::default()).unwrap().is_empty());
}

/// Adversarial review M4: an `on_create` that fails after doing part of its work (created the
/// database, then the restore failed) is undone by the slot's `on_remove`, so the next first
/// deploy of the slot starts clean. Here the hook fails too, so it is a leftover prune retries.
#[tokio::test]
async fn a_failed_on_create_is_undone_by_on_remove() {
    let bed = Bed::new();
    bed.runtime.one_off_code.set(4);
    let mut req = request("pr-7", 3);
    req.stage = with_hooks(false, true, true);
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&req).await.unwrap() else { panic!() };
    assert_eq!(f.failed.step, Step::OnCreate);
    let names = created(&bed);
    assert!(names.iter().any(|n| n.ends_with("-on-remove")), "the rollback ran on_remove: {names:?}");
    assert!(
        matches!(f.rollback.leftovers.as_slice(), [Leftover::Hook { hook, .. }] if hook == "on_remove"),
        "{:?}",
        f.rollback
    );
    bed.runtime.one_off_code.set(0);
    let prune = prune_of(req.stage.clone());
    let done = bed.deployer().prune(&prune).await.unwrap();
    assert!(done.failures.is_empty() && done.leftovers.is_empty(), "{done:?}");
    assert!(done.actions.iter().any(|a| a.contains("on_remove")), "{done:?}");
    bed.assert_nothing_left();
}
