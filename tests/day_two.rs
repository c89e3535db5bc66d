//! Issue 12: day two on a staging host. Images that do not fill the disk, an instance's own
//! logs, the plan of a deploy, redeploys of what already runs, the idle network. Everything is
//! asserted on what the Docker Engine says.

use std::collections::BTreeSet;
use std::process::Command;

use crate::support::{Registry, Run, Sandbox, docker, docker_ok, images, run};

/// Builds and pushes an image of its own, answering `from`, as `repo:to`.
fn push_as(from: &str, repo: &str, to: &str) {
    crate::support::own_image(&format!("{repo}:{to}"), from);
}

/// The digests of `repo`'s images the engine holds.
fn digests_on_disk(repo: &str) -> BTreeSet<String> {
    docker(&["images", "--digests", "--format", "{{.Repository}} {{.Digest}}"])
        .lines()
        .filter_map(|l| l.split_once(' '))
        .filter(|(r, d)| *r == repo && d.starts_with("sha256:"))
        .map(|(_, d)| d.to_owned())
        .collect()
}

fn registry_digest(repo: &str, tag: &str) -> String {
    run(Command::new("docker").args(["pull", "-q", &format!("{repo}:{tag}")]));
    let d = docker(&["inspect", "-f", "{{index .RepoDigests 0}}", &format!("{repo}:{tag}")]);
    docker_ok(&["rmi", &format!("{repo}:{tag}")]);
    d.trim().split_once('@').unwrap().1.to_owned()
}

/// 20 tags deployed and removed leave none of their images; a live slot keeps its last
/// `keep_images` digests; an unmanaged container's image survives; and a rollback after the
/// cleanup works with the registry gone.
#[test]
fn images_no_one_uses_are_deleted_and_a_rollback_needs_no_registry() {
    let reg = Registry::start();
    let sb = Sandbox::new("imghyg");
    let repo = format!("{}/tf-test/{}", reg.host(), sb.project);
    for i in 1..=20 {
        push_as(&format!("v{}", (i - 1) % 10 + 1), &repo, &format!("t{i}"));
    }
    push_as("v1", &repo, "main");
    sb.config_with("", "keep_images = 2", "");
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace(&format!("image = \"{}\"", images().repo), &format!("image = \"{repo}\""))
        .replace("default_tag = \"v1\"", "default_tag = \"main\"");
    sb.write_config(&text);
    for i in 1..=20 {
        sb.run_tf(&["-q", "deploy", &sb.project, "dev", &format!("t{i}")]).code(0);
        sb.run_tf(&["-q", "remove", &sb.project, "dev", &format!("t{i}")]).code(0);
    }
    let last = sb.deploys()[0].id.to_string();
    let log = sb.run_tf(&["history", "show", &last]).stdout;
    assert_eq!(digests_on_disk(&repo), BTreeSet::new(), "no slot is live: none of its images stays\n{log}");
    let prune = sb.run_tf(&["prune", "--dry-run"]);
    prune.code(0);
    assert!(!prune.stderr.contains("would free"), "nothing left to free: {}", prune.stderr);

    // A live slot with three versions keeps the last two.
    let mut versions = Vec::new();
    for v in ["v1", "v2", "v3"] {
        push_as(v, &repo, "main");
        versions.push(registry_digest(&repo, "main"));
        sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    }
    assert_eq!(digests_on_disk(&repo), versions[1..].iter().cloned().collect());

    // An image a container outside tiny-forge uses is never deleted; once that container is
    // gone, it goes (tiny-forge pulled it: v1's digest, which the slot no longer keeps).
    let v1 = versions[0].clone();
    run(Command::new("docker").args(["pull", "-q", &format!("{repo}@{v1}")]));
    let bystander = format!("{}-bystander", sb.project);
    run(Command::new("docker").args(["create", "--name", &bystander, &format!("{repo}@{v1}")]));
    // An image of the repository that tiny-forge never pulled (someone's `docker pull`, another
    // state file's rollback cache) is not this state file's to delete (issue 21, review F9).
    push_as("v5", &repo, "t5");
    let v5 = registry_digest(&repo, "t5");
    run(Command::new("docker").args(["pull", "-q", &format!("{repo}@{v5}")]));
    let pruned = sb.run_tf(&["prune"]);
    pruned.code(0);
    let mut expected: BTreeSet<String> = versions.iter().cloned().collect();
    expected.insert(v5.clone());
    assert_eq!(digests_on_disk(&repo), expected, "{}", pruned.stderr);
    docker(&["rm", "-f", &bystander]);
    let dry = sb.run_tf(&["prune", "--dry-run"]);
    assert!(dry.stdout.contains(&format!("delete image {repo}@{v1}")), "{}", dry.stdout);
    assert!(!dry.stdout.contains(&v5), "never pulled by this state file: {}", dry.stdout);
    assert!(dry.stderr.contains("would free"), "{}", dry.stderr);
    let real = sb.run_tf(&["prune"]);
    real.code(0);
    assert!(real.stderr.contains("freed"), "{}", real.stderr);
    assert!(!digests_on_disk(&repo).contains(&v1));
    assert!(digests_on_disk(&repo).contains(&v5));
    run(Command::new("docker").args(["rmi", &format!("{repo}@{v5}")]));

    // The registry goes away; the rollback uses the kept digest.
    reg.stop();
    sb.run_tf(&["-q", "rollback", &sb.project, "dev"]).code(0);
    let live: Vec<_> = sb.instances().into_iter().filter(|r| r.status.as_str() == "live").collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].digest, versions[1], "back on the previous version, without a pull");
    let running = docker(&["inspect", "-f", "{{.State.Running}}", &live[0].container_name]);
    assert_eq!(running.trim(), "true");
    for d in digests_on_disk(&repo) {
        docker_ok(&["rmi", "-f", &format!("{repo}@{d}")]);
    }
}

/// `logs`: stdout to stdout, stderr to stderr; `--follow` ends when the instance is replaced.
#[test]
fn logs_keep_stdout_and_stderr_apart_and_follow_ends_with_the_instance() {
    let sb = Sandbox::new("logs");
    sb.config("", "");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let logs = sb.run_tf(&["logs", &sb.project, "dev"]);
    logs.code(0);
    assert!(logs.stdout.contains("demo-app: listening on :8080"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("goes to stderr"), "{}", logs.stdout);
    assert!(logs.stderr.contains("demo-app: serving (this line goes to stderr)"), "{}", logs.stderr);
    let tail = sb.run_tf(&["logs", &sb.project, "dev", "--tail", "1", "--since", "1h"]);
    assert_eq!(tail.stdout.lines().count() + tail.stderr.lines().count(), 1);

    let follower = sb.spawn_tf(&["logs", &sb.project, "dev", "--follow"], &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "--force"]).code(0);
    let out = Run::from(follower.wait_with_output().unwrap());
    out.code(0);
    assert!(out.stdout.contains("listening"), "{}", out.stdout);

    let none = sb.run_tf(&["logs", &sb.project, "dev", "nothing-here"]);
    none.code(2);
    assert!(none.error_line().contains("has no instance"), "{}", none.stderr);
}

/// `deploy --dry-run` tells the plan and touches nothing; an unknown tag exits 2. A second
/// deploy of what already runs does nothing (and says so); a changed env redeploys.
#[test]
fn a_dry_run_touches_nothing_and_a_redeploy_of_what_runs_does_nothing() {
    let sb = Sandbox::new("plan");
    sb.config("", "");
    let plan = sb.run_tf(&["deploy", &sb.project, "dev", "--dry-run"]);
    plan.code(0);
    assert!(plan.stdout.contains("digest    sha256:"), "{}", plan.stdout);
    assert!(plan.stdout.contains(&format!("host      {}", sb.host(None))), "{}", plan.stdout);
    assert!(plan.stdout.contains("running   nothing yet"), "{}", plan.stdout);
    assert_eq!(sb.containers(), Vec::<String>::new(), "a dry run creates nothing");
    assert!(!sb.state.exists(), "nor records a deploy: it does not even make the state file");
    let missing = sb.run_tf(&["deploy", &sb.project, "dev", "no-such-tag", "--dry-run"]);
    missing.code(2);

    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let first = sb.containers();
    let plan = sb.run_tf(&["--output", "json", "deploy", &sb.project, "dev", "--dry-run"]);
    let v: serde_json::Value = serde_json::from_str(plan.stdout.trim()).unwrap();
    assert_eq!(v["plan"]["unchanged"], true, "{v}");

    let again = sb.run_tf(&["deploy", &sb.project, "dev"]);
    again.code(0).stderr_has("already running");
    assert_eq!(sb.containers(), first, "no new container");
    assert_eq!(sb.deploys().len(), 2);

    let text =
        std::fs::read_to_string(&sb.config).unwrap().replace("port = 8080", "port = 8080\nenv = { NEW = \"1\" }");
    sb.write_config(&text);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_ne!(sb.containers(), first, "a changed env redeploys");
    assert_eq!(sb.containers().len(), 1);
}

/// `settings.remove_idle_network`: the stage's network goes with its last instance.
#[test]
fn the_idle_network_goes_with_the_last_instance_when_asked() {
    let sb = Sandbox::new("idlenet");
    sb.config("", "");
    let text =
        std::fs::read_to_string(&sb.config).unwrap().replace("[health]", "remove_idle_network = true\n\n[health]");
    sb.write_config(&text);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    sb.run_tf(&["-q", "remove", &sb.project, "dev", "v1"]).code(0);
    assert!(docker_ok(&["network", "inspect", &sb.network]), "v2 still uses it");
    sb.run_tf(&["-q", "remove", &sb.project, "dev", "v2"]).code(0);
    assert!(!docker_ok(&["network", "inspect", &sb.network]), "gone with the last instance");
    sb.assert_nothing_left();
}

/// Another run's image cleanup (here `docker rmi`, as a host's `docker image prune -a` or another
/// state file's retire would) takes the image between the pull and the create: the deploy pulls
/// it again, says so, and serves.
#[test]
fn an_image_removed_between_the_pull_and_the_create_is_pulled_again() {
    let sb = Sandbox::new("vanish");
    let repo = format!("{}/tf-test/{}", images().registry.host(), sb.project);
    push_as("v2", &repo, "main");
    sb.config("", "");
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace(&format!("image = \"{}\"", images().repo), &format!("image = \"{repo}\""))
        .replace("default_tag = \"v1\"", "default_tag = \"main\"");
    sb.write_config(&text);
    let mut child = sb.spawn_tf(&["deploy", &sb.project, "dev"], &[("TINY_FORGE_TEST_PAUSE_AFTER", "network:10s")]);
    sb.wait_for_log(&mut child, "pausing");
    let ids = docker(&["images", "-q", "--filter", &format!("reference={repo}")]);
    for id in ids.split_whitespace().collect::<BTreeSet<_>>() {
        run(Command::new("docker").args(["rmi", id]));
    }
    assert_eq!(digests_on_disk(&repo), BTreeSet::new(), "the image is gone before the create");
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(0);
    let log: Vec<String> = sb.logs(sb.deploys()[0].id).into_iter().map(|l| l.message).collect();
    assert!(log.iter().any(|m| m.contains("was removed before the container was made; pulling it again")), "{log:#?}");
    let live = sb.instances();
    let url = format!("http://{}:8080/", sb.container_ip(&live[0].container_name));
    assert_eq!(crate::support::http_get(&url), (200, "v2\n".to_owned()));
}

/// Issue 21 (review F12): a dry run creates no state directory or file, migrates nothing (so an
/// older tiny-forge is never locked out) and needs no webhook secret: it changes nothing.
#[test]
fn issue_21_a_dry_run_creates_and_migrates_no_state_file_and_reads_no_webhook_secret() {
    let sb = Sandbox::new("planro");
    sb.config_with("[notify]\nurl = \"http://127.0.0.1:9/hook\"\nsecret_env = \"TF_TEST_PLAN_SECRET\"\n", "", "");
    let plan = sb.run_tf(&["deploy", &sb.project, "dev", "--dry-run"]);
    plan.code(0);
    assert!(!sb.state.parent().unwrap().exists(), "no state directory, no state file");
    let deployed = sb.tf(&["-q", "deploy", &sb.project, "dev"]).env("TF_TEST_PLAN_SECRET", "s").output().unwrap();
    assert!(deployed.status.success(), "{}", String::from_utf8_lossy(&deployed.stderr));
    let files = |dir: &std::path::Path| -> Vec<(String, Vec<u8>)> {
        let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
            .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
            .collect();
        all.sort();
        all
    };
    let dir = sb.state.parent().unwrap();
    let before = files(dir);
    let plan = sb.run_tf(&["--output", "json", "deploy", &sb.project, "dev", "--dry-run"]);
    plan.code(0);
    let v: serde_json::Value = serde_json::from_str(plan.stdout.trim()).unwrap();
    assert_eq!(v["plan"]["unchanged"], true, "it read the state file: {v}");
    let after = files(dir);
    assert_eq!(
        before.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>(),
        after.iter().map(|(n, b)| (n, b.len())).collect::<Vec<_>>()
    );
    assert!(before == after, "the state directory is byte for byte as it was");
}
