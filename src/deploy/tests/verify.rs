//! The verify step (issue 24) against the fakes: a window that passes retires the previous
//! instance; failing requests through the proxy, an exit, a restart or an OOM kill switch the
//! host back to the previous instance (never retired yet) through the one undo executor; a
//! slot's first deploy leaves nothing; a switch-back that fails is a leftover `prune` finishes;
//! `--no-verify` skips the step; an engine that cannot be looked at does not fail it.

use super::*;
use crate::engine::Vitals;
use crate::health::VerifyError;

const VERIFY: &str = "verify = { window = \"5s\", interval = \"1s\", failures = 3 }";

fn verified(tag: &str) -> DeployRequest {
    DeployRequest { stage: stage_with("shop", 3, VERIFY), ..request(tag, 3) }
}

impl Bed {
    async fn verified(&self, tag: &str) -> DeployOutcome {
        self.deployer().deploy(&verified(tag)).await.unwrap()
    }

    fn steps_started(&self) -> Vec<Step> {
        self.events
            .0
            .borrow()
            .iter()
            .filter_map(|e| match e {
                Event::StepStarted { step } => Some(*step),
                _ => None,
            })
            .collect()
    }

    /// The slot serves `live` alone: its row live, its container the only one, the host on it.
    #[track_caller]
    fn assert_back_on(&self, live: &str) {
        self.assert_host(DOMAIN, live);
        let names: Vec<String> = self.runtime.containers.borrow().keys().cloned().collect();
        assert_eq!(names, vec![live.to_owned()], "one container left in the slot");
        let rows = self.rows();
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].container_name, live);
        assert_eq!(rows[0].status, InstanceStatus::Live);
        self.assert_consistent();
    }
}

#[tokio::test(start_paused = true)]
async fn a_window_that_passes_then_retires_the_previous_instance() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
    let begin = tokio::time::Instant::now();
    let DeployOutcome::Succeeded(second) = bed.verified("latest").await else { panic!("second failed") };
    assert!(begin.elapsed() >= Duration::from_secs(4), "watched for the window: {:?}", begin.elapsed());
    assert!(!bed.runtime.has(&first.container), "the previous instance is retired after the window");
    bed.assert_back_on(&second.container);
    let started = bed.steps_started();
    let at = |s: Step| started.iter().rposition(|x| *x == s).unwrap();
    assert!(at(Step::Proxy) < at(Step::Verify) && at(Step::Verify) < at(Step::Finish), "{started:?}");
    assert!(at(Step::Verify) < at(Step::Retire));
    let logs = bed.store.logs(second.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "verify" && l.message.contains("verified for 5s")), "{logs:?}");
}

#[tokio::test(start_paused = true)]
async fn failing_requests_through_the_proxy_switch_back_to_the_previous_instance() {
    for probe in [FakeProbe::Route500, FakeProbe::RouteRefused, FakeProbe::RouteHangs] {
        let mut bed = Bed::new();
        let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
        bed.probe = probe;
        let DeployOutcome::Failed(f) = bed.verified("latest").await else { panic!("succeeded") };
        assert_eq!(f.failed.step, Step::Verify);
        assert!(f.rollback.is_complete(), "{:?}", f.rollback);
        let StepError::Verify(VerifyError::Failing { answers, url, .. }) = &f.failed.cause else {
            panic!("{:?}", f.failed)
        };
        assert_eq!(answers.len(), 3, "three in a row");
        assert_eq!(url, &format!("http://{DOMAIN}/"));
        bed.assert_back_on(&first.container);
        let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
        assert_eq!(d.status, DeployStatus::Failed);
        let error = d.error.unwrap();
        assert!(error.starts_with("verify failed: 3 requests in a row"), "{error}");
        // The evidence: each failing answer is in the deploy's log.
        let logs = bed.store.logs(f.deploy_id, 0).unwrap();
        assert_eq!(logs.iter().filter(|l| l.step == "verify" && l.message.contains("answered")).count(), 3);
    }
}

#[tokio::test(start_paused = true)]
async fn an_exit_after_the_cut_over_switches_back_at_once_with_code_and_logs() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
    // Healthy when the window opens, exited with code 3 two looks later.
    bed.runtime.sickens.set(Some((2, Vitals { running: false, exit_code: Some(3), ..Vitals::default() })));
    let begin = tokio::time::Instant::now();
    let DeployOutcome::Failed(f) = bed.verified("latest").await else { panic!("succeeded") };
    assert!(begin.elapsed() < Duration::from_secs(4), "not the whole window: {:?}", begin.elapsed());
    let StepError::Verify(e @ VerifyError::Crashed { code: Some(3), .. }) = &f.failed.cause else {
        panic!("{:?}", f.failed)
    };
    assert_eq!(e.logs(), ["boom"]);
    assert!(f.failed.to_string().contains("exited with code 3"), "{}", f.failed);
    bed.assert_back_on(&first.container);
}

#[tokio::test(start_paused = true)]
async fn a_restart_or_an_oom_kill_fails_the_step_too() {
    for (sick, says) in [
        (Vitals { running: true, restarts: 1, exit_code: None, oom_killed: false }, "restarted"),
        (Vitals { running: false, restarts: 0, exit_code: Some(137), oom_killed: true }, "lack of memory"),
    ] {
        let bed = Bed::new();
        let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
        bed.runtime.sickens.set(Some((1, sick)));
        let DeployOutcome::Failed(f) = bed.verified("latest").await else { panic!("succeeded") };
        assert!(f.failed.to_string().contains(says), "{}", f.failed);
        bed.assert_back_on(&first.container);
    }
}

#[tokio::test(start_paused = true)]
async fn a_first_deploy_that_fails_verify_leaves_nothing() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Route500;
    let DeployOutcome::Failed(f) = bed.verified("latest").await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Verify);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.proxy.created.get(), 1, "the host was published, then deleted");
    bed.assert_nothing_left();
}

#[tokio::test(start_paused = true)]
async fn a_switch_back_the_proxy_refuses_is_a_leftover_prune_finishes() {
    let mut bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
    bed.probe = FakeProbe::Route500;
    // The cut-over's update works; the switch-back's fails.
    bed.proxy.fail_after("update", Mode::Error, 1);
    let DeployOutcome::Failed(f) = bed.verified("latest").await else { panic!("succeeded") };
    assert_eq!(f.failed.step, Step::Verify);
    assert!(!f.rollback.is_complete(), "exit 3: {:?}", f.rollback);
    assert!(bed.runtime.has(&first.container), "the previous instance is never retired by a failed verify");
    bed.proxy.heal();
    let r = bed.prune().await;
    assert!(r.failures.is_empty(), "{r:?}");
    bed.assert_back_on(&first.container);
}

#[tokio::test(start_paused = true)]
async fn no_verify_skips_the_step() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Route500;
    let req = DeployRequest { verify: false, ..verified("latest") };
    let DeployOutcome::Succeeded(ok) = bed.deployer().deploy(&req).await.unwrap() else { panic!("failed") };
    assert!(!bed.steps_started().contains(&Step::Verify));
    bed.assert_host(DOMAIN, &ok.container);
}

#[tokio::test(start_paused = true)]
async fn a_stage_without_verify_has_no_verify_step() {
    let mut bed = Bed::new();
    bed.probe = FakeProbe::Route500;
    bed.ok("latest").await;
    assert!(!bed.steps_started().contains(&Step::Verify));
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_cannot_be_looked_at_does_not_fail_the_window() {
    let bed = Bed::new();
    let DeployOutcome::Succeeded(first) = bed.verified("latest").await else { panic!("first failed") };
    bed.runtime.fail("vitals", Mode::Error);
    let outcome = bed.verified("latest").await;
    bed.runtime.heal();
    let DeployOutcome::Succeeded(second) = outcome else { panic!("failed") };
    assert!(!bed.runtime.has(&first.container));
    let logs = bed.store.logs(second.deploy_id, 0).unwrap();
    assert!(logs.iter().any(|l| l.step == "verify" && l.message.contains("cannot look at")), "{logs:?}");
}

/// Issue 24, Swarm: a failed verify takes the service back to its previous spec (Swarm's own
/// rollback, through the undo executor), and the deploy ends only once that rollback completed.
#[tokio::test(start_paused = true)]
async fn swarm_a_failed_verify_takes_the_service_back_to_the_previous_digest() {
    let mut bed = Bed::new();
    let swarm_verified = |digest: &str| DeployRequest {
        stage: stage_with("shop", 3, &format!("engine = {{ kind = \"swarm\" }}\n{VERIFY}")),
        ..swarm_request(digest)
    };
    let DeployOutcome::Succeeded(_) = bed.deployer().deploy(&swarm_verified("sha256:aaa")).await.unwrap() else {
        panic!("first failed")
    };
    let before = bed.rows();
    bed.probe = FakeProbe::Route500;
    let DeployOutcome::Failed(f) = bed.deployer().deploy(&swarm_verified("sha256:bbb")).await.unwrap() else {
        panic!("succeeded")
    };
    assert_eq!(f.failed.step, Step::Verify);
    assert!(f.rollback.is_complete(), "{:?}", f.rollback);
    assert_eq!(bed.service_image().as_deref(), Some("shop@sha256:aaa"), "the previous digest serves again");
    assert_eq!(bed.rows().iter().map(|r| r.id).collect::<Vec<_>>(), before.iter().map(|r| r.id).collect::<Vec<_>>());
    bed.assert_host(DOMAIN, SERVICE);
}
