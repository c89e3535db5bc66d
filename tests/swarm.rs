//! Issue 14: the swarm engine, on a single-node swarm on this machine. The test bed turns swarm
//! mode on when it is off (`docker swarm init --advertise-addr 127.0.0.1`) and turns it off again
//! once the last swarm test is done, leaving the engine as it found it. Facts measured here:
//! the service VIP is not routable (no IPVS), so the slots use `endpoint_mode = "dnsrr"`; the host
//! reaches a local task through its `docker_gwbridge` address, which is what tiny-forge probes.
//! Every assertion reads the Docker API (services, tasks), the NPM double, or an HTTP answer
//! from a client on the overlay network.

use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::support::npm::NpmDouble;
use tiny_forge::store::Store as _;

use crate::support::{Sandbox, Watch, docker, docker_ok, images, run};

const EMAIL: &str = "ops@example.com";
const PW: &str = "npm-secret-pw";

/// How many swarm tests hold the swarm, and whether we turned it on.
static SWARM: Mutex<(u32, bool)> = Mutex::new((0, false));

/// Swarm mode on while held; the last holder turns it off again if the test bed turned it on.
pub(crate) struct SwarmMode;

impl SwarmMode {
    pub(crate) fn hold() -> Self {
        let mut s = SWARM.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if s.0 == 0 {
            let state = docker(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
            if state.trim() != "active" {
                run(Command::new("docker").args(["swarm", "init", "--advertise-addr", "127.0.0.1"]));
                s.1 = true;
            }
        }
        s.0 += 1;
        Self
    }
}

impl Drop for SwarmMode {
    fn drop(&mut self) {
        let mut s = SWARM.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        s.0 -= 1;
        if s.0 == 0 && s.1 {
            docker_ok(&["swarm", "leave", "--force"]);
            s.1 = false;
        }
    }
}

/// Removes the project's services (and waits for their tasks to go) before the sandbox removes
/// its network.
pub(crate) struct Services(pub(crate) String);

impl Drop for Services {
    fn drop(&mut self) {
        let names = services(&self.0);
        if !names.is_empty() {
            let mut args = vec!["service", "rm"];
            args.extend(names.iter().map(String::as_str));
            docker_ok(&args);
        }
        wait_until(Duration::from_secs(30), || task_containers(&self.0).is_empty());
    }
}

/// Removes a container of the test's own on drop, also when the test panics.
struct Container(String);

impl Drop for Container {
    fn drop(&mut self) {
        docker_ok(&["rm", "-f", &self.0]);
    }
}

pub(crate) fn services(project: &str) -> Vec<String> {
    let filter = format!("label=dev.tiny-forge.project={project}");
    docker(&["service", "ls", "--filter", &filter, "--format", "{{.Name}}"]).lines().map(str::to_owned).collect()
}

/// Containers of the project's services' tasks, running or not.
fn task_containers(project: &str) -> Vec<String> {
    let filter = format!("name=tfs-{project}-");
    docker(&["ps", "-a", "--filter", &filter, "--format", "{{.Names}}"]).lines().map(str::to_owned).collect()
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

/// `docker service inspect -f FORMAT NAME`.
fn service_field(name: &str, format: &str) -> String {
    docker(&["service", "inspect", "-f", format, name]).trim().to_owned()
}

/// The registry digest reference of `tag` (`repo@sha256:…`).
fn digest_ref(tag: &str) -> String {
    let image = format!("{}:{tag}", images().repo);
    docker(&["pull", "-q", &image]);
    // The same image may also be known under another test's repository.
    let repo = format!("{}@", images().repo);
    docker(&["image", "inspect", "-f", "{{range .RepoDigests}}{{println .}}{{end}}", &image])
        .lines()
        .find(|d| d.starts_with(&repo))
        .unwrap_or_else(|| panic!("no digest of {image} in {repo}"))
        .to_owned()
}

/// A sandbox whose project runs on the swarm engine (dnsrr, the demo app's own probe as the
/// health command), behind the NPM double.
fn swarm_sandbox(prefix: &str, stage_extra: &str) -> (SwarmMode, Sandbox, Services, NpmDouble) {
    let mode = SwarmMode::hold();
    let sb = Sandbox::new(prefix);
    let svc = Services(sb.project.clone());
    let npm = NpmDouble::start(EMAIL, PW);
    let mut tables = crate::support::npm_proxy(&npm.url(), EMAIL, "TF_TEST_NPM_PASSWORD");
    tables.push_str("forward = \"name\"\n");
    sb.config_with(
        &tables,
        "engine = { kind = \"swarm\", endpoint_mode = \"dnsrr\" }\nhealth = { command = [\"/demo-app\", \"probe\"] }\n",
        stage_extra,
    );
    sb.watch(Watch::Npm(npm.view()));
    (mode, sb, svc, npm)
}

/// A tag of the test's own (its project's name), pushed as v1's image, and its slot's service:
/// the test moves the tag to other images for one slot and several digests. Returns (tag,
/// `repo:tag`, service).
fn moving_slot(sb: &Sandbox) -> (String, String, String) {
    let tag = sb.project.clone();
    let moving = format!("{}:{tag}", images().repo);
    crate::support::push_as(&format!("{}:v1", images().repo), &moving);
    let service = format!("tfs-{}-dev-{tag}", sb.project);
    (tag, moving, service)
}

fn tf(sb: &Sandbox, args: &[&str]) -> crate::support::Run {
    crate::support::Run::from(sb.tf(args).env("TF_TEST_NPM_PASSWORD", PW).output().expect("run tiny-forge"))
}

/// What a client on the overlay network gets from `http://SERVICE:8080/`, once.
fn answer_on_overlay(sb: &Sandbox, service: &str) -> String {
    let image = format!("{}:v1", images().repo);
    docker(&["run", "--rm", "--network", &sb.network, &image, "watch", &format!("{service}:8080"), "100"])
}

#[test]
fn swarm_a_slot_is_a_service_updated_start_first_with_zero_failed_requests_and_rolled_back_by_digest() {
    let (_mode, sb, _svc, npm) = swarm_sandbox("swok", "");
    let (tag, moving, service) = moving_slot(&sb);

    // check: a manager, the overlay network, the nodes.
    let check = tf(&sb, &["check"]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("manager; 1 of 1 nodes ready"), "{}", check.stdout);
    assert!(check.stdout.contains("overlay, attachable"), "{}", check.stdout);

    // A new slot is a service create.
    let first = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let v1 = digest_ref("v1");
    assert_eq!(service_field(&service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}"), v1);
    assert_eq!(
        service_field(&service, "{{index .Spec.Labels \"dev.tiny-forge.slot\"}}"),
        format!("{}/dev/{tag}", sb.project)
    );
    assert_eq!(service_field(&service, "{{.Spec.EndpointSpec.Mode}}"), "dnsrr");
    assert!(answer_on_overlay(&sb, &service).contains("answer \"hello\""), "the service answers on the overlay");
    let hosts = npm.hosts();
    assert_eq!(hosts.len(), 1, "{hosts:?}");
    assert_eq!(hosts[0]["forward_host"], service.as_str(), "the proxy forwards to the service name");
    let rows = sb.instances();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].container_name, service);

    // A redeploy is a service update, start-first: a client on the overlay sees no failed
    // request, and then the new answer.
    let image = format!("{}:v1", images().repo);
    let watch_for = format!("{service}:8080");
    let watcher = docker(&["run", "-d", "--network", &sb.network, &image, "watch", &watch_for, "15000"]);
    let watcher = watcher.trim().to_owned();
    let _gone = Container(watcher.clone());
    std::thread::sleep(Duration::from_millis(500));
    crate::support::push_as(&format!("{}:v2", images().repo), &moving);
    let second = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let v2 = digest_ref("v2");
    assert_eq!(service_field(&service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}"), v2);
    assert_eq!(service_field(&service, "{{.UpdateStatus.State}}"), "completed");
    assert_eq!(service_field(&service, "{{.Spec.UpdateConfig.Order}}"), "start-first");
    assert!(wait_until(Duration::from_secs(30), || {
        docker(&["inspect", "-f", "{{.State.Running}}", &watcher]).trim() == "false"
    }));
    let seen = docker(&["logs", &watcher]);
    assert!(seen.contains("failed=0"), "requests failed during the update:\n{seen}");
    assert!(seen.contains("answer \"v2\""), "the client never saw the new version:\n{seen}");
    assert_eq!(sb.instances().len(), 1, "one live row per slot after the update");

    // Rollback by digest: back to v1.
    let back = tf(&sb, &["rollback", &sb.project, "dev", &tag]);
    assert_eq!(back.code, 0, "{}{}", back.stdout, back.stderr);
    assert_eq!(service_field(&service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}"), v1);
    assert!(answer_on_overlay(&sb, &service).contains("answer \"hello\""));

    // Logs and list work on the service.
    let logs = tf(&sb, &["logs", &sb.project, "dev", &tag, "--tail", "50"]);
    assert_eq!(logs.code, 0, "{}", logs.stderr);
    assert!(logs.stdout.contains("demo-app: listening"), "{}", logs.stdout);
    let list = tf(&sb, &["list"]);
    let line = list.stdout.lines().find(|l| l.contains(&format!("dev    {tag}"))).unwrap_or_default();
    assert!(line.contains("running"), "list reads the service's state: {}", list.stdout);

    // remove: the service, its host and its rows go.
    tf(&sb, &["remove", &sb.project, "dev", &tag]).code(0);
    assert!(services(&sb.project).is_empty(), "services left: {:?}", services(&sb.project));
    assert!(npm.hosts().is_empty());
    assert!(sb.instances().is_empty());
}

/// What a failed swarm deploy may leave: exactly `kept` services (name, image), each host of
/// ours forwarding to one of them, exactly the `kept_rows`, no leftover, no deploy still running.
#[track_caller]
fn assert_swarm_left(
    sb: &Sandbox,
    npm: &NpmDouble,
    kept: &[(&str, &str)],
    kept_rows: &[tiny_forge::store::InstanceRecord],
) {
    let mut want: Vec<String> = kept.iter().map(|(name, _)| (*name).to_owned()).collect();
    want.sort();
    let mut got = services(&sb.project);
    got.sort();
    assert_eq!(got, want, "services of the project (Docker API)");
    for (name, image) in kept {
        assert_eq!(
            service_field(name, "{{.Spec.TaskTemplate.ContainerSpec.Image}}"),
            *image,
            "{name} runs what it ran"
        );
    }
    let hosts = npm.hosts();
    assert_eq!(hosts.len(), kept_rows.iter().filter(|r| r.proxy_host_id.is_some()).count(), "{hosts:?}");
    for h in &hosts {
        let target = h["forward_host"].as_str().unwrap_or_default();
        assert!(kept.iter().any(|(name, _)| *name == target), "host forwards to {target}, which is not a kept service");
    }
    let strip = |rows: &[tiny_forge::store::InstanceRecord]| -> Vec<tiny_forge::store::InstanceRecord> {
        rows.iter().map(|r| tiny_forge::store::InstanceRecord { updated_at: 0, ..r.clone() }).collect()
    };
    assert_eq!(strip(&sb.instances()), strip(kept_rows), "instance rows: only those that served before");
    let leftovers = sb.store().leftovers(&tiny_forge::store::Filter::default()).unwrap();
    assert!(leftovers.is_empty(), "leftovers recorded: {leftovers:?}");
    assert!(sb.deploys().iter().all(|d| d.status.as_str() != "running"), "a deploy is still marked running");
    if kept.is_empty() {
        assert!(
            wait_until(Duration::from_secs(30), || task_containers(&sb.project).is_empty()),
            "task containers left"
        );
    }
}

#[test]
fn swarm_an_unhealthy_update_is_rolled_back_by_swarm_and_fails_the_deploy_while_the_old_tasks_serve() {
    let (_mode, sb, _svc, npm) = swarm_sandbox("swbad", "");
    let (tag, moving, service) = moving_slot(&sb);
    let first = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let before = sb.instances();
    let v1 = digest_ref("v1");

    crate::support::push_as(&format!("{}:bad", images().repo), &moving);
    let failed = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(failed.code, 1, "an update Swarm rolls back is a failed deploy: {}{}", failed.stdout, failed.stderr);
    assert!(
        failed.stderr.contains("unhealthy") || failed.stderr.contains("did not complete the update"),
        "the error says why: {}",
        failed.stderr
    );
    assert_swarm_left(&sb, &npm, &[(&service, &v1)], &before);
    // The old task served throughout, and still does.
    assert!(answer_on_overlay(&sb, &service).contains("answer \"hello\""));
}

#[test]
fn swarm_a_new_slot_whose_task_crashes_fails_at_once_with_its_exit_code_and_logs_and_leaves_nothing() {
    let env = "env = { READY_AFTER_MS = \"5000\", EXIT_AFTER_MS = \"300\", EXIT_CODE = \"3\" }\n";
    let (_mode, sb, _svc, npm) = swarm_sandbox("swcrash", env);
    let out = tf(&sb, &["deploy", &sb.project, "dev"]);
    assert_eq!(out.code, 1, "{}{}", out.stdout, out.stderr);
    assert!(out.stderr.contains("code 3"), "the task's exit code: {}", out.stderr);
    assert!(out.stderr.contains("simulated crash"), "the task's last log lines: {}", out.stderr);
    assert_swarm_left(&sb, &npm, &[], &[]);
}

#[test]
fn swarm_prune_removes_a_service_no_instance_owns_and_keeps_the_live_ones() {
    let (_mode, sb, _svc, npm) = swarm_sandbox("swprune", "");
    for tag in ["v1", "v2"] {
        let out = tf(&sb, &["deploy", &sb.project, "dev", tag]);
        assert_eq!(out.code, 0, "{}{}", out.stdout, out.stderr);
    }
    // Nothing to do on a healthy stage: both services stay.
    tf(&sb, &["prune"]).code(0);
    assert_eq!(services(&sb.project).len(), 2);
    // The state file forgets v2 (as after a lost state file): its service is an orphan.
    let rows = sb.instances();
    let v2 = rows.iter().find(|r| r.tag == "v2").expect("v2's row");
    sb.store().delete_instance(v2.id).unwrap();
    let pruned = tf(&sb, &["prune"]);
    assert_eq!(pruned.code, 0, "{}{}", pruned.stdout, pruned.stderr);
    let kept: Vec<_> = rows.iter().filter(|r| r.tag == "v1").cloned().collect();
    let v1 = format!("tfs-{}-dev-v1", sb.project);
    assert_swarm_left(&sb, &npm, &[(&v1, &digest_ref("v1"))], &kept);
    // Twice in a row: nothing the second time.
    let again = tf(&sb, &["prune"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(services(&sb.project), vec![v1]);
}

#[test]
fn swarm_a_deploy_killed_during_its_update_is_recovered_by_prune_to_the_live_digest() {
    let (_mode, sb, _svc, npm) = swarm_sandbox("swkill", "");
    let (tag, moving, service) = moving_slot(&sb);
    tf(&sb, &["deploy", &sb.project, "dev", &tag]).code(0);
    let before = sb.instances();
    crate::support::push_as(&format!("{}:v2", images().repo), &moving);
    let mut child = sb.spawn_tf(
        &["deploy", &sb.project, "dev", &tag],
        &[("TINY_FORGE_TEST_PAUSE_AFTER", "create:60s"), ("TF_TEST_NPM_PASSWORD", PW)],
    );
    sb.wait_for_log(&mut child, "pausing");
    run(Command::new("kill").args(["-KILL", &child.id().to_string()]));
    drop(child.wait_with_output());
    let prune = tf(&sb, &["prune"]);
    assert_eq!(prune.code, 0, "{}{}", prune.stdout, prune.stderr);
    let v1 = digest_ref("v1");
    assert!(
        wait_until(Duration::from_secs(30), || service_field(&service, "{{.Spec.TaskTemplate.ContainerSpec.Image}}")
            == v1),
        "prune takes the service back to the live row's digest"
    );
    assert_swarm_left(&sb, &npm, &[(&service, &v1)], &before);
}

#[test]
fn swarm_replicas_and_placement_constraints_are_the_service_s_and_an_update_replaces_every_task() {
    let _mode = SwarmMode::hold();
    let sb = Sandbox::new("swrep");
    let _svc = Services(sb.project.clone());
    sb.config(
        "engine = { kind = \"swarm\", endpoint_mode = \"dnsrr\", replicas = 2, constraints = [\"node.role == manager\"] }\nhealth = { command = [\"/demo-app\", \"probe\"] }\n",
        "",
    );
    let (tag, moving, service) = moving_slot(&sb);
    let first = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    assert_eq!(service_field(&service, "{{.Spec.Mode.Replicated.Replicas}}"), "2");
    assert_eq!(
        service_field(&service, "{{json .Spec.TaskTemplate.Placement.Constraints}}"),
        "[\"node.role == manager\"]"
    );
    let running = |image: &str| {
        docker(&[
            "service",
            "ps",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.Image}} {{.CurrentState}}",
            &service,
        ])
        .lines()
        .filter(|l| l.starts_with(image) && l.contains("Running"))
        .count()
    };
    let v1 = digest_ref("v1");
    assert_eq!(running(&v1), 2, "two healthy tasks of v1 before the deploy reports success");
    crate::support::push_as(&format!("{}:v2", images().repo), &moving);
    let second = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(second.code, 0, "{}{}", second.stdout, second.stderr);
    let v2 = digest_ref("v2");
    assert_eq!(service_field(&service, "{{.UpdateStatus.State}}"), "completed");
    assert_eq!(running(&v2), 2, "both tasks replaced before the deploy reports success");
    tf(&sb, &["remove", &sb.project, "dev", &tag]).code(0);
    assert!(services(&sb.project).is_empty());
}

/// Issue 21: on a swarm stage, the service list and inspects failing (a locked swarm, a manager
/// without a leader) take nothing of the slot away: prune exits 3, and the service, its host
/// and its row are all there; with the engine answering again, prune has nothing to do.
#[test]
fn swarm_prune_with_the_service_list_and_inspects_failing_takes_nothing_of_the_slot() {
    let (_mode, sb, _svc, npm) = swarm_sandbox("swcnl", "");
    let (tag, _moving, service) = moving_slot(&sb);
    let first = tf(&sb, &["deploy", &sb.project, "dev", &tag]);
    assert_eq!(first.code, 0, "{}{}", first.stdout, first.stderr);
    let faulty = crate::support::faulty_docker::FaultyDocker::start();
    faulty.fail("GET", crate::support::faulty_docker::path::SERVICE_LIST, 503);
    faulty.fail("GET", crate::support::faulty_docker::path::SERVICE_INSPECT, 503);
    let run = crate::support::Run::from(
        sb.tf(&["--output", "json", "prune"])
            .env("TF_TEST_NPM_PASSWORD", PW)
            .env("DOCKER_HOST", faulty.host())
            .output()
            .unwrap(),
    );
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    assert!(faulty.failed() > 0, "the fault was used");
    assert!(run.stdout.contains("cannot list services"), "{}", run.stdout);
    assert_eq!(services(&sb.project), std::slice::from_ref(&service), "the service stays");
    assert_eq!(npm.hosts().len(), 1, "its host stays");
    assert_eq!(sb.instances().iter().filter(|r| r.status.as_str() == "live").count(), 1, "its row stays");
    assert!(answer_on_overlay(&sb, &service).contains("answer \"hello\""), "and it answers");
    let again = tf(&sb, &["prune"]);
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(services(&sb.project), [service]);
    assert_eq!(npm.hosts().len(), 1);
}
