//! `tiny-forge serve` end to end: the real binary serving, the remote CLI against it, tokens and
//! their scopes, the event stream and its resume, SIGTERM, and a real registry whose
//! notifications deploy a pushed digest.

use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{Run, Sandbox, docker_ok, images, run};

mod hardening;
mod view;

/// A running `tiny-forge serve`; killed on drop.
pub(crate) struct Server {
    child: Child,
    pub(crate) url: String,
}

impl Server {
    /// Starts `serve` on a free loopback port for `sb`, with `envs`.
    pub(crate) fn start(sb: &Sandbox, envs: &[(&str, &str)]) -> Self {
        Self::start_on(sb, "127.0.0.1:0", envs)
    }

    /// Starts `serve` on `listen` for `sb`, with `envs`.
    pub(crate) fn start_on(sb: &Sandbox, listen: &str, envs: &[(&str, &str)]) -> Self {
        let mut c = sb.tf(&["serve", "--listen", listen]);
        c.envs(envs.iter().copied()).stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = c.spawn().expect("spawn tiny-forge serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.split("listening on ").nth(1) {
                    let _ = tx.send(url.trim().to_owned());
                }
            }
        });
        let url = rx.recv_timeout(Duration::from_secs(60)).expect("serve did not start listening");
        Self { child, url }
    }

    /// Sends `signal` (`TERM`, `KILL`, `HUP`) without waiting.
    pub(crate) fn signal(&self, signal: &str) {
        run(Command::new("kill").args([&format!("-{signal}"), &self.child.id().to_string()]));
    }

    /// Sends SIGTERM and waits for the exit code.
    pub(crate) fn terminate(&mut self) -> i32 {
        self.signal("TERM");
        self.wait()
    }

    /// Waits (at most a minute) for the exit code.
    pub(crate) fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s.code().unwrap_or(-1);
            }
            assert!(Instant::now() < deadline, "serve did not stop after SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `tiny-forge token create …` in `sb`; returns the token.
pub(crate) fn token(sb: &Sandbox, args: &[&str]) -> String {
    let mut all = vec!["token", "create"];
    all.extend_from_slice(args);
    let out = sb.run_tf(&all);
    out.code(0);
    out.stdout.trim().to_owned()
}

fn remote(sb: &Sandbox, server: &Server, token: &str, args: &[&str]) -> Run {
    let mut c = sb.tf(args);
    c.env("TINY_FORGE_REMOTE", &server.url).env("TINY_FORGE_TOKEN", token);
    Run::from(c.output().expect("run tiny-forge --remote"))
}

/// The event lines of `--output json` as (type, step, level) and the result object.
fn shape(out: &str) -> (Vec<(String, String, String)>, Value) {
    let lines: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let (result, events) = lines.split_last().expect("at least the result");
    let s = |v: &Value, k: &str| v[k].as_str().unwrap_or_default().to_owned();
    let events = events
        .iter()
        .filter(|e| e["type"] != "pull_progress")
        // Image hygiene deletes what other tests left of the shared repository: it varies.
        .filter(|e| !(e["type"] == "log" && s(e, "message").contains("image") || s(e, "message").starts_with("freed ")))
        .map(|e| (s(e, "type"), s(e, "step"), s(e, "level")))
        .collect();
    (events, result.clone())
}

#[test]
fn a_remote_deploy_shows_the_same_events_and_exits_with_the_same_code_as_a_local_one() {
    let sb = Sandbox::new("srvsame");
    sb.config("", &format!("[projects.{}.health]\nstart_period = \"2s\"\n", sb.project));
    let p = sb.project.clone();
    // The network exists before both runs compared (its creation is logged once).
    sb.run_tf(&["deploy", &p, "dev", "v1"]).code(0);
    let tok = token(&sb, &["--name", "ci", "--project", &p, "--stage", "dev"]);
    let server = Server::start(&sb, &[]);
    for (local_tag, remote_tag, code) in [("v2", "v3", 0), ("bad", "bad", 1)] {
        let local = sb.run_tf(&["--output", "json", "deploy", &p, "dev", local_tag]);
        local.code(code);
        let far = remote(&sb, &server, &tok, &["--output", "json", "deploy", &p, "dev", remote_tag]);
        far.code(code);
        let (le, lr) = shape(&local.stdout);
        let (re, rr) = shape(&far.stdout);
        assert_eq!(le, re, "same events\nlocal:\n{}\nremote:\n{}", local.stdout, far.stdout);
        assert_eq!(lr["exit_code"], rr["exit_code"]);
        assert_eq!(lr["status"], rr["status"]);
        let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(&lr), keys(&rr), "the same result object");
    }
    // Plain output too: the same renderer.
    let far = remote(&sb, &server, &tok, &["--output", "plain", "deploy", &p, "dev", "v4"]);
    far.code(0);
    assert!(far.stderr.contains("health   done in") && far.stderr.contains("healthy after"), "{}", far.stderr);
    assert!(far.stdout.trim().starts_with("http://"), "{}", far.stdout);
    // The server's deploys are the CLI's history, with their actor.
    let hist = sb.run_tf(&["--output", "json", "history", &p]);
    let rows: Vec<Value> = serde_json::from_str(&hist.stdout).unwrap();
    let actors: Vec<&str> = rows.iter().map(|r| r["actor"].as_str().unwrap_or("cli")).collect();
    assert_eq!(actors.iter().filter(|a| **a == "token:ci").count(), 3, "{actors:?}");
    assert!(actors.contains(&"cli"));
    // list and history over --remote read the same state.
    let far_hist = remote(&sb, &server, &tok, &["--output", "json", "history", &p]);
    far_hist.code(0);
    let far_rows: Vec<Value> = serde_json::from_str(&far_hist.stdout).unwrap();
    assert_eq!(far_rows.len(), rows.len());
    let listing = remote(&sb, &server, &tok, &["list", &p]);
    listing.code(0);
    assert!(listing.stdout.contains("v4") && listing.stdout.contains("running"), "{}", listing.stdout);
    // `history show` of a deploy, remotely: the same lines as on the host.
    let id = rows[0]["id"].to_string();
    let here = sb.run_tf(&["history", "show", &id]);
    let there = remote(&sb, &server, &tok, &["history", "show", &id, "--follow"]);
    there.code(here.code);
    assert_eq!(there.stdout, here.stdout);
    // Remove, remotely.
    remote(&sb, &server, &tok, &["remove", &p, "dev", "v4"]).code(0);
    assert!(!sb.containers().iter().any(|c| c.contains("-v4-")), "{:?}", sb.containers());
}

#[test]
fn a_token_scoped_to_one_stage_cannot_touch_another_and_a_bad_token_is_refused() {
    let sb = Sandbox::new("srvscope");
    sb.config("", &format!("[projects.{p}.stages.prod]\ndefault_tag = \"v1\"\n", p = sb.project));
    let p = sb.project.clone();
    let dev = token(&sb, &["--name", "dev-only", "--project", &p, "--stage", "dev", "--can", "deploy,read"]);
    let server = Server::start(&sb, &[]);
    let denied = remote(&sb, &server, &dev, &["deploy", &p, "prod"]);
    denied.code(2);
    assert!(denied.stderr.contains("may not deploy"), "{}", denied.stderr);
    let denied = remote(&sb, &server, &dev, &["remove", &p, "dev", "v1"]);
    denied.code(2);
    let wrong = remote(&sb, &server, "tf_not-a-token", &["deploy", &p, "dev"]);
    wrong.code(2);
    assert!(wrong.stderr.contains("unknown token"), "{}", wrong.stderr);
    assert!(sb.containers().is_empty(), "nothing was deployed");
    // Revoked: refused from now on.
    sb.run_tf(&["token", "revoke", "dev-only"]).code(0);
    remote(&sb, &server, &dev, &["deploy", &p, "dev"]).code(2);
    let listed = sb.run_tf(&["token", "list"]);
    assert!(listed.stdout.contains("dev-only") && listed.stdout.contains("revoked"), "{}", listed.stdout);
    assert!(!listed.stdout.contains(&dev), "the token itself is never shown again");
    assert!(sb.deploys().is_empty());
    // Failed authentications from one address are capped: then 429, whatever is presented.
    let mut codes = Vec::new();
    for _ in 0..12 {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        codes.push(rt.block_on(async {
            let r = crate::support::client()
                .get(format!("{}/v1/deploys", server.url))
                .bearer_auth("tf_wrong")
                .send()
                .await
                .unwrap();
            r.status().as_u16()
        }));
    }
    assert!(codes.contains(&401) && codes.ends_with(&[429, 429]), "{codes:?}");
    // No token in the state file's text, the metrics or the server's answers.
    let (_, metrics) = crate::support::http_get(&format!("{}/metrics", server.url));
    assert!(!metrics.contains(&dev) && !metrics.contains("tf_wrong"), "{metrics}");
    assert!(metrics.contains("tiny_forge_auth_failures_total"), "{metrics}");
    let raw = std::fs::read(&sb.state).unwrap();
    assert!(!String::from_utf8_lossy(&raw).contains(&dev), "the state file holds only the token's hash");
}

/// GETs `url` with a bearer token and an optional `Last-Event-ID`; returns the body (for a
/// finished deploy's stream, which ends).
fn sse(url: &str, token: &str, last: Option<u64>) -> String {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut req = crate::support::client().get(url).bearer_auth(token);
        if let Some(l) = last {
            req = req.header("Last-Event-ID", l.to_string());
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        // nginx (NPM) in front must not buffer the stream.
        assert_eq!(
            resp.headers().get("x-accel-buffering").map(reqwest::header::HeaderValue::as_bytes),
            Some(&b"no"[..])
        );
        resp.text().await.unwrap()
    })
}

#[test]
fn the_event_stream_resumes_after_the_last_event_id_and_ends_with_the_exit_code() {
    let sb = Sandbox::new("srvsse");
    sb.config("", "");
    let p = sb.project.clone();
    let tok = token(&sb, &["--name", "reader", "--can", "read"]);
    sb.run_tf(&["deploy", &p, "dev"]).code(0);
    let id = sb.deploys()[0].id.0;
    let server = Server::start(&sb, &[]);
    let url = format!("{}/v1/deploys/{id}/events", server.url);
    let all = sse(&url, &tok, None);
    let ids: Vec<u64> = all.lines().filter_map(|l| l.strip_prefix("id: ")).map(|v| v.parse().unwrap()).collect();
    assert!(ids.len() > 5, "{all}");
    assert_eq!(ids, (1..=ids.len() as u64).collect::<Vec<_>>(), "ids are the entries' sequence numbers");
    let result = all.split("event: result\ndata: ").nth(1).unwrap().lines().next().unwrap();
    let result: Value = serde_json::from_str(result).unwrap();
    assert_eq!(result["exit_code"], 0);
    // A deploy the CLI ran streams too; resuming after entry 5 sends 6.. only.
    let rest = sse(&url, &tok, Some(5));
    let resumed: Vec<u64> = rest.lines().filter_map(|l| l.strip_prefix("id: ")).map(|v| v.parse().unwrap()).collect();
    assert_eq!(resumed.first(), Some(&6), "{rest}");
    assert_eq!(resumed.len(), ids.len() - 5);
    assert!(rest.contains("event: result"));
    let (status, _) = crate::support::http_get(&format!("{}/healthz", server.url));
    assert_eq!(status, 200);
    let (_, metrics) = crate::support::http_get(&format!("{}/metrics", server.url));
    assert!(metrics.contains("# TYPE tiny_forge_queue_depth gauge"), "{metrics}");
    assert!(!metrics.contains(&tok), "no token in metrics");
}

#[test]
fn sigterm_rolls_back_what_the_grace_period_did_not_finish() {
    let sb = Sandbox::new("srvterm");
    let p = sb.project.clone();
    sb.config_with("[server]\ngrace = \"1s\"\n", "", "");
    let tok = token(&sb, &["--name", "ci"]);
    let mut server = Server::start(&sb, &[("TINY_FORGE_TEST_PAUSE_AFTER", "health:60s")]);
    let mut c = sb.tf(&["--output", "json", "deploy", &p, "dev"]);
    c.env("TINY_FORGE_REMOTE", &server.url).env("TINY_FORGE_TOKEN", &tok).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut client = c.spawn().unwrap();
    sb.wait_for_log(&mut client, "pausing");
    assert_eq!(server.terminate(), 0);
    let out = Run::from(client.wait_with_output().unwrap());
    out.code(130);
    let d = &sb.deploys()[0];
    assert_eq!(d.status.as_str(), "interrupted", "{d:?}");
    sb.assert_nothing_left();
}

#[test]
fn a_docker_push_to_a_registry_with_notifications_deploys_the_new_digest() {
    let sb = Sandbox::new("srvpush");
    let secret = "notify-token-0123456789";
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let listen = format!("127.0.0.1:{port}");
    let registry =
        crate::support::Registry::start_with_notifications(&format!("http://{listen}/hooks/registry"), secret);
    let repo = format!("{}/tf-test/pushed", registry.host());
    let p = sb.project.clone();
    let secret_file = sb.dir.path().join("hook-secret");
    std::fs::write(&secret_file, secret).unwrap();
    let text = format!(
        r#"[settings]
domain = "test.local"
network = "{network}"
state = "{state}"

[server]
listen = "{listen}"
debounce = "300ms"

[[receivers]]
name = "registry"
kind = "distribution"
secret_file = "{secret_file}"

[health]
start_period = "0s"
interval = "100ms"
retries = 2
timeout = "2s"

[projects.{p}]
image = "{repo}"
port = 8080

[projects.{p}.stages.dev]
default_tag = "main"

[[projects.{p}.stages.dev.on_push]]
tags = "main"
slot = "default"
"#,
        network = sb.network,
        state = sb.state.display(),
        secret_file = secret_file.display(),
    );
    sb.write_config(&text);
    let mut c = sb.tf(&["serve"]);
    c.stdout(Stdio::null()).stderr(Stdio::null());
    let child = c.spawn().unwrap();
    let mut server = Server { child, url: format!("http://{listen}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "serve did not listen");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Two pushes of two builds to the moving tag `main`.
    for (n, from) in [(1, "v1"), (2, "v2")] {
        let src = format!("{}:{from}", images().repo);
        let dst = format!("{repo}:main");
        crate::support::push_as(&src, &dst);
        wait_for(|| {
            let done = sb.state.exists()
                && sb
                    .deploys()
                    .iter()
                    .filter(|d| d.trigger.as_str() == "webhook" && d.status.as_str() == "succeeded")
                    .count()
                    >= n;
            done.then_some(())
        });
        let live: Vec<_> = sb.instances().into_iter().filter(|i| i.status.as_str() == "live").collect();
        assert_eq!(live.len(), 1, "{live:?}");
        assert_eq!(live[0].tag, "main");
        assert!(live[0].digest.starts_with("sha256:"));
    }
    let deploys = sb.deploys();
    let webhook: Vec<_> = deploys.iter().filter(|d| d.trigger.as_str() == "webhook").collect();
    assert_eq!(webhook.len(), 2, "one deploy per push: {deploys:?}");
    assert!(webhook.iter().all(|d| d.image.contains("@sha256:")), "deployed by digest: {webhook:?}");
    assert!(webhook.iter().all(|d| d.actor.as_deref().is_some_and(|a| a.starts_with("webhook:registry:"))));
    assert_ne!(webhook[0].digest, webhook[1].digest);
    assert_eq!(server.terminate(), 0);
    drop(registry);
}

pub(crate) fn wait_for<T>(mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A TCP relay to `target` that cuts every connection `after` it was opened: a flaky network
/// between a hosted runner and the server.
fn cutting_relay(target: &str, after: Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let target = target.trim_start_matches("http://").to_owned();
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let Ok(server) = std::net::TcpStream::connect(&target) else { continue };
            let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            let pipe = |mut from: std::net::TcpStream, mut to: std::net::TcpStream| {
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut from, &mut to);
                    let _ = to.shutdown(std::net::Shutdown::Both);
                });
            };
            pipe(client, server);
            pipe(s2.try_clone().unwrap(), c2.try_clone().unwrap());
            std::thread::spawn(move || {
                std::thread::sleep(after);
                let _ = c2.shutdown(std::net::Shutdown::Both);
                let _ = s2.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    format!("http://{addr}")
}

#[test]
fn the_remote_cli_resumes_a_dropped_event_stream_and_shows_each_event_once() {
    let sb = Sandbox::new("srvcut");
    sb.config("", "");
    let p = sb.project.clone();
    let tok = token(&sb, &["--name", "ci"]);
    // Slow steps, so that the stream is cut several times while the deploy runs.
    let server = Server::start(&sb, &[("TINY_FORGE_TEST_PAUSE_AFTER", "pull:2s,create:2s,health:2s")]);
    let relay = cutting_relay(&server.url, Duration::from_millis(700));
    let mut c = sb.tf(&["--output", "json", "deploy", &p, "dev"]);
    c.env("TINY_FORGE_REMOTE", &relay).env("TINY_FORGE_TOKEN", &tok);
    let out = Run::from(c.output().unwrap());
    out.code(0);
    let (events, result) = shape(&out.stdout);
    assert_eq!(result["status"], "succeeded", "{}", out.stdout);
    let started: Vec<&String> = events.iter().filter(|e| e.0 == "step_started").map(|e| &e.1).collect();
    let mut unique = started.clone();
    unique.dedup();
    assert_eq!(started, unique, "no event twice:\n{}", out.stdout);
    // Every stored entry arrived: the log has as many entries as the output has stored events.
    let stored = sb.logs(sb.deploys()[0].id).len();
    // (Counted on every line: `shape` leaves out image hygiene, which is stored too.)
    let lines: Vec<Value> = out.stdout.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    let shown = lines[..lines.len() - 1]
        .iter()
        .filter(|e| e["type"] != "pull_progress" && !(e["type"] == "step_started" && e["step"] == "lock"))
        .count();
    assert_eq!(shown, stored, "{}", out.stdout);
}

/// A config for a sandbox whose `dev` stage deploys pushes of `tag` into its default slot,
/// with a distribution receiver (secret in a file) and `[server]` listening on `listen`.
/// `tag` should be the test's own: the demo repository is shared by every test.
pub(crate) fn push_config(sb: &Sandbox, listen: &str, tag: &str, rule_extra: &str) {
    let secret_file = sb.dir.path().join("hook-secret");
    std::fs::write(&secret_file, "hook-secret-42").unwrap();
    let text = format!(
        r#"[settings]
domain = "test.local"
network = "{network}"
state = "{state}"

[server]
listen = "{listen}"
debounce = "200ms"

[[receivers]]
name = "registry"
kind = "distribution"
secret_file = "{secret_file}"

[health]
start_period = "0s"
interval = "100ms"
retries = 2
timeout = "2s"

[projects.{p}]
image = "{repo}"
port = 8080

[projects.{p}.stages.dev]
default_tag = "{tag}"

[[projects.{p}.stages.dev.on_push]]
tags = "{tag}"
slot = "default"
{rule_extra}
"#,
        network = sb.network,
        state = sb.state.display(),
        secret_file = secret_file.display(),
        p = sb.project,
        repo = images().repo,
    );
    sb.write_config(&text);
}

pub(crate) fn succeeded(sb: &Sandbox, trigger: &str) -> Vec<tiny_forge::store::DeployRecord> {
    if !sb.state.exists() {
        return Vec::new();
    }
    sb.deploys().into_iter().filter(|d| d.trigger.as_str() == trigger && d.status.as_str() == "succeeded").collect()
}

/// The digest `tag` of the demo repository points at in the registry now (asked of the
/// registry itself: the local image cache is shared with other tests' image hygiene).
pub(crate) fn digest_of(tag: &str) -> String {
    let url = format!("http://{}/v2/tf-test/demo/manifests/{tag}", images().registry.host());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
        let r = crate::support::client().head(url).header("accept", accept).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "no tag {tag} in the registry");
        r.headers()["docker-content-digest"].to_str().unwrap().to_owned()
    })
}

/// A distribution notification of a push of `tag` with `digest`, as the registry sends it.
pub(crate) fn notification(event_id: &str, tag: &str, digest: &str) -> String {
    let registry = images().registry.host();
    serde_json::json!({"events": [{
        "id": event_id, "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest,
            "repository": "tf-test/demo", "url": format!("http://{registry}/v2/tf-test/demo/manifests/{digest}"), "tag": tag},
        "request": {"host": registry, "method": "PUT"}}]})
    .to_string()
}

/// POSTs `body` to `url` with `Authorization: auth`; the status.
pub(crate) fn post_hook(url: &str, auth: &str, body: &str) -> u16 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = crate::support::client()
            .post(url)
            .header("authorization", auth)
            .body(body.to_owned())
            .send()
            .await
            .unwrap();
        r.status().as_u16()
    })
}

#[test]
fn a_replayed_or_wrongly_authenticated_delivery_deploys_nothing() {
    let sb = Sandbox::new("srvreplay");
    let tag = format!("rp-{}", sb.project);
    push_config(&sb, "127.0.0.1:0", &tag, "");
    crate::support::retag("v3", &tag);
    let mut server = Server::start(&sb, &[]);
    let digest = digest_of("v3");
    let body = notification("same-event-id", &tag, &digest);
    let hook = format!("{}/hooks/registry", server.url);
    let send = |auth: &str| post_hook(&hook, auth, &body);
    assert_eq!(send("Bearer hook-secret-4"), 401);
    assert_eq!(send(""), 401);
    assert_eq!(send("Bearer hook-secret-42"), 202);
    wait_for(|| (succeeded(&sb, "webhook").len() == 1).then_some(()));
    assert_eq!(send("Bearer hook-secret-42"), 200, "a replay is answered 2xx");
    std::thread::sleep(Duration::from_secs(2));
    let deploys = sb.deploys();
    assert_eq!(deploys.len(), 1, "the replay deployed nothing: {deploys:?}");
    assert_eq!(deploys[0].digest.as_deref(), Some(digest.as_str()));
    assert_eq!(deploys[0].actor.as_deref(), Some("webhook:registry:same-event-id"));
    assert_eq!(server.terminate(), 0);
    docker_ok(&["rmi", &format!("{}:{tag}", images().repo)]);
}

#[test]
fn the_poller_deploys_a_tag_that_moved() {
    let sb = Sandbox::new("srvpoll");
    let tag = format!("poll-{}", sb.project);
    push_config(&sb, "127.0.0.1:0", &tag, "poll = \"1s\"");
    crate::support::retag("v4", &tag);
    let mut server = Server::start(&sb, &[]);
    wait_for(|| (succeeded(&sb, "poll").len() == 1).then_some(()));
    crate::support::retag("v5", &tag);
    wait_for(|| (succeeded(&sb, "poll").len() == 2).then_some(()));
    std::thread::sleep(Duration::from_secs(3));
    let polled = succeeded(&sb, "poll");
    assert_eq!(polled.len(), 2, "an unchanged tag is not deployed again: {polled:?}");
    assert_ne!(polled[0].digest, polled[1].digest);
    let live: Vec<_> = sb.instances().into_iter().filter(|i| i.status.as_str() == "live").collect();
    assert_eq!(live.len(), 1);
    assert_eq!(http_body(live[0].url.as_deref().unwrap()), "v5\n");
    assert_eq!(server.terminate(), 0);
    docker_ok(&["rmi", &format!("{}:{tag}", images().repo)]);
}

fn http_body(url: &str) -> String {
    crate::support::http_get(url).1
}

#[test]
fn serve_speaks_https_from_certificate_files_and_the_remote_cli_trusts_its_ca() {
    let sb = Sandbox::new("srvtls");
    let ca = crate::support::tls::TestCa::new();
    let (cert, key) = ca.server_pem("127.0.0.1".parse().unwrap());
    let dir = sb.dir.path();
    std::fs::write(dir.join("cert.pem"), cert).unwrap();
    std::fs::write(dir.join("key.pem"), key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    sb.config_with("[server]\ntls_cert_file = \"cert.pem\"\ntls_key_file = \"key.pem\"\n", "", "");
    let tok = token(&sb, &["--name", "ci"]);
    let server = Server::start(&sb, &[]);
    assert!(server.url.starts_with("https://127.0.0.1:"), "{}", server.url);
    let mut c = sb.tf(&["-q", "deploy", &sb.project, "dev"]);
    c.env("TINY_FORGE_REMOTE", &server.url).env("TINY_FORGE_TOKEN", &tok).env("SSL_CERT_FILE", dir.join("ca.pem"));
    Run::from(c.output().unwrap()).code(0);
    // Without the CA, the client refuses the server rather than talk in the clear.
    let mut c = sb.tf(&["list"]);
    c.env("TINY_FORGE_REMOTE", &server.url).env("TINY_FORGE_TOKEN", &tok).env_remove("SSL_CERT_FILE");
    let refused = Run::from(c.output().unwrap());
    refused.code(2);
    assert_eq!(sb.deploys()[0].actor.as_deref(), Some("token:ci"));
}

/// `METHOD url` with a bearer token and an optional body; (status, body).
pub(crate) fn call(method: &str, url: &str, bearer: &str, body: Option<String>) -> (u16, String) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let c = crate::support::client();
        let req = if method == "POST" { c.post(url) } else { c.get(url) };
        let req = req.bearer_auth(bearer);
        let req = if let Some(b) = body { req.header("content-type", "application/json").body(b) } else { req };
        let r = req.send().await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    })
}

#[test]
fn a_push_whose_rule_needs_approval_waits_for_it() {
    let sb = Sandbox::new("srvappr");
    let tag = format!("ap-{}", sb.project);
    push_config(&sb, "127.0.0.1:0", &tag, "approval = true");
    crate::support::retag("v6", &tag);
    let tok = token(&sb, &["--name", "releaser", "--project", &sb.project, "--can", "deploy,read"]);
    let server = Server::start(&sb, &[]);
    let digest = digest_of("v6");
    let body = notification("appr-1", &tag, &digest);
    let status = post_hook(&format!("{}/hooks/registry", server.url), "hook-secret-42", &body);
    assert_eq!(status, 202);
    let held = wait_for(|| {
        let (_, text) = call("GET", &format!("{}/v1/approvals", server.url), &tok, None);
        let v: Vec<Value> = serde_json::from_str(&text).unwrap();
        (!v.is_empty()).then_some(v)
    });
    std::thread::sleep(Duration::from_secs(1));
    assert!(!sb.state.exists() || sb.deploys().is_empty(), "nothing runs before the approval");
    assert_eq!(held[0]["digest"], digest.as_str());
    let id = held[0]["id"].as_u64().unwrap();
    // Without the digest, or with another one: refused, nothing released.
    let (status, text) = call("POST", &format!("{}/v1/approvals/{id}", server.url), &tok, None);
    assert_eq!(status, 400, "{text}");
    let other = serde_json::json!({ "digest": digest_of("v5") }).to_string();
    let (status, text) = call("POST", &format!("{}/v1/approvals/{id}", server.url), &tok, Some(other));
    assert_eq!(status, 409, "{text}");
    let approval = serde_json::json!({ "digest": digest }).to_string();
    let (status, text) = call("POST", &format!("{}/v1/approvals/{id}", server.url), &tok, Some(approval));
    assert_eq!(status, 202, "{text}");
    wait_for(|| (succeeded(&sb, "webhook").len() == 1).then_some(()));
    let (_, text) = call("GET", &format!("{}/v1/approvals", server.url), &tok, None);
    assert_eq!(text, "[]");
    // History says who let it through.
    let actor = sb.deploys()[0].actor.clone().unwrap_or_default();
    assert_eq!(actor, "webhook:registry:appr-1 approved by token:releaser");
    docker_ok(&["rmi", &format!("{}:{tag}", images().repo)]);
}
