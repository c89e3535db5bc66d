//! Packaging: the FROM-scratch image builds here (nothing to pull), runs, and does the whole job
//! from inside a container the way the README's "As a container" section runs it: deploy with
//! probes by container name, rollback, signed https notifications trusting a private CA, through
//! an HTTP CONNECT proxy or direct. Also: the commented example config and CI files are in place.

use std::path::Path;
use std::process::Command;

use base64::Engine as _;
use tiny_forge::notify::sign;

use crate::support::connect_proxy::ConnectProxy;
use crate::support::image::{CONFIG_DIR, InImage, TfImage};
use crate::support::receiver::{Mode, Receiver};
use crate::support::tls::TestCa;
use crate::support::{Run, Sandbox, http_get, retag, run};

const SECRET: &str = "hook-secret-8817";

/// `t=…,v1=…` verifies over `body` with `secret`, as a receiver would check it.
fn verifies(header: &str, body: &str, secret: &str) -> bool {
    let t: u64 = header.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse().ok()).unwrap();
    sign(secret, t, body.as_bytes()) == header
}

/// A `[notify]` table for `url`, signed with `$TF_TEST_HOOK_SECRET`, 3 s to get through.
fn notify_table(url: &str) -> String {
    format!("[notify]\nurl = \"{url}\"\nsecret_env = \"TF_TEST_HOOK_SECRET\"\nbudget = \"3s\"\n")
}

/// The warnings of the newest deploy's `notify` step.
fn notify_warnings(sb: &Sandbox) -> Vec<String> {
    let newest = sb.deploys()[0].id;
    sb.logs(newest).into_iter().map(|l| l.message).filter(|m| m.starts_with("notification to")).collect()
}

/// Removes a tag that deploys pulled into the Docker Engine's cache (`docker rmi` on drop).
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        crate::support::docker_ok(&["rmi", &self.0]);
    }
}

#[test]
fn the_scratch_image_builds_without_a_pull_and_runs_version() {
    let image = TfImage::build();
    let version = run(Command::new("docker").args(["run", "--rm", &image.tag, "--version"]));
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.starts_with(&format!("tiny-forge {}", env!("CARGO_PKG_VERSION"))), "{text}");
}

#[test]
fn issue_16_the_image_deploys_probing_by_name_and_rolls_back() {
    let image = TfImage::build();
    let sb = Sandbox::new("imgdep");
    let moving = format!("mv-{}", sb.project);
    // Only untags: `retag` pulled `v2` and `v3`, which keep the image.
    let _pulled = Untag(format!("{}:{moving}", crate::support::images().repo));
    let tf = InImage::new(&sb, &image);
    tf.edit_config(|c| c.replace("default_tag = \"v1\"", &format!("default_tag = \"{moving}\"")));
    let deploy = || tf.tf(&[], &["-q", "deploy", &sb.project, "dev"]);

    retag("v2", &moving);
    let first = deploy();
    first.code(0);
    assert_eq!(http_get(first.stdout.trim()).1, "v2\n");
    // The health check reached the instance by its container name, from inside the container.
    let name = &sb.instances()[0].container_name;
    let logs = sb.logs(sb.deploys()[0].id);
    assert!(
        logs.iter().any(|l| l.message == format!("probing http://{name}:8080/health")),
        "probed by name: {:?}",
        logs.iter().map(|l| &l.message).collect::<Vec<_>>()
    );

    retag("v3", &moving);
    let second = deploy();
    second.code(0);
    assert_eq!(http_get(second.stdout.trim()).1, "v3\n");

    // `rollback` redeploys the previous digest.
    let back = tf.tf(&[], &["-q", "rollback", &sb.project, "dev"]);
    back.code(0);
    assert_eq!(http_get(back.stdout.trim()).1, "v2\n", "serves the previous image again");
    let d = sb.deploys();
    assert_eq!(d[0].trigger.as_str(), "rollback");
    assert_eq!(d[0].digest, d[2].digest);

    // A deploy that fails its health check is rolled back and leaves nothing of its own.
    let serving = sb.instances();
    assert_eq!(serving.len(), 1);
    tf.tf(&[], &["deploy", &sb.project, "dev", "bad"]).code(1).stderr_has("rolled back");
    sb.assert_only_left(&serving);
    assert_eq!(http_get(back.stdout.trim()).1, "v2\n", "the live instance is untouched");
}

#[test]
fn issue_16_the_image_notifies_an_https_receiver_whose_ca_comes_from_ssl_cert_file() {
    let image = TfImage::build();
    let sb = Sandbox::new("imgtls");
    let tf = InImage::new(&sb, &image);
    let ca = TestCa::new();
    let rx = Receiver::start_tls(tf.gateway, Mode::Ok, ca.server_config(tf.gateway));
    tf.configure("", &notify_table(&rx.url()));
    let certs = sb.dir.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::write(certs.join("ca.pem"), ca.pem()).unwrap();
    let mount = format!("{}:/certs:ro", certs.display());
    let secret = format!("TF_TEST_HOOK_SECRET={SECRET}");

    // Without the CA the receiver's certificate is not trusted: the deploy succeeds, the
    // notification does not get through, and the deploy's log says so.
    tf.tf(&["-e", &secret], &["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(rx.received().len(), 0);
    let warnings = notify_warnings(&sb);
    assert!(
        warnings.iter().any(|w| w.contains(&format!("https://{}", tf.gateway))
            && w.contains("TLS: invalid peer certificate")
            && w.contains("settings.ca_file or SSL_CERT_FILE")),
        "the warning names the untrusted certificate and how to trust it: {warnings:?}"
    );

    // With SSL_CERT_FILE naming it, it is trusted (on top of the bundled roots).
    let with_ca = tf.tf(
        &["-v", &mount, "-e", "SSL_CERT_FILE=/certs/ca.pem", "-e", &secret],
        &["-q", "deploy", &sb.project, "dev", "v2"],
    );
    with_ca.code(0);
    assert_eq!(notify_warnings(&sb), Vec::<String>::new());
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let body: serde_json::Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!((body["event"].as_str(), body["tag"].as_str()), (Some("deploy.succeeded"), Some("v2")));
    assert!(verifies(&got[0].headers["x-tiny-forge-signature"], &got[0].body, SECRET), "signed with the secret");
}

#[test]
fn issue_16_the_image_notifies_through_an_https_proxy_and_direct_without_one() {
    let image = TfImage::build();
    let sb = Sandbox::new("imgprx");
    let tf = InImage::new(&sb, &image);
    let ca = TestCa::new();
    let rx = Receiver::start_tls(tf.gateway, Mode::Ok, ca.server_config(tf.gateway));
    let proxy = ConnectProxy::start(tf.gateway);
    // This time the CA comes from settings.ca_file, relative to the config file.
    std::fs::write(tf.config_dir.join("ca.pem"), ca.pem()).unwrap();
    tf.configure("ca_file = \"ca.pem\"\n", &notify_table(&rx.url()));
    let (user, password) = ("tf-ci", "proxy-pw-3141");
    let for_https = format!("HTTPS_PROXY={}", proxy.url_with_credentials(user, password));
    let for_http = format!("HTTP_PROXY={}", proxy.url_with_credentials(user, password));
    let secret = format!("TF_TEST_HOOK_SECRET={SECRET}");
    let no_password = |r: &Run| {
        assert!(!r.stdout.contains(password) && !r.stderr.contains(password), "{}\n{}", r.stdout, r.stderr);
    };

    // `check` shows the roots and the route out, the proxy's credentials masked.
    let check = tf.tf(&["-e", &for_https], &["check"]);
    check.code(0);
    no_password(&check);
    let has = |needle: &str| assert!(check.stdout.contains(needle), "{needle:?} in:\n{}", check.stdout);
    has(&format!("1 settings.ca_file ({CONFIG_DIR}/ca.pem)"));
    has(&format!("ok   outbound: https via http://{}:", tf.gateway));

    // Through the proxy: one tunnel to the receiver, with the proxy's credentials. HTTP_PROXY
    // is set too, yet the health probes (plain http) went direct: the proxy saw nothing else.
    let via = tf.tf(&["-e", &for_https, "-e", &for_http, "-e", &secret], &["deploy", &sb.project, "dev"]);
    via.code(0);
    no_password(&via);
    assert_eq!(rx.received().len(), 1, "{:?}", notify_warnings(&sb));
    let seen = proxy.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].connect_target(), Some(format!("{}:{}", tf.gateway, rx.port).as_str()));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    assert_eq!(seen[0].authorization.as_deref(), Some(format!("Basic {basic}").as_str()));
    let got = rx.received();
    assert!(verifies(&got[0].headers["x-tiny-forge-signature"], &got[0].body, SECRET));

    // NO_PROXY names the receiver's host: direct.
    let gateway = tf.gateway.to_string();
    let no_proxy = format!("NO_PROXY=localhost,{gateway}");
    tf.tf(&["-e", &for_https, "-e", &no_proxy, "-e", &secret], &["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(rx.received().len(), 2, "{:?}", notify_warnings(&sb));
    assert_eq!(proxy.seen().len(), 1, "NO_PROXY bypassed the proxy");

    // Without the proxy variable: direct.
    tf.tf(&["-e", &secret], &["-q", "deploy", &sb.project, "dev"]).code(0);
    assert_eq!(rx.received().len(), 3, "{:?}", notify_warnings(&sb));
    assert_eq!(proxy.seen().len(), 1, "nothing went through the proxy");
}

#[test]
fn the_examples_users_copy_are_all_there() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    for file in [
        "tiny-forge.toml",
        "ci/github-actions.yml",
        "ci/gitlab-ci.yml",
        "cron/tiny-forge",
        "systemd/tiny-forge-prune.service",
        "systemd/tiny-forge-prune.timer",
        "host/docker-compose.yml",
    ] {
        let text = std::fs::read_to_string(root.join(file)).unwrap_or_default();
        assert!(text.contains("tiny-forge"), "examples/{file} is missing or empty");
    }
}

/// Removes a container by name on drop.
struct Stop(String);

impl Drop for Stop {
    fn drop(&mut self) {
        crate::support::docker_ok(&["rm", "-f", "-v", &self.0]);
    }
}

#[test]
fn issue_13_the_image_runs_serve_and_deploys_for_a_remote_cli() {
    let image = TfImage::build();
    let sb = Sandbox::new("imgsrv");
    let tf = InImage::new(&sb, &image);
    tf.configure("", "[server]\nlisten = \"0.0.0.0:8420\"\n");
    let token = sb.run_tf(&["-q", "token", "create", "--name", "ci"]);
    token.code(0);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let name = Stop(format!("tf-serve-{}", sb.project));
    let config = format!("{}:{CONFIG_DIR}:ro", tf.config_dir.display());
    let state = format!("{}:/var/lib/tiny-forge", sb.state.parent().unwrap().display());
    let publish = format!("127.0.0.1:{port}:8420");
    run(Command::new("docker")
        .args(["run", "-d", "--name", &name.0, "-e", "NO_COLOR=1", "-p", &publish])
        .args(["-v", "/var/run/docker.sock:/var/run/docker.sock", "-v", &config, "-v", &state])
        .args(["--network", &sb.network, &image.tag])
        .args(["--config", &format!("{CONFIG_DIR}/config.toml"), "--output", "plain", "serve"]));
    let url = format!("http://127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let health = || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let r = crate::support::client().get(format!("{url}/healthz")).send().await;
            r.map_or(0, |r| r.status().as_u16())
        })
    };
    while health() != 200 {
        assert!(std::time::Instant::now() < deadline, "serve in the image did not answer /healthz");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let mut c = sb.tf(&["-q", "deploy", &sb.project, "dev"]);
    c.env("TINY_FORGE_REMOTE", &url).env("TINY_FORGE_TOKEN", token.stdout.trim());
    let deployed = Run::from(c.output().unwrap());
    deployed.code(0);
    assert_eq!(http_get(deployed.stdout.trim()).1, "hello\n");
    assert_eq!(sb.deploys()[0].actor.as_deref(), Some("token:ci"));
    // `docker stop` is SIGTERM: it shuts down cleanly.
    run(Command::new("docker").args(["stop", "-t", "30", &name.0]));
    let code = crate::support::docker(&["inspect", "-f", "{{.State.ExitCode}}", &name.0]);
    assert_eq!(code.trim(), "0");
}
