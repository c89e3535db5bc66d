//! Webhook notifications: payloads, signatures, formats, and that they never change a deploy.

use serde_json::Value;
use tiny_forge::notify::sign;

use crate::support::receiver::{Mode, Receiver};
use crate::support::{Run, Sandbox};

const SECRET: &str = "hook-secret-5521";

fn bed(prefix: &str, notify: &str, project_extra: &str) -> Sandbox {
    let sb = Sandbox::new(prefix);
    sb.config_with(notify, project_extra, "");
    sb
}

fn deploy(sb: &Sandbox) -> Run {
    Run::from(sb.tf(&["deploy", &sb.project, "dev"]).env("TF_TEST_HOOK_SECRET", SECRET).output().unwrap())
}

/// Verifies `t=…,v1=…` over the body with `secret`, as a receiver would.
fn verifies(header: &str, body: &str, secret: &str) -> bool {
    let t: u64 = header.split(',').find_map(|p| p.strip_prefix("t=")).and_then(|t| t.parse().ok()).unwrap();
    sign(secret, t, body.as_bytes()) == header
}

#[test]
fn success_and_failure_are_posted_signed_with_the_documented_payload() {
    let rx = Receiver::start(Mode::Ok);
    let notify = format!("[notify]\nurl = \"{}\"\nsecret_env = \"TF_TEST_HOOK_SECRET\"\n", rx.url());
    let sb = bed("hookok", &notify, "");
    deploy(&sb).code(0);
    let got = rx.received();
    assert_eq!(got.len(), 1);
    let body: Value = serde_json::from_str(&got[0].body).unwrap();
    assert_eq!(body["event"], "deploy.succeeded");
    assert_eq!(body["project"], sb.project.as_str());
    assert_eq!(body["stage"], "dev");
    assert_eq!(body["tag"], "v1");
    assert_eq!(body["trigger"], "deploy");
    assert!(body["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(body["url"].as_str().unwrap().starts_with("http://"));
    assert!(body["deploy_id"].as_i64().is_some() && body["duration_ms"].as_u64().is_some());
    assert_eq!(body["error"], Value::Null);
    let sig = &got[0].headers["x-tiny-forge-signature"];
    assert!(verifies(sig, &got[0].body, SECRET), "signature verifies with the secret");
    assert!(!verifies(sig, &got[0].body, "another-secret"), "and not with another");
    for (k, v) in &got[0].headers {
        assert!(!v.contains(SECRET), "secret in header {k}");
    }

    // A failed deploy is reported as failed, never as a success.
    let cfg = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace("port = 8080", "port = 8080\nenv = { HEALTH_STATUS = \"500\" }");
    sb.write_config(&cfg);
    let serving = sb.instances();
    deploy(&sb).code(1);
    sb.assert_only_left(&serving);
    let got = rx.received();
    assert_eq!(got.len(), 2, "one notification per deploy");
    let body: Value = serde_json::from_str(&got[1].body).unwrap();
    assert_eq!(body["event"], "deploy.failed");
    assert!(body["error"].as_str().unwrap().contains("health failed"), "{body}");
    assert_eq!(body["url"], Value::Null);
    assert!(!got.iter().any(|r| r.body.contains(SECRET)));
}

#[test]
fn slack_and_discord_get_their_own_payloads_and_several_targets_are_told() {
    let slack = Receiver::start(Mode::Ok);
    let discord = Receiver::start(Mode::Ok);
    let notify = format!(
        "[[notify]]\nurl = \"{}\"\nformat = \"slack\"\n[[notify]]\nurl = \"{}\"\nformat = \"discord\"\n",
        slack.url(),
        discord.url()
    );
    let sb = bed("hookfmt", &notify, "");
    deploy(&sb).code(0);
    let s: Value = serde_json::from_str(&slack.received()[0].body).unwrap();
    let d: Value = serde_json::from_str(&discord.received()[0].body).unwrap();
    assert!(s["text"].as_str().unwrap().contains("deployed"), "{s}");
    assert!(d["content"].as_str().unwrap().contains("deployed"), "{d}");
    assert!(!slack.received()[0].headers.contains_key("x-tiny-forge-signature"), "no secret, no signature");
}

#[test]
fn a_receiver_that_is_down_or_hangs_never_changes_the_outcome() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hang = Receiver::start(Mode::Hang);
    let notify = format!(
        "[[notify]]\nurl = \"http://127.0.0.1:{port}/down\"\nbudget = \"1s\"\n[[notify]]\nurl = \"{}\"\nbudget = \"1s\"\n",
        hang.url()
    );
    let sb = bed("hookdown", &notify, "");
    deploy(&sb).code(0);
    let d = &sb.deploys()[0];
    assert_eq!(d.status.as_str(), "succeeded");
    let warnings: Vec<String> = sb.logs(d.id).into_iter().filter(|l| l.step == "notify").map(|l| l.message).collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("connection refused")), "{warnings:?}");
    assert!(warnings.iter().any(|w| w.contains("timed out")), "{warnings:?}");
    assert!(
        warnings.iter().all(|w| w.contains("http://127.0.0.1") && !w.contains("/hook") && !w.contains("/down")),
        "only scheme and host are shown"
    );
    assert!(!hang.received().is_empty(), "the hanging receiver was tried");
}

/// A deploy notifies, so it needs the secret; `remove` and `prune` notify no one and do not.
#[test]
fn a_missing_webhook_secret_is_a_config_error_for_a_deploy_only() {
    let notify =
        "[notify]\nurl = \"http://127.0.0.1:9/x\"\nsecret_env = \"TF_TEST_SURELY_UNSET_SECRET\"\nbudget = \"1s\"\n";
    let sb = bed("hooknosec", notify, "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(2);
    assert!(run.error_line().contains("TF_TEST_SURELY_UNSET_SECRET"), "{}", run.stderr);
    let with_secret = sb.tf(&["-q", "deploy", &sb.project, "dev"]).env("TF_TEST_SURELY_UNSET_SECRET", SECRET).output();
    Run::from(with_secret.unwrap()).code(0);
    assert_eq!(sb.containers().len(), 1);
    sb.run_tf(&["-q", "prune"]).code(0);
    sb.run_tf(&["-q", "remove", &sb.project, "dev", "v1"]).code(0);
    sb.assert_nothing_left();
}

/// Issue 11, item 12: a crashed container's log lines can hold secrets. They stay in local
/// history, and reach only the notify targets with `include_logs = true`, never inside `error`.
#[test]
fn issue_11_container_logs_reach_only_targets_with_include_logs() {
    let plain = Receiver::start(Mode::Ok);
    let with_logs = Receiver::start(Mode::Ok);
    let notify = format!(
        "[[notify]]\nurl = \"{}\"\n[[notify]]\nurl = \"{}\"\nformat = \"slack\"\ninclude_logs = true\n",
        plain.url(),
        with_logs.url()
    );
    let sb = Sandbox::new("hooklogs");
    // A start period long enough that the crash, not the probes, fails the health check.
    let health = format!("[projects.{}.health]\nstart_period = \"30s\"\n", sb.project);
    let crash = "env = { LISTEN_AFTER_MS = \"600000\", EXIT_AFTER_MS = \"200\", EXIT_CODE = \"3\" }";
    sb.config_with(&notify, crash, &health);
    deploy(&sb).code(1);
    sb.assert_nothing_left();

    let body: Value = serde_json::from_str(&plain.received()[0].body).unwrap();
    assert_eq!(body["event"], "deploy.failed");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("health failed: container exited with code 3"), "{body}");
    assert_eq!(body["logs"], serde_json::json!([]), "{body}");
    assert!(!plain.received()[0].body.contains("simulated crash"), "{body}");

    let slack: Value = serde_json::from_str(&with_logs.received()[0].body).unwrap();
    let text = slack["text"].as_str().unwrap();
    assert!(text.contains("last log lines:") && text.contains("demo-app: fatal: simulated crash"), "{text}");

    let d = &sb.deploys()[0];
    assert!(d.error.as_deref().unwrap_or_default().contains("simulated crash"), "local history keeps them: {d:?}");
}

/// Issue 21 (review F2): a release's and a hook's output is log output. It may hold secrets
/// (here a database URL with its password), so it reaches only the targets with
/// `include_logs = true`: never in another target's `error`, nor in its `leftovers`.
#[test]
fn issue_21_release_and_hook_output_reach_only_targets_with_include_logs() {
    let plain = Receiver::start(Mode::Ok);
    let with_logs = Receiver::start(Mode::Ok);
    let notify = format!(
        "[[notify]]\nurl = \"{}\"\n[[notify]]\nurl = \"{}\"\ninclude_logs = true\n",
        plain.url(),
        with_logs.url()
    );
    let sb = Sandbox::new("hookout");
    let secret_env = "env = { DATABASE_URL = \"postgres://app:s3cret-9931@db/app\" }";
    sb.config_with(&notify, &format!("{secret_env}\nrelease = {{ command = [\"once\", \"1\"] }}"), "");
    deploy(&sb).code(1);
    sb.assert_nothing_left();
    let body = &plain.received()[0].body;
    assert!(body.contains("release failed") && body.contains("exited with code 1"), "{body}");
    assert!(!body.contains("s3cret-9931"), "the release's output left the host: {body}");
    assert!(with_logs.received()[0].body.contains("s3cret-9931"), "a target that asks gets it");
    assert!(sb.deploys()[0].error.as_deref().unwrap_or_default().contains("s3cret-9931"), "local history keeps it");

    // A first deploy that fails after on_create: its rollback's on_remove fails too, and is a
    // leftover whose output stays home.
    let hooks = "env = { DATABASE_URL = \"postgres://app:s3cret-9931@db/app\", HEALTH_STATUS = \"500\" }\non_create = { command = [\"once\"] }\non_remove = { command = [\"once\", \"2\"] }";
    sb.config_with(&notify, hooks, "");
    let run = deploy(&sb);
    run.code(3);
    let body = &plain.received()[1].body;
    let sent: Value = serde_json::from_str(body).unwrap();
    assert!(sent["leftovers"].to_string().contains("on_remove hook"), "{body}");
    assert!(!body.contains("s3cret-9931"), "the hook's output left the host: {body}");
    assert!(with_logs.received()[1].body.contains("s3cret-9931"), "a target that asks gets it");
    assert!(run.stdout.contains("s3cret-9931") || run.stderr.contains("s3cret-9931"), "the local run shows it");
}
