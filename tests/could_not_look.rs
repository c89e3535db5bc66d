//! Issue 21 against the real engine: a socket in front of the Docker socket fails chosen Engine
//! API requests ([`FaultyDocker`]) while tiny-forge runs through it. A look that failed must never
//! lead to a removal, a deleted row or a hook: the previews keep answering through the real
//! Caddy, their containers and rows stay, and the command does not exit 0.

use serde_json::Value;
use tiny_forge::Store as _;

use crate::support::caddy::Caddy;
use crate::support::faulty_docker::{FaultyDocker, path};
use crate::support::{Run, Sandbox, Watch, docker};

/// Two live previews (`v2`, `v3`) behind a real Caddy, with an `on_remove` hook.
fn two_previews(prefix: &str) -> (Sandbox, Caddy) {
    let caddy = Caddy::start();
    let sb = Sandbox::new(prefix);
    sb.config_with(
        &format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", caddy.admin_url()),
        "on_remove = { command = [\"once\"] }",
        "",
    );
    sb.watch(Watch::Caddy(caddy.admin_url()));
    for tag in ["v2", "v3"] {
        sb.run_tf(&["-q", "deploy", &sb.project, "dev", tag]).code(0);
    }
    (sb, caddy)
}

/// `tiny-forge ARGS…` with the engine reached through `faulty`.
fn through(sb: &Sandbox, faulty: &FaultyDocker, args: &[&str]) -> Run {
    Run::from(sb.tf(args).env("DOCKER_HOST", faulty.host()).output().unwrap())
}

/// Both previews still answer through Caddy, with their own content, and their containers run
/// and rows are live; no `on_remove` ran.
#[track_caller]
fn assert_previews_untouched(sb: &Sandbox, caddy: &Caddy) {
    for tag in ["v2", "v3"] {
        assert_eq!(caddy.get(&sb.host(Some(tag))), (200, format!("{tag}\n")), "preview {tag} answers");
    }
    let rows = sb.instances();
    assert_eq!(rows.iter().filter(|r| r.status.as_str() == "live").count(), 2, "{rows:?}");
    let running: Vec<String> = sb.containers().into_iter().filter(|c| c.ends_with(" running")).collect();
    assert_eq!(running.len(), 2, "{:?}", sb.containers());
    for d in sb.deploys() {
        assert!(
            !sb.logs(d.id).iter().any(|l| l.message.contains("on_remove") && !l.message.contains("kept")),
            "an on_remove hook ran in deploy {}",
            d.id
        );
    }
}

fn json_result(run: &Run) -> Value {
    run.stdout.lines().rev().find_map(|l| serde_json::from_str(l).ok()).unwrap_or(Value::Null)
}

/// `prune` reads a stage's containers from one list (issue 26: not an inspect per preview); a
/// preview the list shows needs no inspect. One it does not show may be gone, or may have been
/// made by a deploy that finished after the list was read: only an inspect can tell. With every
/// inspect failing, that preview keeps its row and its route, nothing is removed, no hook runs,
/// and prune exits 3; the listed preview is untouched and answers.
#[test]
fn prune_with_every_container_inspect_failing_removes_nothing_and_exits_3() {
    let (sb, caddy) = two_previews("cnlinsp");
    let v2 = sb.instances().into_iter().find(|r| r.tag == "v2").unwrap().container_name;
    docker(&["rm", "-f", &v2]);
    let faulty = FaultyDocker::start();
    faulty.fail("GET", path::CONTAINER_INSPECT, 500);
    let run = through(&sb, &faulty, &["--output", "json", "prune"]);
    run.code(3);
    assert!(faulty.failed() > 0, "the fault was used");
    let result = json_result(&run);
    let failures = result["failures"].to_string();
    assert!(failures.contains("could not look") && failures.contains("500"), "says what it could not read: {result}");
    assert!(failures.contains(&v2) || result["leftovers"].to_string().contains(&v2), "names the one: {result}");
    let rows = sb.instances();
    assert_eq!(rows.iter().filter(|r| r.status.as_str() == "live").count(), 2, "no row deleted: {rows:?}");
    assert_eq!(caddy.get(&sb.host(Some("v3"))), (200, "v3\n".to_owned()), "the listed preview answers");
    assert_eq!(caddy.get(&sb.host(Some("v2"))).0, 502, "v2's route stays (to a container prune could not see)");
    let no_hook = |sb: &Sandbox| {
        for d in sb.deploys() {
            assert!(
                !sb.logs(d.id).iter().any(|l| l.message.contains("on_remove") && !l.message.contains("kept")),
                "an on_remove hook ran in deploy {}",
                d.id
            );
        }
    };
    no_hook(&sb);
    // The engine answers again: v2's container is definitely gone, so its row and route go
    // (without its on_remove hook: a vanished container is not a slot removed on purpose).
    sb.run_tf(&["prune"]).code(0);
    let rows = sb.instances();
    assert_eq!(rows.iter().map(|r| r.tag.as_str()).collect::<Vec<_>>(), ["v3"]);
    assert_eq!(caddy.get(&sb.host(Some("v2"))), (200, String::new()), "its route went");
    assert_eq!(caddy.get(&sb.host(Some("v3"))), (200, "v3\n".to_owned()));
    no_hook(&sb);
    assert!(sb.store().leftovers(&tiny_forge::store::Filter::default()).unwrap().is_empty());
}

/// Both previews in the list: prune needs no inspect at all, so a failing inspect changes
/// nothing, and it finds nothing to do.
#[test]
fn prune_of_listed_previews_asks_for_no_inspect() {
    let (sb, caddy) = two_previews("cnlnoin");
    let faulty = FaultyDocker::start();
    faulty.fail("GET", path::CONTAINER_INSPECT, 500);
    through(&sb, &faulty, &["prune"]).code(0);
    assert_eq!(faulty.failed(), 0, "no inspect was asked for");
    assert_previews_untouched(&sb, &caddy);
}

#[test]
fn prune_with_the_container_list_failing_removes_nothing_and_exits_3() {
    let (sb, caddy) = two_previews("cnllist");
    let faulty = FaultyDocker::start();
    faulty.fail("GET", path::CONTAINER_LIST, 500);
    let run = through(&sb, &faulty, &["--output", "json", "prune"]);
    run.code(3);
    assert!(faulty.failed() > 0, "the fault was used");
    assert!(json_result(&run)["failures"].to_string().contains("cannot list containers"), "{}", run.stdout);
    assert_previews_untouched(&sb, &caddy);
    // Both faults at once: still nothing goes.
    faulty.fail("GET", path::CONTAINER_INSPECT, 503);
    through(&sb, &faulty, &["prune"]).code(3);
    assert_previews_untouched(&sb, &caddy);
    sb.run_tf(&["prune"]).code(0);
    assert_previews_untouched(&sb, &caddy);
}

#[test]
fn a_container_delete_failing_during_remove_exits_3_and_prune_finishes_it_alone() {
    let (sb, caddy) = two_previews("cnldel");
    let v2 = sb.instances().into_iter().find(|r| r.tag == "v2").unwrap().container_name;
    let faulty = FaultyDocker::start();
    faulty.fail("DELETE", path::CONTAINER_DELETE, 500);
    let run = through(&sb, &faulty, &["--output", "json", "remove", &sb.project, "dev", "v2"]);
    run.code(3);
    let left = json_result(&run)["leftovers"].to_string();
    assert!(left.contains(&v2), "the container is listed as left: {left}");
    assert!(docker(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|n| n == v2), "it is still there");
    assert_eq!(caddy.get(&sb.host(Some("v2"))), (200, String::new()), "its route went first");
    assert_eq!(caddy.get(&sb.host(Some("v3"))), (200, "v3\n".to_owned()), "the other preview is untouched");
    let recorded = sb.store().leftovers(&tiny_forge::store::Filter::default()).unwrap();
    assert!(!recorded.is_empty(), "recorded for prune");
    // A fault-free prune finishes it, and leaves the other slot alone.
    sb.run_tf(&["prune"]).code(0);
    assert!(!docker(&["ps", "-a", "--format", "{{.Names}}"]).lines().any(|n| n == v2), "removed by prune");
    assert!(sb.store().leftovers(&tiny_forge::store::Filter::default()).unwrap().is_empty());
    assert_eq!(caddy.get(&sb.host(Some("v3"))), (200, "v3\n".to_owned()));
    let rows = sb.instances();
    assert_eq!(rows.iter().map(|r| r.tag.as_str()).collect::<Vec<_>>(), ["v3"]);
    sb.assert_only_left(&rows);
}

#[test]
fn a_redeploy_that_cannot_inspect_never_moves_traffic_and_lists_what_it_left() {
    let (sb, caddy) = two_previews("cnlrede");
    let faulty = FaultyDocker::start();
    faulty.fail("GET", path::CONTAINER_INSPECT, 500);
    let run = through(&sb, &faulty, &["--output", "json", "deploy", "--force", &sb.project, "dev", "v2"]);
    // Its health step could not look at the new container, and neither could its rollback:
    // the new container is a listed leftover, never a silent one.
    run.code(3);
    assert!(faulty.failed() > 0, "the fault was used");
    let left = json_result(&run)["leftovers"].to_string();
    assert!(left.contains(&format!("tf-{}-dev-v2-", sb.project)), "{left}");
    faulty.heal();
    for tag in ["v2", "v3"] {
        assert_eq!(caddy.get(&sb.host(Some(tag))), (200, format!("{tag}\n")), "traffic never moved off {tag}");
    }
    sb.run_tf(&["prune"]).code(0);
    assert_previews_untouched(&sb, &caddy);
    sb.assert_only_left(&sb.instances());
}

/// Chaos trial 95 (seed 20261207): SIGTERM while the engine had a container create in hand but
/// had not answered. The deploy used to drop the call and roll back at once; the rollback's look
/// found no container, the deploy exited 130 ("nothing left"), and then the engine made the
/// container. The create now runs to its answer, and the rollback removes what it made.
#[test]
fn a_sigterm_during_a_create_the_engine_has_not_answered_leaves_no_container() {
    let sb = Sandbox::new("cnlcreate");
    sb.config("", "");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v1"]).code(0);
    let faulty = FaultyDocker::start();
    faulty.delay("POST", path::CONTAINER_CREATE, std::time::Duration::from_millis(1500));
    let host = faulty.host();
    let mut deploy = sb.spawn_tf(&["-q", "deploy", &sb.project, "dev", "v2"], &[("DOCKER_HOST", &host)]);
    sb.wait_for_log(&mut deploy, "create started");
    std::thread::sleep(std::time::Duration::from_millis(300));
    crate::support::run(std::process::Command::new("kill").args(["-TERM", &deploy.id().to_string()]));
    let run = Run::from(deploy.wait_with_output().unwrap());
    run.code(130);
    // Whatever the engine was still doing has landed by now.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let containers = docker(&["ps", "-a", "--format", "{{.Names}}"]);
    let v2: Vec<&str> = containers.lines().filter(|n| n.starts_with(&format!("tf-{}-dev-v2-", sb.project))).collect();
    assert!(v2.is_empty(), "a v2 container was left behind: {v2:?}\n{}", run.stderr);
    assert!(sb.instances().iter().all(|r| r.tag == "v1"), "{:?}", sb.instances());
}
