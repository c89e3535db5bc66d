//! The Caddy backend with a real Caddy in the path: requests with the instance's Host header
//! reach the deployed container; a rolled-back route is gone from Caddy's config.

use std::time::Duration;

use serde_json::{Value, json};
use tiny_forge::domain::Address;
use tiny_forge::proxy::{CaddyProxy, Deleted, Marker, Proxy as _, ProxyError, Removed, Upstream, ensure, remove};

use crate::support::caddy::{Caddy, OlderAdmin, routes};
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
    assert_eq!(caddy.get("unrelated.test.local"), (200, String::new()), "other names are not routed there");
    sb.run_tf(&["deploy", &sb.project, "dev"]).code(0);
    assert_eq!(caddy.get(&sb.host(None)), (200, "via caddy\n".to_owned()), "still served after a blue/green redeploy");
    assert_eq!(sb.containers().len(), 1);
}

#[test]
fn after_a_rollback_caddy_no_longer_routes_there() {
    let (sb, caddy) = bed("caddyrb");
    // Pause after the proxy step, check that traffic flows, then interrupt: the rollback must
    // delete the route before it removes the container.
    let mut child = sb.spawn_tf(&["deploy", &sb.project, "dev", "v2"], &[("TINY_FORGE_TEST_PAUSE_AFTER", "proxy:60s")]);
    sb.wait_for_log(&mut child, "pausing");
    assert_eq!(caddy.get(&sb.host(Some("v2"))), (200, "via caddy\n".to_owned()));
    crate::support::run(std::process::Command::new("kill").args(["-TERM", &child.id().to_string()]));
    let out = child.wait_with_output().unwrap();
    let run = Run::from(out);
    run.code(130);
    // No route: Caddy's empty 200. A route left to the removed container would answer 502.
    assert_eq!(caddy.get(&sb.host(Some("v2"))), (200, String::new()), "no route any more");
    let id = format!("tiny-forge-{}", sb.host(Some("v2")));
    let left: Vec<Value> = routes(&caddy.admin_url()).into_iter().filter(|r| r["@id"] == id.as_str()).collect();
    assert_eq!(left, Vec::<Value>::new(), "Caddy's config has no route {id} any more");
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

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(f)
}

/// `DELETE /id/ID` on the admin API at `admin`: (status, body).
fn delete_by_id(admin: &str, id: &str) -> (u16, Value) {
    block_on(async {
        let r = crate::support::client().delete(format!("{admin}/id/{id}")).send().await.unwrap();
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    })
}

/// `PATCH` of the admin API's `path` at `admin` with `value`; fails the test unless it is taken.
fn patch(admin: &str, path: &str, value: &Value) {
    let status = block_on(async {
        crate::support::client().patch(format!("{admin}{path}")).json(value).send().await.unwrap().status()
    });
    assert!(status.is_success(), "PATCH {path}: {status}");
}

/// The routes of srv0 serving `domain`, read from the admin API.
fn routes_for(admin: &str, domain: &str) -> Vec<Value> {
    routes(admin).into_iter().filter(|r| r["match"][0]["host"][0] == domain).collect()
}

/// Caddy answers an unknown `@id` with 404 (this version) or 500 `unknown object ID` (older
/// ones), and `delete` counts both as "already gone". So a wrong id would pass `delete`
/// silently; `remove` must not let it: it looks the route up by name and reads it back after the
/// delete, and a route of ours still there is an error. Run against this Caddy and against it
/// answering as older versions did.
#[test]
fn a_delete_by_a_wrong_id_is_already_gone_to_delete_and_an_error_to_remove() {
    let caddy = Caddy::start();
    let older = OlderAdmin::start(&caddy);
    let unknown = json!({"error": "unknown object ID 'tiny-forge-nowhere'"});
    assert_eq!(delete_by_id(&caddy.admin_url(), "tiny-forge-nowhere"), (404, unknown.clone()), "this Caddy");
    assert_eq!(delete_by_id(&older.url(), "tiny-forge-nowhere"), (500, unknown), "as older Caddy answered");

    let admin = caddy.admin_url();
    let marker = Marker { state: "s1".into(), slot: "shop/dev/latest".into() };
    let upstream = Upstream { name: "tf-shop-dev-latest-1".into(), ip: Some([10, 0, 0, 2].into()), port: 8080 };
    for (api, domain) in [(admin.clone(), "current.test.local"), (older.url(), "older.test.local")] {
        let proxy = CaddyProxy::new(
            api.clone(),
            "srv0".into(),
            Duration::from_secs(5),
            Address::Ip,
            tiny_forge::http::client().unwrap(),
        );
        let id = block_on(ensure(&proxy, domain, &marker, &upstream, &tiny_forge::proxy::HostAccess::Public))
            .unwrap()
            .0
            .id()
            .unwrap()
            .to_owned();
        assert_eq!(id, format!("tiny-forge-{domain}"));

        // `delete` by a wrong id: "already gone", and the route is still there.
        let deleted = block_on(proxy.delete("tiny-forge-nowhere", domain)).unwrap();
        assert_eq!(deleted, Deleted::AlreadyGone, "{api}");
        assert_eq!(routes_for(&admin, domain).len(), 1, "{api}: the route is untouched");

        // Our route, marked, without its `@id`: `remove` finds it by its host name, its delete
        // by id misses, and the read-back says so.
        let i = routes(&admin).iter().position(|r| r["@id"] == id.as_str()).unwrap();
        let mut route = routes(&admin)[i].clone();
        route.as_object_mut().unwrap().remove("@id");
        patch(&admin, &format!("/config/apps/http/servers/srv0/routes/{i}"), &route);
        match block_on(remove(&proxy, domain, &marker)) {
            Err(ProxyError::Offline { host, message }) => {
                assert_eq!(host, domain);
                assert!(message.contains("still there after its delete"), "{api}: {message}");
            }
            other => panic!("{api}: a delete that missed passed as {other:?}"),
        }
        assert_eq!(routes_for(&admin, domain), vec![route], "{api}: the route is still there, as it was");

        // With its `@id` back, `remove` deletes it, and a second `remove` finds nothing.
        let i = routes(&admin).iter().position(|r| r["match"][0]["host"][0] == domain).unwrap();
        let mut route = routes(&admin)[i].clone();
        route["@id"] = json!(id);
        patch(&admin, &format!("/config/apps/http/servers/srv0/routes/{i}"), &route);
        assert_eq!(block_on(remove(&proxy, domain, &marker)).unwrap(), Removed::Deleted { id: id.clone() }, "{api}");
        assert_eq!(routes_for(&admin, domain), Vec::<Value>::new(), "{api}");
        assert_eq!(block_on(remove(&proxy, domain, &marker)).unwrap(), Removed::AlreadyGone, "{api}");
    }
}
