//! Issue 11: reconcile with reality. Each scenario runs the real binary against the real Docker
//! Engine and the NPM double or a real Caddy, and asserts on what Docker, the proxy and real
//! HTTP requests say, not only on the state file.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::caddy::Caddy;
use crate::support::npm::{Fault, NpmDouble, When};
use crate::support::{Run, Sandbox, Watch, retag, run};

const EMAIL: &str = "ops@example.com";
const PW: &str = "reconcile-pw";

struct Npm {
    sb: Sandbox,
    npm: NpmDouble,
}

impl Npm {
    fn new(prefix: &str) -> Self {
        Self::with(prefix, "", "", "")
    }

    fn with(prefix: &str, tables: &str, project_extra: &str, stage_extra: &str) -> Self {
        let sb = Sandbox::new(prefix);
        let npm = NpmDouble::start(EMAIL, PW);
        let tables = format!("{}{tables}", crate::support::npm_proxy(&npm.url(), EMAIL, "TF_TEST_NPM_PASSWORD"));
        sb.config_with(&tables, project_extra, stage_extra);
        sb.watch(Watch::Npm(npm.view()));
        Self { sb, npm }
    }

    fn tf(&self, args: &[&str]) -> Run {
        Run::from(self.sb.tf(args).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap())
    }

    fn spawn(&self, args: &[&str], pause: &str) -> std::process::Child {
        self.sb.spawn_tf(args, &[("TINY_FORGE_TEST_PAUSE_AFTER", pause), ("TF_TEST_NPM_PASSWORD", PW)])
    }

    /// The one host for `domain`, as the double holds it.
    #[track_caller]
    fn host(&self, domain: &str) -> Value {
        let hosts: Vec<Value> =
            self.npm.hosts().into_iter().filter(|h| h["domain_names"][0].as_str() == Some(domain)).collect();
        assert_eq!(hosts.len(), 1, "hosts for {domain}: {hosts:?}");
        hosts[0].clone()
    }

    /// The live instance's container, which must be running and be where its host forwards.
    #[track_caller]
    fn assert_serves(&self, domain: &str) -> String {
        let live: Vec<_> = self.sb.instances().into_iter().filter(|r| r.status.as_str() == "live").collect();
        let row = live.iter().find(|r| r.domain.as_deref() == Some(domain)).expect("a live instance");
        assert!(
            self.sb.containers().contains(&format!("{} running", row.container_name)),
            "{:?}",
            self.sb.containers()
        );
        let h = self.host(domain);
        assert_eq!(h["forward_host"], row.container_name.as_str(), "the host forwards to the live instance");
        assert_eq!(h["forward_port"], row.port.unwrap());
        assert_eq!(h["meta"]["nginx_online"], true);
        row.container_name.clone()
    }
}

fn signal(sig: &str, pid: u32) {
    run(Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]));
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Scenario 1, NPM: someone deletes the host in NPM's UI. The next redeploy recreates it, and
/// so does `prune`; a host pointed elsewhere is repaired.
#[test]
fn a_host_deleted_in_npm_is_recreated_by_the_redeploy_and_by_prune() {
    let bed = Npm::new("vanish");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let id = bed.host(&domain)["id"].as_u64().unwrap();
    let c = bed.npm_delete(id);
    assert_eq!(c, 200);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    bed.assert_serves(&domain);

    let id = bed.host(&domain)["id"].as_u64().unwrap();
    assert_eq!(bed.npm_delete(id), 200);
    let prune = bed.tf(&["prune"]);
    prune.code(0);
    assert!(prune.stdout.contains("has no proxy host"), "{}", prune.stdout);
    bed.assert_serves(&domain);

    // Pointed elsewhere behind our back: repaired.
    let id = bed.host(&domain)["id"].as_u64().unwrap();
    assert_eq!(bed.npm_put(id, &json!({"forward_host": "somewhere-else"})), 200);
    bed.tf(&["prune"]).code(0);
    bed.assert_serves(&domain);
    assert!(bed.tf(&["prune"]).stdout.is_empty(), "a second prune has nothing to do");
}

impl Npm {
    fn npm_call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> u16 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let c = crate::support::client();
            let login: Value = c
                .post(format!("{}/api/tokens", self.npm.url()))
                .json(&json!({"identity": EMAIL, "secret": PW}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let token = login["token"].as_str().unwrap().to_owned();
            let mut req = c.request(method, format!("{}/api{path}", self.npm.url())).bearer_auth(token);
            if let Some(b) = body {
                req = req.json(b);
            }
            req.send().await.unwrap().status().as_u16()
        })
    }

    /// Deletes a host through NPM's API, as its UI does.
    fn npm_delete(&self, id: u64) -> u16 {
        self.npm_call(reqwest::Method::DELETE, &format!("/nginx/proxy-hosts/{id}"), None)
    }

    /// Changes a host through NPM's API, as its UI does.
    fn npm_put(&self, id: u64, body: &Value) -> u16 {
        self.npm_call(reqwest::Method::PUT, &format!("/nginx/proxy-hosts/{id}"), Some(body))
    }
}

fn caddy_bed(prefix: &str, caddy: &Caddy) -> Sandbox {
    let sb = Sandbox::new(prefix);
    sb.config_with(
        &format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", caddy.admin_url()),
        "env = { MESSAGE = \"the app\" }",
        "",
    );
    sb.watch(Watch::Caddy(caddy.admin_url()));
    sb
}

/// Scenario 1, Caddy: Caddy restarted without `--resume` forgets every route added through its
/// API. The redeploy recreates the route (exit 0, real traffic flows), and so does `prune`.
#[test]
fn routes_lost_in_a_caddy_restart_are_recreated_by_the_redeploy_and_by_prune() {
    let caddy = Caddy::start();
    let sb = caddy_bed("cdyreset", &caddy);
    let host = sb.host(None);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&host), (200, "the app\n".to_owned()));
    caddy.reset();
    assert_eq!(caddy.get(&host), (200, String::new()), "no route: Caddy's empty answer");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&host), (200, "the app\n".to_owned()));
    caddy.reset();
    let prune = sb.run_tf(&["prune"]);
    prune.code(0);
    assert!(prune.stdout.contains("has no proxy host"), "{}", prune.stdout);
    assert_eq!(caddy.get(&host), (200, "the app\n".to_owned()));
    assert_eq!(sb.containers().len(), 1);
}

/// Scenario 3: a hand-written catch-all route. Ours goes before it, so the URL serves the app,
/// and other names still reach the catch-all. A server with no `routes` key works too.
#[test]
fn a_route_goes_before_a_catch_all_and_a_server_without_routes_gets_one() {
    let catch_all = json!([{"handle": [{"handler": "static_response", "body": "catch-all"}]}]);
    let caddy = Caddy::start_with(Some(catch_all));
    let sb = caddy_bed("cdycatch", &caddy);
    let host = sb.host(None);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&host), (200, "the app\n".to_owned()), "the route matches before the catch-all");
    assert_eq!(caddy.get("other.test.local"), (200, "catch-all".to_owned()));
    let routes = crate::support::caddy::routes(&caddy.admin_url());
    assert_eq!(routes.len(), 2);
    assert!(routes[0]["@id"].as_str().unwrap().starts_with("tiny-forge-"), "{routes:?}");
    // A redeploy keeps it in front.
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&host), (200, "the app\n".to_owned()));

    let bare = Caddy::start_with(None);
    let sb = caddy_bed("cdybare", &bare);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(bare.get(&sb.host(None)), (200, "the app\n".to_owned()));
    sb.run_tf(&["-q", "remove", &sb.project, "dev", "v1"]).code(0);
    sb.assert_nothing_left();
}

/// Scenario 2: project `P-2` (default tag) and project `P` with tag `2` fold to one host name.
/// The second deploy is refused (exit 1) and touches nothing; its rollback and `remove` leave
/// the first project's host alone.
#[test]
fn two_slots_that_fold_to_one_host_name_are_refused_not_taken_over() {
    let sb = Sandbox::new("clash");
    let npm = NpmDouble::start(EMAIL, PW);
    let other = sb.other_project("2");
    let tables = format!(
        "{}\n[projects.{other}]\nimage = \"{repo}\"\nport = 8080\n[projects.{other}.stages.dev]\ndefault_tag = \"v1\"\n",
        crate::support::npm_proxy(&npm.url(), EMAIL, "TF_TEST_NPM_PASSWORD"),
        repo = crate::support::images().repo,
    );
    sb.config_with(&tables, "", "");
    sb.watch(Watch::Npm(npm.view()));
    retag("v2", "2");
    let tf = |args: &[&str]| Run::from(sb.tf(args).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap());
    tf(&["-q", "deploy", &other, "dev"]).code(0);
    let domain = format!("stage-dev-{other}.test.local");
    assert_eq!(sb.host(Some("2")), domain, "the two slots fold to one name");
    let before = npm.hosts();
    assert_eq!(before[0]["meta"]["tiny_forge_slot"], format!("{other}/dev/v1"));
    let serving = sb.instances();

    let refused = tf(&["deploy", &sb.project, "dev", "2"]);
    refused.code(1);
    let line = refused.error_line();
    assert!(
        line.contains(&format!("{other}/dev/v1")) && line.contains(&format!("{}/dev/2", sb.project)),
        "names both slots: {line}"
    );
    assert!(line.contains("tag_subdomain"), "says which pattern to change: {line}");
    assert_eq!(npm.hosts(), before, "the other project's host is untouched");
    assert_eq!(sb.containers(), Vec::<String>::new(), "nothing of the refused deploy is left");
    assert!(sb.instances().iter().all(|r| r.project == other), "{:?}", sb.instances());
    sb.assert_only_left(&serving);
    tf(&["remove", &sb.project, "dev", "2"]).code(0);
    tf(&["prune"]).code(0);
    assert_eq!(npm.hosts(), before, "neither remove nor prune touch it");
    let others = crate::support::docker(&[
        "ps",
        "--filter",
        &format!("label=dev.tiny-forge.project={other}"),
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(others.lines().count(), 1, "the other project's instance still runs");
}

/// Scenario 4: a redeploy whose switch-back fails exits 3 and keeps the new container (the host
/// points at it). The cron `prune` repairs the host first, then removes it.
#[test]
fn a_failed_switch_back_exits_3_and_prune_repairs_the_host_before_removing_the_container() {
    let bed = Npm::new("swback");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let old = bed.assert_serves(&domain);
    let mut child = bed.spawn(&["deploy", &bed.sb.project, "dev", "--force"], "proxy:60s");
    bed.sb.wait_for_log(&mut child, "pausing");
    let new = bed.host(&domain)["forward_host"].as_str().unwrap().to_owned();
    assert_ne!(new, old, "switched to the new container");
    bed.npm.inject(When::Next("PUT", "/api/nginx/proxy-hosts/"), Fault::Status500);
    signal("TERM", child.id());
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(3).stderr_has(&format!("container {new}")).stderr_has("tiny-forge prune");
    assert_eq!(bed.host(&domain)["forward_host"], new.as_str(), "still on the new one");
    assert!(bed.sb.containers().contains(&format!("{new} running")), "kept: the host points at it");
    let list = bed.tf(&["list"]);
    assert!(list.stdout.contains("LEFT BEHIND") && list.stdout.contains(&new), "{}", list.stdout);

    let prune = bed.tf(&["prune"]);
    prune.code(0);
    assert_eq!(bed.assert_serves(&domain), old, "the host points at the live instance again");
    assert!(!bed.sb.containers().iter().any(|c| c.starts_with(&new)), "then the container went");
    assert!(!bed.tf(&["list"]).stdout.contains("LEFT BEHIND"));
}

/// Scenario 5: kill -9 between the proxy switch and its record. The next deploy's recovery
/// points the host back at the running instance before it removes the dead deploy's container.
#[test]
fn kill_9_after_the_switch_is_recovered_with_the_host_on_a_running_instance() {
    let bed = Npm::new("kill9sw");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let old = bed.assert_serves(&domain);
    let mut child = bed.spawn(&["deploy", &bed.sb.project, "dev", "--force"], "proxy:60s");
    bed.sb.wait_for_log(&mut child, "pausing");
    signal("KILL", child.id());
    drop(child.wait_with_output());
    let dead = bed.host(&domain)["forward_host"].as_str().unwrap().to_owned();
    assert_ne!(dead, old);
    // Another tag's deploy of the stage recovers the dead one first.
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev", "v2"]).code(0);
    assert_eq!(bed.assert_serves(&domain), old);
    assert!(!bed.sb.containers().iter().any(|c| c.starts_with(&dead)));
    let d = bed.sb.deploys().into_iter().find(|d| d.status.as_str() == "interrupted").expect("marked interrupted");
    assert!(d.leftovers.is_empty(), "{:?}", d.leftovers);
}

/// Scenario 6: SIGINT while a proxy create is in flight. NPM stalls, then creates the host
/// anyway. The rollback cannot see it yet: exit 3 with the host listed, never a claimed
/// complete rollback; `prune` after the stall deletes it.
#[test]
fn sigint_during_an_in_flight_create_exits_3_and_prune_deletes_the_late_host() {
    let bed = Npm::new("inflight");
    let domain = bed.sb.host(None);
    bed.npm.inject(When::Next("POST", "/api/nginx/proxy-hosts"), Fault::Stall(Duration::from_secs(3)));
    let child = bed.spawn(&["deploy", &bed.sb.project, "dev"], "");
    wait_until("the create to be sent", || {
        bed.npm.calls().iter().any(|(m, p)| m == "POST" && p == "/api/nginx/proxy-hosts")
    });
    signal("INT", child.id());
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(3).stderr_has(&format!("proxy host {domain}")).stderr_has("may still land");
    wait_until("the stalled create to land", || bed.npm.hosts().len() == 1);
    bed.tf(&["prune"]).code(0);
    bed.sb.assert_nothing_left();
    assert_eq!(bed.sb.deploys()[0].status.as_str(), "interrupted");
}

/// Scenario 7: the switch-back fails during crash recovery: a leftover (shown by `list`), a
/// non-zero `prune`, and a repair on the next run.
#[test]
fn a_switch_back_failing_in_recovery_is_a_leftover_and_the_next_prune_repairs_it() {
    let bed = Npm::new("recfail");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let old = bed.assert_serves(&domain);
    let mut child = bed.spawn(&["deploy", &bed.sb.project, "dev", "--force"], "proxy:60s");
    bed.sb.wait_for_log(&mut child, "pausing");
    signal("KILL", child.id());
    drop(child.wait_with_output());
    bed.npm.inject(When::Next("PUT", "/api/nginx/proxy-hosts/"), Fault::Status500);
    let first = bed.tf(&["prune"]);
    first.code(3);
    assert!(first.stderr.contains("Internal Error"), "{}", first.stderr);
    assert!(bed.tf(&["list"]).stdout.contains("LEFT BEHIND"));
    let second = bed.tf(&["prune"]);
    second.code(0);
    assert_eq!(bed.assert_serves(&domain), old);
    assert_eq!(bed.sb.containers().len(), 1);
    assert!(!bed.tf(&["list"]).stdout.contains("LEFT BEHIND"));
}

/// Scenario 8: a release that changes `port` and fails after the switch: the switch-back uses
/// the old instance's own port.
#[test]
fn a_switch_back_after_a_port_change_uses_the_old_instances_port() {
    let bed = Npm::new("portchg");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let old = bed.assert_serves(&domain);
    let serving = bed.sb.instances();
    let text = std::fs::read_to_string(&bed.sb.config)
        .unwrap()
        .replace("port = 8080", "port = 9090\nenv = { PORT = \"9090\" }");
    bed.sb.write_config(&text);
    let mut child = bed.spawn(&["deploy", &bed.sb.project, "dev", "--force"], "proxy:60s");
    bed.sb.wait_for_log(&mut child, "pausing");
    assert_eq!(bed.host(&domain)["forward_port"], 9090, "the new release listens on 9090");
    signal("TERM", child.id());
    Run::from(child.wait_with_output().unwrap()).code(130);
    let h = bed.host(&domain);
    assert_eq!((h["forward_host"].as_str().unwrap(), h["forward_port"].as_u64().unwrap()), (old.as_str(), 8080));
    bed.sb.assert_only_left(&serving);
}

/// Scenario 9: two state files on one host are strangers. A create conflict never removes the
/// other's container, and `prune` with one state file touches nothing of the other's.
#[test]
fn two_state_files_never_touch_each_others_containers_or_hosts() {
    let bed = Npm::new("twostate");
    let domain = bed.sb.host(None);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    let first = bed.assert_serves(&domain);
    let other_state = bed.sb.dir.path().join("other").join("state.db");
    let other = other_state.to_str().unwrap();
    // Same slot, deploy id 1 again: the container name is taken by the other state file's.
    let clash = bed.tf(&["--state", other, "deploy", &bed.sb.project, "dev"]);
    clash.code(1);
    let said = clash.error_line();
    assert!(
        said.contains(&format!(
            "container tf-{}-dev-v1-1 already exists and belongs to another state file",
            bed.sb.project
        )) && said.contains("give each state file projects of its own"),
        "{said}"
    );
    assert_eq!(bed.assert_serves(&domain), first, "the other state file's instance is untouched");
    // Another tag: its own container and host, marked with its own state.
    bed.tf(&["--state", other, "-q", "deploy", &bed.sb.project, "dev", "v2"]).code(0);
    let v2 = bed.sb.host(Some("v2"));
    assert_eq!(bed.host(&v2)["meta"]["tiny_forge_slot"], format!("{}/dev/v2", bed.sb.project));
    // Each prune leaves the other's alone.
    bed.tf(&["prune"]).code(0);
    bed.tf(&["--state", other, "prune"]).code(0);
    assert_eq!(bed.assert_serves(&domain), first);
    assert_eq!(bed.sb.containers().len(), 2);
    assert_eq!(bed.npm.hosts().len(), 2);
    // The first state file cannot take the second's slot either (its container name or its
    // host is the other's): refused, nothing of the other's touched.
    let v2_container = bed.host(&v2)["forward_host"].as_str().unwrap().to_owned();
    let taken = bed.tf(&["deploy", &bed.sb.project, "dev", "v2"]);
    taken.code(1);
    assert_eq!(bed.host(&v2)["forward_host"], v2_container.as_str());
    assert!(bed.sb.containers().contains(&format!("{v2_container} running")));
    bed.tf(&["--state", other, "-q", "remove", &bed.sb.project, "dev", "v2"]).code(0);
}

/// A container someone else made under the name a deploy's container would get: the create is
/// refused with a line that says so, and the rollback leaves that container alone.
#[test]
fn a_container_name_taken_by_someone_else_is_refused_and_left_alone() {
    let bed = Npm::new("nametaken");
    let name = format!("tf-{}-dev-v1-1", bed.sb.project);
    let label = format!("dev.tiny-forge.project={}", bed.sb.project);
    // Retried: other tests' image cleanup may take the image between the pull and the create.
    let image = format!("{}:v1", crate::support::images().repo);
    let made = (0..5).any(|_| {
        crate::support::docker_ok(&["pull", "-q", &image])
            && crate::support::docker_ok(&["create", "--name", &name, "--label", &label, &image])
    });
    assert!(made, "cannot create {name}");
    let run = bed.tf(&["deploy", &bed.sb.project, "dev"]);
    run.code(1);
    assert!(
        run.error_line().contains(&format!("container {name} already exists and tiny-forge did not make it")),
        "{}",
        run.stderr
    );
    assert_eq!(bed.sb.containers(), [format!("{name} created")], "the other container is untouched");
    assert_eq!(bed.npm.hosts().len(), 0);
    assert!(bed.sb.instances().is_empty());
    assert_eq!(bed.sb.deploys()[0].status.as_str(), "failed");
}

/// Scenario 10: `rollback` twice does not go back to the version just rolled back from.
#[test]
fn rollback_twice_does_not_return_to_what_was_rolled_back() {
    let bed = Npm::new("rbtwice");
    let moving = format!("rb-{}", bed.sb.project);
    let text = std::fs::read_to_string(&bed.sb.config)
        .unwrap()
        .replace("default_tag = \"v1\"", &format!("default_tag = \"{moving}\""));
    bed.sb.write_config(&text);
    retag("v2", &moving);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    retag("v3", &moving);
    bed.tf(&["-q", "deploy", &bed.sb.project, "dev"]).code(0);
    bed.tf(&["-q", "rollback", &bed.sb.project, "dev"]).code(0);
    let again = bed.tf(&["rollback", &bed.sb.project, "dev"]);
    again.code(2);
    assert!(again.error_line().contains("nothing to roll back to"), "{}", again.stderr);
    let v3 = bed.sb.deploys().into_iter().find(|d| d.status.as_str() == "rolled_back").unwrap();
    bed.tf(&["-q", "rollback", &bed.sb.project, "dev", "--to", &v3.id.to_string()]).code(0);
}

/// Issue 17: a compensation that hangs is cut off by the proxy's timeout and reported (exit 3),
/// never claimed done; prune finishes it.
#[test]
fn a_delete_that_hangs_in_the_rollback_exits_3_and_prune_finishes() {
    let bed = Npm::with("hangdel", "timeout = \"300ms\"\n", "", "");
    let domain = bed.sb.host(None);
    let mut child = bed.spawn(&["deploy", &bed.sb.project, "dev", "--force"], "proxy:60s");
    bed.sb.wait_for_log(&mut child, "pausing");
    bed.npm.inject(When::Next("DELETE", "/api/nginx/proxy-hosts/"), Fault::Stall(Duration::from_secs(2)));
    signal("TERM", child.id());
    let out = Run::from(child.wait_with_output().unwrap());
    out.code(3).stderr_has(&format!("proxy host {domain}"));
    std::thread::sleep(Duration::from_secs(2));
    bed.tf(&["prune"]).code(0);
    bed.sb.assert_nothing_left();
}
