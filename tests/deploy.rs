//! `tiny-forge deploy` against the real Docker Engine and a real registry.

use crate::support::{Registry, Sandbox, docker, http_get, images};

#[test]
fn happy_path_deploys_a_labelled_healthy_container_and_records_every_step() {
    let sb = Sandbox::new("happy");
    sb.config("", "");
    let run = sb.run_tf(&["--output", "plain", "deploy", &sb.project, "dev"]);
    run.code(0);
    let url = run.stdout.trim();
    assert!(url.starts_with("http://") && url.ends_with(":8080"), "stdout is the URL: {url:?}");
    assert_eq!(http_get(url), (200, "hello\n".to_owned()), "the instance answers at its URL");

    let containers = sb.containers();
    assert_eq!(containers.len(), 1, "{containers:?}");
    let name = containers[0].split(' ').next().unwrap();
    assert!(containers[0].ends_with(" running"), "{containers:?}");
    let labels = docker(&["inspect", "-f", "{{json .Config.Labels}}", name]);
    let labels: serde_json::Value = serde_json::from_str(&labels).unwrap();
    assert_eq!(labels["dev.tiny-forge.managed"], "true");
    assert_eq!(labels["dev.tiny-forge.project"], sb.project.as_str());
    assert_eq!(labels["dev.tiny-forge.stage"], "dev");
    assert_eq!(labels["dev.tiny-forge.tag"], "v1");
    assert_eq!(labels["dev.tiny-forge.slot"], format!("{}/dev/v1", sb.project));
    let image = docker(&["inspect", "-f", "{{.Config.Image}}", name]);
    assert!(image.contains("@sha256:"), "created from the digest");

    let instances = sb.instances();
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0].status.as_str(), "live");
    assert_eq!(instances[0].url.as_deref(), Some(url));
    let deploys = sb.deploys();
    assert_eq!(deploys[0].status.as_str(), "succeeded");
    assert!(deploys[0].digest.as_deref().unwrap().starts_with("sha256:"));
    let logs = sb.logs(deploys[0].id);
    for step in ["lock", "pull", "network", "create", "start", "health", "proxy", "finish", "retire"] {
        assert!(
            logs.iter().any(|l| l.step == step && l.message.starts_with(&format!("{step} done in"))),
            "no entry for {step}"
        );
    }
    assert!(run.stderr.contains(" info  pull "), "plain output shows the steps live:\n{}", run.stderr);
}

#[test]
fn app_answering_500_is_rolled_back_with_the_reason() {
    let sb = Sandbox::new("h500");
    sb.config("env = { HEALTH_STATUS = \"500\" }", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1).stderr_has("500 Internal Server Error").stderr_has("rolled back: nothing was left behind");
    assert!(run.stdout.is_empty(), "no URL is printed for a failed deploy: {:?}", run.stdout);
    sb.assert_nothing_left();
    let d = &sb.deploys()[0];
    assert_eq!(d.status.as_str(), "failed");
    assert!(d.error.as_deref().unwrap().contains("health failed: unhealthy after 2 failed probes"), "{:?}", d.error);
}

#[test]
fn app_that_never_listens_is_rolled_back() {
    let sb = Sandbox::new("nolisten");
    sb.config("env = { LISTEN_AFTER_MS = \"600000\" }", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1).stderr_has("connection refused");
    sb.assert_nothing_left();
    assert_eq!(sb.deploys()[0].status.as_str(), "failed");
}

#[test]
fn container_that_exits_fails_fast_with_its_exit_code_and_last_log_lines() {
    let sb = Sandbox::new("exits");
    // The default start period (30 s) would hide the crash if exits were not watched.
    sb.config(
        "env = { LISTEN_AFTER_MS = \"600000\", EXIT_AFTER_MS = \"200\", EXIT_CODE = \"3\" }",
        "[projects.PROJECT.health]\nstart_period = \"30s\"\nretries = 3\ninterval = \"5s\"\n"
            .replace("PROJECT", &sb.project)
            .as_str(),
    );
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1)
        .stderr_has("container exited with code 3 before it was healthy")
        .stderr_has("demo-app: fatal: simulated crash");
    sb.assert_nothing_left();
    let d = &sb.deploys()[0];
    let logs = sb.logs(d.id);
    let failed =
        logs.iter().find(|l| l.step == "health" && l.level.as_str() == "error").expect("health failure logged");
    let started = logs.iter().find(|l| l.step == "health" && l.message == "health started").unwrap();
    assert!(failed.ts - started.ts < 25_000, "failed before the start period ended, so exits are watched");
}

#[test]
fn unknown_tag_fails_the_pull_and_leaves_nothing() {
    let sb = Sandbox::new("notag");
    sb.config("", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev", "no-such-tag"]);
    run.code(1).stderr_has("pull failed").stderr_has("manifest unknown");
    sb.assert_nothing_left();
    assert!(sb.logs(sb.deploys()[0].id).iter().any(|l| l.step == "pull" && l.level.as_str() == "error"));
}

#[test]
fn stopped_registry_fails_the_pull_with_a_clear_message() {
    let sb = Sandbox::new("regdown");
    let own = Registry::start();
    let image = format!("{}/tf-test/gone", own.host());
    own.stop();
    sb.config("", "");
    let text = std::fs::read_to_string(&sb.config).unwrap().replace(&images().repo, &image);
    sb.write_config(&text);
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1).stderr_has("pull failed").stderr_has("connection refused");
    sb.assert_nothing_left();
}

#[test]
fn create_refused_by_the_engine_is_rolled_back() {
    let sb = Sandbox::new("create");
    // Docker refuses memory limits under 6 MB at create time.
    sb.config("memory = \"1k\"", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1).stderr_has("create failed").stderr_has("Minimum memory limit");
    sb.assert_nothing_left();
}

#[test]
fn network_that_containers_cannot_join_is_rolled_back() {
    let sb = Sandbox::new("net");
    // A config-only network exists but cannot hold containers.
    crate::support::run(std::process::Command::new("docker").args(["network", "create", "--config-only", &sb.network]));
    sb.config("", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1);
    let line = run.error_line();
    assert!(
        line.contains("network failed") && line.contains(&sb.network),
        "the error names the network: {}",
        run.stderr
    );
    assert!(line.contains("configuration-only"), "{line}");
    sb.assert_nothing_left();
}

#[test]
fn redeploy_of_the_same_tag_replaces_the_instance_blue_green() {
    let sb = Sandbox::new("redeploy");
    sb.config("", "");
    let first = sb.run_tf(&["-q", "deploy", &sb.project, "dev"]);
    first.code(0);
    let second = sb.run_tf(&["-q", "deploy", &sb.project, "dev"]);
    second.code(0);
    let containers = sb.containers();
    assert_eq!(containers.len(), 1, "the old container was retired: {containers:?}");
    assert_eq!(sb.instances().len(), 1);
    assert_eq!(http_get(second.stdout.trim()).0, 200);
}

#[test]
fn tags_run_side_by_side_on_their_own_urls() {
    let sb = Sandbox::new("side");
    sb.config("", "");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    assert_eq!(sb.containers().len(), 2);
    let rows = sb.instances();
    assert_eq!(rows.iter().map(|r| r.tag.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
}
