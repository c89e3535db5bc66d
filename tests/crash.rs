//! Crash safety and concurrency: signals and kill -9 at every step boundary, a second signal
//! during rollback, parallel deploys of one slot, lock waits.

use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::npm::NpmDouble;
use crate::support::{Run, Sandbox, run};

const PW: &str = "crash-pw";

fn npm_sandbox(prefix: &str) -> (Sandbox, NpmDouble) {
    let sb = Sandbox::new(prefix);
    let npm = NpmDouble::start("ops@example.com", PW);
    let tables = crate::support::npm_proxy(&npm.url(), "ops@example.com", "TF_TEST_NPM_PASSWORD");
    sb.config_with(&tables, "", "");
    sb.watch(crate::support::Watch::Npm(npm.view()));
    (sb, npm)
}

fn signal(sig: &str, pid: u32) {
    run(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
}

/// Stops a deploy right after `step` with `sig`, recovers (TERM: the deploy's own rollback;
/// KILL: `prune`), and checks that nothing of it is left.
fn stop_at(step: &str, sig: &str) {
    let (sb, npm) = npm_sandbox(&format!("k{}{}", &step[..3], &sig[..1].to_lowercase()));
    let pause = format!("{step}:60s");
    let mut child = sb.spawn_tf(
        &["deploy", &sb.project, "dev"],
        &[("TINY_FORGE_TEST_PAUSE_AFTER", &pause), ("TF_TEST_NPM_PASSWORD", PW)],
    );
    sb.wait_for_log(&mut child, "pausing");
    signal(sig, child.id());
    let out = Run::from(child.wait_with_output().unwrap());
    let case = format!("{sig} after {step}");
    if sig == "TERM" {
        assert_eq!(out.code, 130, "{case}: {}", out.stderr);
        assert_eq!(sb.deploys()[0].status.as_str(), "interrupted", "{case}");
    } else {
        let prune = Run::from(sb.tf(&["prune"]).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap());
        assert_eq!(prune.code, 0, "{case}: {}", prune.stderr);
        assert_eq!(sb.deploys()[0].status.as_str(), "interrupted", "{case}: recovered by prune");
    }
    assert_eq!(sb.containers(), Vec::<String>::new(), "{case}: containers left");
    assert_eq!(sb.instances(), Vec::new(), "{case}: instance rows left");
    assert_eq!(npm.hosts(), Vec::<serde_json::Value>::new(), "{case}: proxy hosts left");
    // The rest: the network, leftovers, a deploy still marked running.
    sb.assert_nothing_left();
}

#[test]
fn stopped_at_every_step_boundary_by_term_or_kill_nothing_is_left() {
    let cases: Vec<(&str, &str)> = ["pull", "network", "create", "start", "health", "proxy"]
        .into_iter()
        .flat_map(|step| [(step, "TERM"), (step, "KILL")])
        .collect();
    // Two at a time: each case waits on its own processes.
    for pair in cases.chunks(4) {
        let handles: Vec<_> = pair.iter().map(|&(step, sig)| std::thread::spawn(move || stop_at(step, sig))).collect();
        for h in handles {
            h.join().unwrap();
        }
    }
}

/// A second signal stops the rollback at once: exit 3 (never 130, which says "rolled back"),
/// with what is left listed and recorded, and `prune` finishes the job.
#[test]
fn a_second_signal_during_rollback_exits_3_with_what_is_left_and_prune_finishes_the_job() {
    let (sb, npm) = npm_sandbox("twosig");
    let mut child = sb.spawn_tf(
        &["deploy", &sb.project, "dev"],
        &[("TINY_FORGE_TEST_PAUSE_AFTER", "proxy:60s,rollback:60s"), ("TF_TEST_NPM_PASSWORD", PW)],
    );
    sb.wait_for_log(&mut child, "pausing 1m");
    signal("TERM", child.id());
    sb.wait_for_log(&mut child, "rollback started");
    signal("INT", child.id());
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(3).stderr_has("not attempted: a second signal stopped the rollback");
    assert_eq!(sb.containers().len(), 1, "the second signal stopped the rollback");
    assert_eq!(npm.hosts().len(), 1);
    let d = &sb.deploys()[0];
    assert_eq!(d.status.as_str(), "interrupted");
    assert_eq!(d.leftovers.len(), 2, "the host and the container: {:?}", d.leftovers);
    assert_eq!(tiny_forge::Store::leftovers(&sb.store(), &tiny_forge::store::Filter::default()).unwrap().len(), 2);
    let list = sb.run_tf(&["list"]);
    assert!(list.stdout.contains("LEFT BEHIND"), "{}", list.stdout);
    let prune = Run::from(sb.tf(&["prune"]).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap());
    prune.code(0);
    assert!(prune.stdout.contains("left behind by an incomplete rollback"), "{}", prune.stdout);
    sb.assert_nothing_left();
    assert!(npm.hosts().is_empty());
}

#[test]
fn ten_parallel_deploys_of_one_slot_run_one_after_another() {
    let sb = Sandbox::new("par10");
    sb.config("", "");
    let children: Vec<_> = (0..10).map(|_| sb.spawn_tf(&["-q", "deploy", &sb.project, "dev"], &[])).collect();
    for c in children {
        Run::from(c.wait_with_output().unwrap()).code(0);
    }
    assert_eq!(sb.containers().len(), 1, "exactly one instance serves");
    let rows = sb.instances();
    assert_eq!(rows.len(), 1);
    assert_eq!(crate::support::http_get(rows[0].url.as_deref().unwrap()).0, 200);
    assert_eq!(sb.store().integrity_check().unwrap(), "ok");
    let deploys = sb.deploys();
    assert_eq!(deploys.len(), 10);
    assert!(deploys.iter().all(|d| d.status.as_str() == "succeeded"), "{deploys:?}");
}

#[test]
fn a_held_lock_means_exit_4_with_no_wait_or_after_wait_and_other_stages_go_on() {
    let sb = Sandbox::new("lockw");
    sb.config("", "[projects.PROJECT.stages.qa]\ndefault_tag = \"v2\"\n".replace("PROJECT", &sb.project).as_str());
    let mut holder = sb.spawn_tf(&["-q", "deploy", &sb.project, "dev"], &[("TINY_FORGE_TEST_PAUSE_AFTER", "pull:60s")]);
    sb.wait_for_log(&mut holder, "pausing");
    let busy = sb.run_tf(&["deploy", &sb.project, "dev", "--no-wait"]);
    busy.code(4);
    assert!(busy.error_line().contains("locked by another tiny-forge run"), "{}", busy.stderr);
    // It waited before it gave up (a lower bound only; the holder pauses for a minute, so the
    // upper one only says it did not wait for the holder).
    let t0 = Instant::now();
    let waited = sb.run_tf(&["deploy", &sb.project, "dev", "--wait", "300ms"]);
    let took = t0.elapsed();
    waited.code(4);
    assert!(waited.error_line().contains("locked by another tiny-forge run"), "{}", waited.stderr);
    assert!(took >= Duration::from_millis(300), "gave up after {took:?}, before its 300ms wait");
    assert!(took < Duration::from_secs(30), "waited {took:?}, as if for the holder");
    // Another stage of the same project is not blocked.
    sb.run_tf(&["-q", "deploy", &sb.project, "qa"]).code(0);
    signal("TERM", holder.id());
    Run::from(holder.wait_with_output().unwrap()).code(130);
    assert_eq!(sb.deploys().iter().filter(|d| d.status.as_str() == "running").count(), 0);
}

/// Issue 24: kill -9 during the verify window (the new instance serves, the previous one still
/// runs, the deploy is still `running`). The next command (here `prune`) recovers it without
/// losing the slot: the host goes back to the previous instance, which serves, and the new
/// instance goes.
#[test]
fn kill_9_during_the_verify_window_keeps_the_slot_on_the_previous_instance() {
    let caddy = crate::support::caddy::Caddy::start();
    let sb = Sandbox::new("kvfy");
    sb.watch(crate::support::Watch::Caddy(caddy.admin_url()));
    let configure = |message: &str| {
        let tables = format!(
            "[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n\n[verify]\nwindow = \"60s\"\nconnect = \"127.0.0.1:{}\"\n",
            caddy.admin_url(),
            caddy.http_port
        );
        sb.config_with(&tables, "", &format!("env = {{ MESSAGE = \"{message}\" }}"));
    };
    configure("one");
    sb.run_tf(&["deploy", "--no-verify", &sb.project, "dev"]).code(0);
    let first = sb.instances();
    configure("two");
    let mut child = sb.spawn_tf(&["deploy", &sb.project, "dev"], &[]);
    sb.wait_for_log(&mut child, "through the proxy");
    assert_eq!(caddy.get(&sb.host(None)), (200, "two\n".to_owned()), "cut over, in the window");
    signal("KILL", child.id());
    child.wait().unwrap();
    assert_eq!(sb.deploys()[0].status.as_str(), "running", "abandoned mid-window");
    let prune = sb.run_tf(&["prune"]);
    prune.code(0);
    assert_eq!(sb.deploys()[0].status.as_str(), "interrupted", "recovered by the next command");
    assert_eq!(caddy.get(&sb.host(None)), (200, "one\n".to_owned()), "the slot serves the previous instance");
    assert_eq!(sb.containers(), vec![format!("{} running", first[0].container_name)]);
    let rows = sb.instances();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].container_name, first[0].container_name);
    assert_eq!(rows[0].status.as_str(), "live");
}
