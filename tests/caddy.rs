//! The Caddy backend with a real Caddy in the path: requests with the instance's Host header
//! reach the deployed container.

use crate::support::caddy::Caddy;
use crate::support::{Run, Sandbox};

fn bed(prefix: &str) -> (Sandbox, Caddy) {
    let caddy = Caddy::start();
    let sb = Sandbox::new(prefix);
    sb.config_with(
        &format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", caddy.admin_url()),
        "env = { MESSAGE = \"via caddy\" }",
        "",
    );
    sb.watch(crate::support::Watch::Caddy(caddy.admin_url()));
    (sb, caddy)
}

#[test]
fn requests_through_caddy_reach_the_deployed_container() {
    let (sb, caddy) = bed("caddyok");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(0);
    assert_eq!(run.stdout.trim(), format!("http://{}", sb.host(None)));
    assert_eq!(caddy.get(&sb.host(None)), (200, "via caddy\n".to_owned()));
    assert_eq!(caddy.get("unrelated.test.local").1, "", "other names are not routed there");
    sb.run_tf(&["deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&sb.host(None)), (200, "via caddy\n".to_owned()), "still served after a blue/green redeploy");
    assert_eq!(sb.containers().len(), 1);
}

#[test]
fn after_a_rollback_caddy_no_longer_routes_there() {
    let (sb, caddy) = bed("caddyrb");
    // Pause after the proxy step, check that traffic flows, then interrupt: the rollback must
    // delete the route before it removes the container.
    let child = sb.spawn_tf(&["deploy", &sb.project, "dev", "v2"], &[("TINY_FORGE_TEST_PAUSE_AFTER", "proxy:60s")]);
    sb.wait_for_log("pausing");
    assert_eq!(caddy.get(&sb.host(Some("v2"))), (200, "via caddy\n".to_owned()));
    crate::support::run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let run = Run::from(out);
    run.code(130);
    assert_eq!(caddy.get(&sb.host(Some("v2"))).1, "", "no route any more");
    sb.assert_nothing_left();
    assert_eq!(sb.deploys()[0].status.as_str(), "interrupted");
}

#[test]
fn a_foreign_route_for_the_same_host_is_refused() {
    let (sb, caddy) = bed("caddyforeign");
    let route = serde_json::json!({"match": [{"host": [sb.host(None)]}], "handle": [{"handler": "static_response", "body": "theirs"}]});
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = crate::support::client()
            .post(format!("{}/config/apps/http/servers/srv0/routes", caddy.admin_url()))
            .json(&route)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    });
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1);
    assert!(run.error_line().contains("not created by tiny-forge"), "{}", run.stderr);
    assert_eq!(caddy.get(&sb.host(None)).1, "theirs", "untouched");
    sb.assert_nothing_left();
}

#[test]
fn a_stopped_caddy_fails_the_proxy_step_and_the_rollback_leaves_nothing() {
    let (sb, caddy) = bed("caddydown");
    drop(caddy);
    // Caddy is gone with its config: there is no proxy left to ask.
    sb.watch(crate::support::Watch::None);
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1);
    let line = run.error_line();
    assert!(line.contains("proxy failed") && line.contains("unreachable"), "{}", run.stderr);
    sb.assert_nothing_left();
    assert!(sb.deploys()[0].error.as_deref().unwrap().starts_with("proxy failed"));
}
