//! Every step by every fault mode (error, timeout, hang, act-then-fail): the rollback is
//! complete, or says what it kept and `prune` finishes; a retire that fails never undoes a
//! healthy deploy; a compensation that hangs is cut off.

use super::*;

/// Where a fault is injected, and the step that must be named as failed.
#[derive(Debug, Clone, Copy)]
enum Site {
    Runtime(&'static str),
    Proxy(&'static str),
    /// Redeploy: the proxy switch of an occupied slot.
    Switch(&'static str),
    Store(&'static str),
    Probe,
}

/// Every step × {error, timeout, hang, act-then-fail}: each ends with the outside world as it
/// was (nothing new, the old instance serving) and the failed step named in history. The
/// rollback is complete, except where a proxy change got no answer (it may still land): then
/// it says so (exit 3) and keeps what that change touches, and `prune` finishes. Timeouts take
/// their time and hangs are cut by the step bounds, on a paused clock.
#[tokio::test(start_paused = true)]
async fn fault_matrix_every_step_by_every_mode_rolls_back_completely() {
    let sites = [
        (Site::Runtime("pull"), "pull"),
        (Site::Runtime("network"), "network"),
        (Site::Runtime("create"), "create"),
        (Site::Runtime("start"), "start"),
        (Site::Runtime("inspect"), "health"),
        (Site::Proxy("find"), "proxy"),
        (Site::Proxy("create"), "proxy"),
        (Site::Switch("update"), "proxy"),
        (Site::Switch("find"), "proxy"),
        (Site::Store("finish"), "finish"),
        (Site::Probe, "health"),
    ];
    for mode in [Mode::Error, Mode::Timeout, Mode::Hang, Mode::ActThenFail] {
        for (site, step_name) in sites {
            let case = format!("{site:?} {mode:?}");
            let mut bed = Bed::new();
            let first = match site {
                Site::Switch(_) | Site::Store(_) => Some(bed.ok("latest").await),
                _ => None,
            };
            match site {
                Site::Runtime(op) => bed.runtime.fail_times(op, mode, 1),
                Site::Proxy(op) | Site::Switch(op) => bed.proxy.fail_times(op, mode, 1),
                Site::Store(op) => *bed.store.fail.borrow_mut() = Some(op),
                Site::Probe => {
                    if mode != Mode::Hang {
                        continue;
                    }
                    bed.probe = FakeProbe::Hang;
                }
            }
            if let (Site::Store(_), Mode::Timeout | Mode::Hang | Mode::ActThenFail) = (site, mode) {
                continue; // the state file fails at once or not at all
            }
            let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!("{case}: succeeded") };
            assert_eq!(f.failed.step.as_str(), step_name, "{case}: {}", f.failed);
            assert!(!f.interrupted, "{case}");
            let unanswered_change = matches!(site, Site::Proxy("create") | Site::Switch("update"))
                && matches!(mode, Mode::Timeout | Mode::Hang);
            if unanswered_change {
                assert!(!f.rollback.is_complete(), "{case}: an unanswered change may still land");
                assert!(
                    f.rollback.leftovers.iter().all(|l| l.to_string().contains("may still land")),
                    "{case}: {:?}",
                    f.rollback
                );
                bed.proxy.heal();
                let r = bed.prune().await;
                assert!(r.failures.is_empty(), "{case}: {r:?}");
            } else {
                assert!(f.rollback.is_complete(), "{case}: {:?}", f.rollback);
            }
            match &first {
                None => bed.assert_nothing_left(),
                Some(first) => {
                    bed.assert_host(DOMAIN, &first.container);
                    assert_eq!(bed.runtime.containers.borrow().len(), 1, "{case}");
                    bed.assert_consistent();
                }
            }
            let d = bed.store.deploy(f.deploy_id).unwrap().unwrap();
            assert_eq!(d.status, DeployStatus::Failed, "{case}");
            assert!(d.error.as_deref().unwrap().starts_with(&format!("{step_name} failed")), "{case}: {:?}", d.error);
            *bed.store.fail.borrow_mut() = None;
        }
    }
}

/// The retire step after a healthy deploy: its failures never undo the deploy; they are
/// warnings and leftovers, and prune finishes them.
#[tokio::test(start_paused = true)]
async fn a_retire_that_fails_keeps_the_deploy_and_leaves_the_old_container_to_prune() {
    for mode in [Mode::Error, Mode::Timeout, Mode::Hang, Mode::ActThenFail] {
        let bed = Bed::new();
        let first = bed.ok("latest").await;
        bed.runtime.fail_times("remove", mode, 1);
        let second = bed.ok("latest").await;
        bed.assert_host(DOMAIN, &second.container);
        if mode != Mode::ActThenFail {
            assert!(!second.leftovers.is_empty(), "{mode:?}");
            assert!(bed.runtime.has(&first.container), "{mode:?}");
        }
        bed.runtime.heal();
        let r = bed.prune().await;
        assert!(r.failures.is_empty(), "{mode:?}: {r:?}");
        assert!(!bed.runtime.has(&first.container), "{mode:?}");
        bed.assert_consistent();
    }
}

#[tokio::test(start_paused = true)]
async fn a_compensation_that_hangs_is_cut_off_and_reported_as_a_leftover() {
    let bed = Bed::new();
    bed.proxy.fail("create", Mode::Error);
    bed.runtime.fail("remove", Mode::Hang);
    let DeployOutcome::Failed(f) = bed.deploy("latest", 3).await else { panic!() };
    assert!(!f.rollback.is_complete());
    assert!(f.rollback.leftovers[0].to_string().contains("no answer within"), "{:?}", f.rollback);
    assert!(FAKE_TIMEOUT < Duration::from_secs(120));
}
