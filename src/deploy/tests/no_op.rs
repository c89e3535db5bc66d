//! Review F6 and F15: a redeploy is a no-op only when the instance really is what this deploy
//! would make: every input of its spec (the URL and host name it learns in `TF_URL`/`TF_HOST`
//! included) and, on Swarm, the service's spec as the engine holds it.

use super::*;

/// A new domain changes the slot's host name and the instance's `TF_HOST`/`TF_URL`: the
/// redeploy makes a new instance behind the new name, and the host under the old name goes.
#[tokio::test]
async fn a_new_domain_redeploys_and_the_old_host_name_goes() {
    let bed = Bed::new();
    let first = bed.ok("latest").await;
    let mut req = request("latest", 3);
    req.force = false;
    req.stage.domain = "staging.example.com".into();
    let DeployOutcome::Succeeded(moved) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(!moved.unchanged, "a new host name is a change");
    let new_host = "stage-dev-shop.staging.example.com";
    assert_eq!(moved.url, format!("http://{new_host}"));
    assert!(bed.proxy.host(DOMAIN).is_none(), "the host under the old name went with the old instance");
    assert_eq!(bed.proxy.host(new_host).map(|h| h.target.host), Some(moved.container.clone()));
    assert!(!bed.runtime.has(&first.container));
    let DeployOutcome::Succeeded(again) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(again.unchanged, "and then nothing changed");
}

/// `{url}` in the env follows the proxy's URL: the hash is made of the env the instance gets.
#[tokio::test]
async fn the_no_op_hash_is_made_of_the_env_after_substitution() {
    let stage = with_hooks(false, false, false);
    let slot = Slot { project: stage.project.clone(), stage: stage.stage.clone(), tag: Tag::new("latest").unwrap() };
    let host = stage.host_name(&slot.tag);
    let a = super::super::spec::hash(&stage, &slot, "s", "http://x", &host);
    assert_eq!(a, super::super::spec::hash(&stage, &slot, "s", "http://x", &host), "stable");
    assert_ne!(a, super::super::spec::hash(&stage, &slot, "s", "https://x", &host), "TF_URL and {{url}}");
    assert_ne!(a, super::super::spec::hash(&stage, &slot, "s", "http://x", "other.example"), "the host");
}

/// Review F15: someone rolled the service back by hand; a deploy of what the live row says
/// runs is not "nothing to deploy".
#[tokio::test]
async fn swarm_a_service_whose_spec_drifted_is_deployed_again() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(_) = bed.swarm_deploy("sha256:aaa").await else { panic!("failed") };
    let mut req = swarm_request("sha256:aaa");
    req.force = false;
    let DeployOutcome::Succeeded(same) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(same.unchanged);
    // `docker service update --image …@sha256:zzz` behind tiny-forge's back.
    bed.runtime.services.borrow_mut().get_mut(SERVICE).unwrap().image = "shop@sha256:zzz".into();
    let DeployOutcome::Succeeded(fixed) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(!fixed.unchanged, "the drift is repaired by a deploy");
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"));
    bed.assert_host(DOMAIN, SERVICE);
}

/// Review F10: a new service whose task no node can take fails within its bound, with the
/// scheduler's reason, and leaves nothing.
#[tokio::test(start_paused = true)]
async fn swarm_a_service_no_node_can_run_fails_with_the_scheduler_s_reason() {
    let bed = Bed::new();
    bed.runtime.swarm.set(crate::testing::SwarmBehaviour::Unplaceable);
    let DeployOutcome::Failed(f) = bed.swarm_deploy("sha256:aaa").await else { panic!("succeeded") };
    let msg = f.failed.to_string();
    assert!(msg.contains("cannot place") && msg.contains("no suitable node"), "{msg}");
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    bed.assert_nothing_left();
    assert!(bed.runtime.services.borrow().is_empty());
}
