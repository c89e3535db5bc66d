//! Issue 26: `serve` shows its instances (`GET /v1/instances`, the web page) from a view of the
//! managed containers kept current by the engine's event stream, not from a container list per
//! request. Through the fault socket: once the view is current, a failing container list does
//! not touch what the API answers, and changes made behind the server's back (a container
//! stopped, removed, a deploy by another process) show up.

use serde_json::Value;

use super::{Server, call, token, wait_for};
use crate::support::faulty_docker::{FaultyDocker, path};
use crate::support::{Sandbox, docker};

/// `GET /v1/instances` as (container name → container state).
fn states(server: &Server, token: &str) -> Vec<(String, String)> {
    let (status, body) = call("GET", &format!("{}/v1/instances", server.url), token, None);
    assert_eq!(status, 200, "{body}");
    let items: Vec<Value> = serde_json::from_str(&body).unwrap();
    items
        .iter()
        .filter_map(|i| Some((i["container"].as_str()?.to_owned(), i["container_state"].as_str()?.to_owned())))
        .collect()
}

fn state_of(all: &[(String, String)], name: &str) -> Option<String> {
    all.iter().find(|(n, _)| n == name).map(|(_, s)| s.clone())
}

#[test]
fn serve_answers_instances_from_its_event_fed_view_not_a_list_per_request() {
    let sb = Sandbox::new("srvview");
    sb.config("", "");
    for tag in ["v1", "v2"] {
        sb.run_tf(&["-q", "deploy", &sb.project, "dev", tag]).code(0);
    }
    let names: Vec<String> =
        ["v1", "v2"].iter().map(|t| sb.instances().into_iter().find(|r| r.tag == *t).unwrap().container_name).collect();
    let read = token(&sb, &["--name", "reader", "--can", "read"]);
    let faulty = FaultyDocker::start();
    let server = Server::start(&sb, &[("DOCKER_HOST", &faulty.host())]);
    // Current once both show as running (the first answers may come from a list).
    wait_for(|| {
        let all = states(&server, &read);
        names.iter().all(|n| state_of(&all, n).as_deref() == Some("running")).then_some(())
    });
    // Every container list fails from now on: the answers do not change, and none is asked.
    faulty.fail("GET", path::CONTAINER_LIST, 500);
    for _ in 0..5 {
        let all = states(&server, &read);
        for n in &names {
            assert_eq!(state_of(&all, n).as_deref(), Some("running"), "{all:?}");
        }
    }
    assert_eq!(faulty.failed(), 0, "GET /v1/instances asked the engine for no container list");
    // Behind the server's back: v2 stopped, then removed; the view follows the engine.
    docker(&["stop", "-t", "0", &names[1]]);
    wait_for(|| (state_of(&states(&server, &read), &names[1]).as_deref() == Some("exited")).then_some(()));
    docker(&["rm", "-f", &names[1]]);
    wait_for(|| (state_of(&states(&server, &read), &names[1]).as_deref() == Some("missing")).then_some(()));
    // A deploy by another process (the local CLI, straight to the engine) shows up as running.
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v3"]).code(0);
    let v3 = sb.instances().into_iter().find(|r| r.tag == "v3").unwrap().container_name;
    wait_for(|| (state_of(&states(&server, &read), &v3).as_deref() == Some("running")).then_some(()));
    assert_eq!(state_of(&states(&server, &read), &names[0]).as_deref(), Some("running"));
    assert_eq!(faulty.failed(), 0, "still no container list");
}
