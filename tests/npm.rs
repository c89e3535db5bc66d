//! The Nginx Proxy Manager backend against the strict NPM double, with real Docker.

use std::time::Duration;

use serde_json::json;

use tiny_forge::store::Store as _;

use crate::support::npm::{Fault, NpmDouble, When};
use crate::support::{Run, Sandbox};

const EMAIL: &str = "ops@example.com";
const PASSWORD: &str = "s3cret-Pw-7781";

struct Bed {
    sb: Sandbox,
    npm: NpmDouble,
}

impl Bed {
    fn new(prefix: &str, proxy_extra: &str, project_extra: &str) -> Self {
        let sb = Sandbox::new(prefix);
        let npm = NpmDouble::start(EMAIL, PASSWORD);
        let tables = format!(
            "{}{proxy_extra}
",
            crate::support::npm_proxy(&npm.url(), EMAIL, "TF_TEST_NPM_PASSWORD")
        );
        sb.config_with(&tables, project_extra, "");
        sb.watch(crate::support::Watch::Npm(npm.view()));
        Self { sb, npm }
    }

    fn deploy(&self, tag: Option<&str>) -> Run {
        let mut args = vec!["--output", "plain", "deploy", self.sb.project.as_str(), "dev"];
        args.extend(tag);
        Run::from(self.sb.tf(&args).env("TF_TEST_NPM_PASSWORD", PASSWORD).output().unwrap())
    }

    #[track_caller]
    fn assert_nothing_left(&self) {
        self.sb.assert_nothing_left();
        assert_eq!(self.npm.hosts(), Vec::<serde_json::Value>::new(), "proxy hosts left behind");
    }

    fn logins(&self) -> usize {
        self.npm.calls().iter().filter(|(m, p)| m == "POST" && p == "/api/tokens").count()
    }
}

#[test]
fn deploy_creates_a_marked_host_for_the_slot_forwarding_to_the_container() {
    let bed = Bed::new("npmok", "", "");
    let run = bed.deploy(None);
    run.code(0);
    let domain = bed.sb.host(None);
    assert_eq!(run.stdout.trim(), format!("http://{domain}"));
    let hosts = bed.npm.hosts();
    assert_eq!(hosts.len(), 1);
    let h = &hosts[0];
    assert_eq!(h["domain_names"], json!([domain]));
    let container = bed.sb.instances()[0].container_name.clone();
    assert_eq!(h["forward_host"], container.as_str(), "forwards to the container's name");
    assert_eq!(h["forward_port"], 8080);
    assert_eq!(h["meta"]["tiny_forge_managed"], true);
    assert_eq!(h["certificate_id"], 0, "no certificate requested per host");
    assert_eq!(bed.sb.instances()[0].proxy_host_id.as_deref(), Some("1"));
    assert_eq!(bed.logins(), 1, "one login for the whole deploy");
}

#[test]
fn tag_slots_get_their_own_host_and_the_configured_certificate() {
    let bed = Bed::new("npmtag", "certificate_id = 7", "");
    bed.deploy(Some("v2")).code(0);
    let h = &bed.npm.hosts()[0];
    assert_eq!(h["domain_names"], json!([bed.sb.host(Some("v2"))]));
    assert_eq!(h["certificate_id"], 7);
    assert_eq!(h["ssl_forced"], true);
}

#[test]
fn health_failure_never_creates_a_host() {
    let bed = Bed::new("npmsick", "", "env = { HEALTH_STATUS = \"500\" }");
    bed.deploy(None).code(1);
    bed.assert_nothing_left();
    assert!(!bed.npm.calls().iter().any(|(m, p)| m == "POST" && p.starts_with("/api/nginx")), "no create was sent");
}

#[test]
fn token_expired_between_create_and_rollback_the_host_is_still_deleted() {
    let bed = Bed::new("npmexp", "", "");
    // The read-back after create (the second host list) fails; by the time the rollback
    // deletes, the token has expired.
    bed.npm.inject(When::NextAfter("GET", "/api/nginx/proxy-hosts", 1), Fault::Status500);
    bed.npm.inject(When::Next("DELETE", "/api/nginx/proxy-hosts/"), Fault::ExpireTokens);
    let run = bed.deploy(None);
    run.code(1).stderr_has("Internal Error");
    bed.assert_nothing_left();
    assert_eq!(bed.logins(), 2, "logged in again after `Token has expired`");
    let deletes = bed.npm.calls().iter().filter(|(m, _)| m == "DELETE").count();
    assert_eq!(deletes, 2, "the delete was retried once with the new token");
}

#[test]
fn npm_500_on_create_removes_the_container() {
    let bed = Bed::new("npm500", "", "");
    bed.npm.inject(When::Next("POST", "/api/nginx/proxy-hosts"), Fault::Status500);
    let run = bed.deploy(None);
    run.code(1);
    assert!(run.error_line().contains("proxy failed") && run.error_line().contains("Internal Error"), "{}", run.stderr);
    bed.assert_nothing_left();
}

#[test]
fn redeploy_of_an_occupied_slot_switches_the_host() {
    let bed = Bed::new("npmswitch", "", "");
    bed.deploy(None).code(0);
    bed.deploy(Some("--force")).code(0);
    let hosts = bed.npm.hosts();
    assert_eq!(hosts.len(), 1, "switched, not recreated");
    let instances = bed.sb.instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(hosts[0]["forward_host"], instances[0].container_name.as_str());
    assert!(bed.npm.calls().iter().any(|(m, p)| m == "PUT" && p == "/api/nginx/proxy-hosts/1"));
    assert_eq!(bed.sb.containers().len(), 1, "the old container was removed after the switch");
}

#[test]
fn a_foreign_host_with_the_same_domain_is_refused_and_left_untouched() {
    let bed = Bed::new("npmforeign", "", "");
    let id = bed.npm.add_host(&bed.sb.host(None), "someone-else", json!({}));
    let run = bed.deploy(None);
    run.code(1);
    let line = run.error_line();
    assert!(line.contains(&format!("id {id}")) && line.contains("not created by tiny-forge"), "{line}");
    let hosts = bed.npm.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["forward_host"], "someone-else", "untouched");
    assert!(!bed.npm.calls().iter().any(|(m, _)| m == "PUT" || m == "DELETE"));
    bed.sb.assert_nothing_left();
}

#[test]
fn our_own_orphaned_host_is_adopted() {
    let bed = Bed::new("npmadopt", "", "");
    let id = bed.npm.add_host(&bed.sb.host(None), "tf-gone-container", json!({"tiny_forge_managed": true}));
    bed.deploy(None).code(0);
    let hosts = bed.npm.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["id"], id);
    assert_eq!(hosts[0]["forward_host"], bed.sb.instances()[0].container_name.as_str());
    assert_eq!(bed.sb.instances()[0].proxy_host_id.as_deref(), Some(id.to_string().as_str()));
}

#[test]
fn a_host_nginx_refuses_fails_the_deploy_with_nginx_err_and_is_deleted() {
    let bed = Bed::new("npmoffline", "advanced_config = \"bogus_directive on;\"", "");
    let run = bed.deploy(None);
    run.code(1);
    assert!(run.error_line().contains("offline") && run.error_line().contains("unknown directive"), "{}", run.stderr);
    bed.assert_nothing_left();
}

#[test]
fn unreachable_npm_fails_the_proxy_step_and_rolls_back() {
    let sb = Sandbox::new("npmdown");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    sb.config_with(
        &crate::support::npm_proxy(&format!("http://127.0.0.1:{port}"), EMAIL, "TF_TEST_NPM_PASSWORD"),
        "",
        "",
    );
    let run = Run::from(sb.tf(&["deploy", &sb.project, "dev"]).env("TF_TEST_NPM_PASSWORD", PASSWORD).output().unwrap());
    run.code(1);
    assert!(run.error_line().contains("unreachable"), "{}", run.stderr);
    sb.assert_nothing_left();
}

/// NPM stalls on the create, and then creates the host anyway (as real NPM does). The deploy
/// cannot know whether it will: it says so (exit 3, the host listed), keeps the container the
/// host may point at, and `prune`, run after the stall, takes both away.
#[test]
fn slow_npm_times_out_with_the_configured_timeout_and_the_late_host_is_pruned() {
    let bed = Bed::new("npmslow", "timeout = \"300ms\"", "");
    bed.npm.inject(When::Next("POST", "/api/nginx/proxy-hosts"), Fault::Stall(Duration::from_secs(3)));
    let run = bed.deploy(None);
    run.code(3).stderr_has("no answer within 300ms").stderr_has(&bed.sb.host(None)).stderr_has("may still land");
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(bed.npm.hosts().len(), 1, "the stalled create landed");
    let prune = Run::from(bed.sb.tf(&["prune"]).env("TF_TEST_NPM_PASSWORD", PASSWORD).output().unwrap());
    prune.code(0);
    bed.assert_nothing_left();
}

#[test]
fn npm_400_is_shown_with_npm_s_own_message_and_rolled_back() {
    let bed = Bed::new("npm400", "", "");
    // Someone else took the name between our look-up and our create.
    let msg = "stage-dev-x.test.local is already in use";
    bed.npm.inject(When::Next("POST", "/api/nginx/proxy-hosts"), Fault::Reject(400, msg));
    let run = bed.deploy(None);
    run.code(1);
    assert!(run.error_line().contains(&format!("(400): {msg}")), "{}", run.stderr);
    bed.assert_nothing_left();
}

#[test]
fn wrong_password_fails_with_npm_s_message_and_leaves_nothing() {
    let bed = Bed::new("npmpw", "", "");
    let run = Run::from(
        bed.sb.tf(&["deploy", &bed.sb.project, "dev"]).env("TF_TEST_NPM_PASSWORD", "wrong-password").output().unwrap(),
    );
    run.code(1);
    assert!(run.error_line().contains("Invalid email or password"), "{}", run.stderr);
    bed.assert_nothing_left();
}

#[test]
fn missing_password_variable_is_a_config_error_before_anything_happens() {
    let bed = Bed::new("npmnopw", "", "");
    let run =
        Run::from(bed.sb.tf(&["deploy", &bed.sb.project, "dev"]).env_remove("TF_TEST_NPM_PASSWORD").output().unwrap());
    run.code(2);
    assert!(run.error_line().contains("TF_TEST_NPM_PASSWORD"), "{}", run.stderr);
    assert!(!bed.sb.state.exists());
}

#[test]
fn no_secret_appears_in_output_logs_or_history() {
    let bed = Bed::new("npmsecret", "", "");
    bed.npm.inject(When::NextAfter("GET", "/api/nginx/proxy-hosts", 1), Fault::Status500);
    let failed = bed.deploy(None);
    failed.code(1);
    bed.assert_nothing_left();
    let ok = bed.deploy(None);
    ok.code(0);
    let json_run = Run::from(
        bed.sb
            .tf(&["--output", "json", "-v", "deploy", &bed.sb.project, "dev"])
            .env("TF_TEST_NPM_PASSWORD", PASSWORD)
            .output()
            .unwrap(),
    );
    let check = Run::from(bed.sb.tf(&["check"]).env("TF_TEST_NPM_PASSWORD", PASSWORD).output().unwrap());
    check.code(0);
    assert!(check.stdout.contains("logged in to"), "{}", check.stdout);
    let history = bed.sb.run_tf(&["--output", "json", "history"]);
    let mut everything = String::new();
    for r in [&failed, &ok, &json_run, &check, &history] {
        everything.push_str(&r.stdout);
        everything.push_str(&r.stderr);
    }
    for d in bed.sb.deploys() {
        everything.push_str(&bed.sb.run_tf(&["history", "show", &d.id.to_string()]).stdout);
    }
    let db = std::fs::read(&bed.sb.state).unwrap();
    assert!(!everything.contains(PASSWORD), "password printed");
    assert!(!everything.contains("tok-"), "token printed");
    assert!(!String::from_utf8_lossy(&db).contains(PASSWORD), "password stored");
}

/// Chaos seed 648426147, trial 754 (1,000-trial run): a deploy whose eviction could not delete
/// the evicted slot's host exited 0 though a host and a container were left. The deploy is live,
/// and what it could not clean up is a leftover: exit 3, listed, and `prune` finishes it.
#[test]
fn a_deploy_whose_eviction_cannot_delete_a_host_stays_live_exits_3_and_prune_finishes_it() {
    let bed = Bed::new("npmevict", "", "max_instances = 1");
    bed.deploy(Some("v1")).code(0);
    bed.npm.inject(When::Next("DELETE", "/api/nginx/proxy-hosts"), Fault::Status500);
    let run = bed.deploy(Some("v2"));
    assert_eq!(run.code, 3, "{}{}", run.stdout, run.stderr);
    let old_host = bed.sb.host(None);
    let listed = run.stderr.split("left behind:").nth(1).unwrap_or_default();
    assert!(listed.contains(&old_host), "the leftover is listed: {}", run.stderr);
    let live: Vec<_> = bed.sb.instances().into_iter().filter(|r| r.status.as_str() == "live").collect();
    assert_eq!(live.len(), 1);
    assert_eq!(live[0].tag, "v2", "the new instance is live");
    let url = format!("http://{}:8080/", bed.sb.container_ip(&live[0].container_name));
    assert_eq!(crate::support::http_get(&url), (200, "v2\n".to_owned()), "and serves");
    // History tells the same: the finished deploy's exit code is 3.
    let id = bed.sb.deploys().iter().map(|d| d.id.0).max().unwrap().to_string();
    let shown = bed.sb.run_tf(&["history", "show", &id, "--follow"]);
    assert_eq!(shown.code, 3, "{}{}", shown.stdout, shown.stderr);
    let pruned = Run::from(bed.sb.tf(&["prune"]).env("TF_TEST_NPM_PASSWORD", PASSWORD).output().unwrap());
    assert_eq!(pruned.code, 0, "{}{}", pruned.stdout, pruned.stderr);
    let hosts = bed.npm.hosts();
    assert_eq!(hosts.len(), 1, "only v2's host is left: {hosts:?}");
    assert_eq!(bed.sb.containers().len(), 1, "only v2's container is left: {:?}", bed.sb.containers());
    assert!(bed.sb.store().leftovers(&tiny_forge::store::Filter::default()).unwrap().is_empty());
}
