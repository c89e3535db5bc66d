//! Instance lifecycle: `max_instances`, rollback, remove, prune, zero-downtime redeploys.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use crate::support::caddy::Caddy;
use crate::support::npm::NpmDouble;
use crate::support::{Run, Sandbox, docker, images, retag};

const PW: &str = "lifecycle-pw";

fn npm_bed(prefix: &str, project_extra: &str, stage_extra: &str) -> (Sandbox, NpmDouble) {
    let sb = Sandbox::new(prefix);
    let npm = NpmDouble::start("ops@example.com", PW);
    let tables = crate::support::npm_proxy(&npm.url(), "ops@example.com", "TF_TEST_NPM_PASSWORD");
    sb.config_with(&tables, project_extra, stage_extra);
    sb.watch(crate::support::Watch::Npm(npm.view()));
    (sb, npm)
}

fn tf(sb: &Sandbox, args: &[&str]) -> Run {
    Run::from(sb.tf(args).env("TF_TEST_NPM_PASSWORD", PW).output().unwrap())
}

#[test]
fn max_instances_evicts_the_oldest_tag_with_its_container_host_and_row() {
    let (sb, npm) = npm_bed("maxi", "max_instances = 2", "");
    tf(&sb, &["-q", "deploy", &sb.project, "dev", "v1"]).code(0);
    let v1 = sb.instances().remove(0);
    for tag in ["v2", "v3"] {
        tf(&sb, &["-q", "deploy", &sb.project, "dev", tag]).code(0);
    }
    let rows = sb.instances();
    assert_eq!(rows.iter().map(|r| r.tag.as_str()).collect::<Vec<_>>(), ["v2", "v3"]);
    sb.assert_only_left(&rows);
    let domains: Vec<String> = npm.hosts().iter().map(|h| h["domain_names"][0].as_str().unwrap().to_owned()).collect();
    assert!(!domains.contains(&sb.host(None)), "v1 (the default tag) host deleted: {domains:?}");
    assert_eq!(domains.len(), 2);
    let d = sb.deploys();
    let logs = sb.logs(d[0].id);
    let eviction = format!("evicting {} (v1): beyond max_instances (2)", v1.container_name);
    assert!(logs.iter().any(|l| l.message == eviction), "eviction is in the deploy's log: {eviction:?} in {logs:?}");
}

#[test]
fn rollback_redeploys_the_previous_digest_and_history_shows_it() {
    let sb = Sandbox::new("rollb");
    let moving = format!("mv-{}", sb.project);
    sb.config("", "");
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace("default_tag = \"v1\"", &format!("default_tag = \"{moving}\""));
    sb.write_config(&text);
    sb.run_tf(&["rollback", &sb.project, "dev"]).code(2).stderr_has("nothing to roll back to");

    retag("v2", &moving);
    let first = sb.run_tf(&["-q", "deploy", &sb.project, "dev"]);
    first.code(0);
    assert_eq!(crate::support::http_get(first.stdout.trim()).1, "v2\n");
    retag("v3", &moving);
    let second = sb.run_tf(&["-q", "deploy", &sb.project, "dev"]);
    assert_eq!(crate::support::http_get(second.stdout.trim()).1, "v3\n");

    let back = sb.run_tf(&["-q", "rollback", &sb.project, "dev"]);
    back.code(0);
    assert_eq!(crate::support::http_get(back.stdout.trim()).1, "v2\n", "serves the previous image again, by digest");
    let d = sb.deploys();
    assert_eq!(d[0].trigger.as_str(), "rollback");
    assert_eq!(d[0].digest, d[2].digest, "same digest as the first deploy");
    assert!(d[0].image.contains("@sha256:"), "deployed by digest, never by the moving tag: {}", d[0].image);
    assert_eq!(d[1].status.as_str(), "rolled_back");
    let h = sb.run_tf(&["history", &sb.project]);
    assert!(h.stdout.lines().nth(1).unwrap().contains("rollback"), "{}", h.stdout);
    assert_eq!(sb.containers().len(), 1);

    // --to names the deploy to return to.
    let to = d[1].id.to_string();
    sb.run_tf(&["-q", "rollback", &sb.project, "dev", "--to", &to]).code(0);
    assert_eq!(sb.deploys()[0].digest, d[1].digest);
    sb.run_tf(&["rollback", &sb.project, "dev", "--to", "99999"]).code(2).stderr_has("deploy 99999 not found");
}

#[test]
fn remove_takes_down_container_host_and_row_and_is_recorded() {
    let (sb, npm) = npm_bed("remove", "", "");
    tf(&sb, &["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    assert_eq!(npm.hosts().len(), 1);
    let run = tf(&sb, &["remove", &sb.project, "dev", "v2"]);
    run.code(0);
    assert!(run.stdout.contains("removed"), "{}", run.stdout);
    sb.assert_nothing_left();
    assert!(npm.hosts().is_empty());
    let d = &sb.deploys()[0];
    assert_eq!((d.trigger.as_str(), d.status.as_str()), ("remove", "succeeded"));
    let again = tf(&sb, &["remove", &sb.project, "dev", "v2"]);
    again.code(0).stderr_has("nothing to remove");
}

#[test]
fn prune_removes_every_kind_of_orphan_and_a_second_prune_does_nothing() {
    let (sb, npm) = npm_bed("prune", "max_instances = 5", "");
    // An instance whose container was removed behind our back.
    tf(&sb, &["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    let gone = sb.instances().into_iter().find(|r| r.tag == "v2").unwrap();
    docker(&["rm", "-f", &gone.container_name]);
    // A managed container whose row is gone.
    tf(&sb, &["-q", "deploy", &sb.project, "dev", "v3"]).code(0);
    let orphan = sb.instances().into_iter().find(|r| r.tag == "v3").unwrap();
    tiny_forge::store::Store::delete_instance(&sb.store(), orphan.id).unwrap();
    // A proxy host marked as ours that no instance owns, and one that is not ours.
    let stray = npm.add_host(&sb.host(Some("stray")), "tf-x", json!({"tiny_forge_managed": true}));
    let foreign = npm.add_host(&sb.host(Some("theirs")), "someone", json!({}));
    // A deploy killed (kill -9) after it created its container.
    let mut child = sb.spawn_tf(
        &["deploy", &sb.project, "dev", "v4"],
        &[("TINY_FORGE_TEST_PAUSE_AFTER", "create:60s"), ("TF_TEST_NPM_PASSWORD", PW)],
    );
    sb.wait_for_log(&mut child, "pausing");
    crate::support::run(std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]));
    let _ = child.wait_with_output();
    // A container nobody manages, carrying only our project label: never touched.
    let repo = &images().repo;
    let bystander = format!("{}-bystander", sb.project);
    let label = format!("dev.tiny-forge.project={}", sb.project);
    // Retried: other tests' image cleanup may take the image between the pull and the create.
    let made = (0..5).any(|_| {
        crate::support::docker_ok(&["pull", "-q", &format!("{repo}:v1")])
            && crate::support::docker_ok(&["create", "--name", &bystander, "--label", &label, &format!("{repo}:v1")])
    });
    assert!(made, "cannot create the bystander container");

    let dry = tf(&sb, &["prune", "--dry-run"]);
    dry.code(0);
    // Images of the repository every test shares come and go with the other tests: the plan of
    // this test's own things is compared.
    let own = |l: &&str| !l.contains("delete image");
    let planned: Vec<String> =
        dry.stdout.lines().filter(own).map(|l| l.trim_start_matches("would ").to_owned()).collect();
    assert_eq!(planned.len(), 8, "{}", dry.stdout);
    assert_eq!(sb.containers().len(), 3, "dry run changes nothing (orphan, killed deploy's, bystander)");

    let real = tf(&sb, &["prune"]);
    real.code(0);
    let done: Vec<String> = real.stdout.lines().filter(own).map(|l| l.trim_start_matches("did ").to_owned()).collect();
    assert_eq!(done, planned, "the dry run said exactly what prune then did");
    for needle in [
        "its container is gone",
        "remove container",
        "orphan: no instance row",
        "delete proxy host",
        "orphan: no live instance",
        "abandoned",
    ] {
        assert!(real.stdout.contains(needle), "missing {needle:?}:\n{}", real.stdout);
    }
    let hosts: Vec<u64> = npm.hosts().iter().map(|h| h["id"].as_u64().unwrap()).collect();
    assert!(!hosts.contains(&stray), "stray host of ours deleted");
    assert!(hosts.contains(&foreign), "foreign host untouched");
    assert_eq!(sb.containers(), vec![format!("{bystander} created")], "no managed container left");
    assert!(crate::support::docker_ok(&["inspect", &bystander]), "unmanaged container untouched");
    docker(&["rm", "-f", &bystander]);
    // Every row went, the live one whose container is gone (v2) included.
    assert_eq!(sb.instances(), Vec::new(), "no instance row left, live or not");
    let interrupted = sb.deploys().into_iter().find(|d| d.tag == "v4").unwrap();
    assert_eq!(interrupted.status.as_str(), "interrupted");
    sb.assert_nothing_left();

    // A second prune has nothing of this test's to do (images of the repository all tests
    // share may still come and go with them).
    let second = tf(&sb, &["prune"]);
    second.code(0);
    let own: Vec<&str> = second.stdout.lines().filter(|l| !l.contains("delete image")).collect();
    assert_eq!(own, Vec::<&str>::new(), "{}", second.stdout);
}

#[test]
fn prune_enforces_ttl_and_max_instances_but_spares_the_default_slot() {
    let (sb, npm) = npm_bed("prunettl", "max_instances = 5", "");
    for tag in ["v1", "v2", "v3"] {
        tf(&sb, &["-q", "deploy", &sb.project, "dev", tag]).code(0);
    }
    let default_slot: Vec<_> = sb.instances().into_iter().filter(|r| r.tag == "v1").collect();
    let run = tf(&sb, &["prune", "--older-than", "1ms"]);
    run.code(0);
    let tags: Vec<String> = sb.instances().into_iter().map(|r| r.tag).collect();
    assert_eq!(tags, ["v1"], "tag instances gone, the default slot kept: {}", run.stdout);
    // Kept whole: its row, its running container and its host (a row without its container
    // would be a ghost).
    sb.assert_only_left(&default_slot);
    assert_eq!(npm.hosts().len(), 1);
    tf(&sb, &["prune", "--older-than", "1ms", "--include-default"]).code(0);
    sb.assert_nothing_left();
    assert!(npm.hosts().is_empty());
}

/// What the client saw: requests sent, distinct bodies in order, failed requests, connections
/// that could not be opened (retried once), and connections Caddy reset before any answer.
struct Seen {
    requests: usize,
    bodies: Vec<String>,
    failures: Vec<String>,
    connect_retries: Vec<String>,
    resets: Vec<String>,
}

/// Is `e` a connection reset by the peer (RST) with no answer at all?
fn reset_before_any_answer(e: &reqwest::Error) -> bool {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionReset) {
            return true;
        }
        source = s.source();
    }
    false
}

/// Sends requests through Caddy without pause until stopped, each on a new connection.
///
/// Only a connection that could not be opened is retried, once: its request was never sent, as
/// a browser would retry it. A connection Caddy resets before any answer is not retried: it is
/// counted apart (see the test). Any other error (a timeout, an answer cut off), any non-2xx
/// answer, and a second connect error are failures.
fn hammer(caddy: &Caddy, host: String, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Seen> {
    let port = caddy.http_port;
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            crate::support::client();
            let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
            let mut seen = Seen {
                requests: 0,
                bodies: Vec::new(),
                failures: Vec::new(),
                connect_retries: Vec::new(),
                resets: Vec::new(),
            };
            while !stop.load(Ordering::SeqCst) {
                seen.requests += 1;
                let send = || client.get(format!("http://127.0.0.1:{port}/")).header("Host", &host).send();
                let answer = match send().await {
                    Err(e) if e.is_connect() => {
                        seen.connect_retries.push(tiny_forge::fmt::one_line(&e));
                        send().await
                    }
                    other => other,
                };
                match answer {
                    Ok(r) if r.status().is_success() => match r.text().await {
                        Ok(b) if seen.bodies.last() != Some(&b) => seen.bodies.push(b),
                        Ok(_) => {}
                        Err(e) => seen.failures.push(format!("body: {}", tiny_forge::fmt::one_line(&e))),
                    },
                    Ok(r) => seen.failures.push(format!("{}", r.status())),
                    Err(e) if !e.is_connect() && reset_before_any_answer(&e) => {
                        seen.resets.push(tiny_forge::fmt::one_line(&e));
                    }
                    Err(e) => seen.failures.push(tiny_forge::fmt::one_line(&e)),
                }
            }
            seen
        })
    })
}

/// Nine blue/green redeploys of a moving tag behind a real Caddy, then a tenth whose image is
/// unhealthy and fails: a client hammering the URL throughout sees every version in turn, never
/// a failed request, and the failed redeploy leaves only the instance that served before it.
///
/// Caddy reloads its whole config on every admin-API change, and Caddy 2.6 resets a connection
/// it accepted in that instant before reading its request. Measured without tiny-forge, a
/// client like this one against 300 reloads of one route saw 19 to 49 resets, and a counting
/// upstream behind the route received exactly the requests that were answered: no reset
/// request reached it. So such resets are not retried but counted, reported, and allowed up to
/// two per route change. What tiny-forge could break (an upstream gone too early, a route to
/// nowhere) shows as a 502 or another answer, and fails the test.
#[test]
fn nine_redeploys_and_a_failed_one_behind_caddy_drop_no_request() {
    let caddy = Caddy::start();
    let sb = Sandbox::new("zerodt");
    let moving = format!("zd-{}", sb.project);
    // Probes before the app listens fall in a start period: a loaded machine starts containers
    // slowly, and the test is not about that.
    let health = format!("[projects.{}.health]\nstart_period = \"3s\"\n", sb.project);
    sb.config_with(&format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", caddy.admin_url()), "", &health);
    sb.watch(crate::support::Watch::Caddy(caddy.admin_url()));
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace("default_tag = \"v1\"", &format!("default_tag = \"{moving}\""));
    sb.write_config(&text);
    retag("v1", &moving);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let stop = Arc::new(AtomicBool::new(false));
    let client = hammer(&caddy, sb.host(None), Arc::clone(&stop));
    let switches = 9;
    for v in 2..=10 {
        retag(&format!("v{v}"), &moving);
        sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    }
    // A failed redeploy (the new image is unhealthy) keeps serving the old version.
    let serving = sb.instances();
    retag("bad", &moving);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(1);
    std::thread::sleep(std::time::Duration::from_millis(200));
    stop.store(true, Ordering::SeqCst);
    let Seen { requests: n, bodies, failures, connect_retries, resets } = client.join().unwrap();
    let (retried, reset) = (connect_retries.len(), resets.len());
    eprintln!(
        "{n} requests; {retried} could not connect at first and were retried: {connect_retries:?}; \
         {reset} reset by Caddy before any answer: {resets:?}"
    );
    assert!(n > 100, "the client kept sending ({n} requests)");
    assert_eq!(
        failures,
        Vec::<String>::new(),
        "{} of {n} requests failed ({retried} retried after a connect error: {connect_retries:?}; \
         {reset} reset before any answer: {resets:?})",
        failures.len()
    );
    assert!(retried <= n / 100, "connect errors are rare, not an outage: {retried} of {n}: {connect_retries:?}");
    assert!(reset <= 2 * switches, "resets are Caddy's reload instants, not an outage: {reset} of {n}: {resets:?}");
    let expected: Vec<String> =
        ["hello".to_owned()].into_iter().chain((2..=10).map(|v| format!("v{v}"))).map(|b| format!("{b}\n")).collect();
    assert_eq!(bodies, expected, "answers moved from each version to the next, and stayed on v10");
    // Nothing of the failed redeploy: only v10's instance, its route pointing at it.
    assert_eq!(serving.len(), 1);
    sb.assert_only_left(&serving);
    assert_eq!(caddy.get(&sb.host(None)), (200, "v10\n".to_owned()));
    assert_eq!(sb.deploys()[0].status.as_str(), "failed");
}
