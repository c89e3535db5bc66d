//! Private registries: a loopback registry that requires htpasswd auth, and every way
//! tiny-forge finds credentials for it (config `*_env`, `auths`, `credHelpers`, `credsStore`).

use std::path::Path;
use std::process::Command;

use crate::support::{Registry, Run, Sandbox, images};

const USER: &str = "ci-bot";
const PASSWORD: &str = "Reg1stry-Pw";

/// A registry requiring auth, holding `tf-test/private:v1`.
fn private_registry() -> (Registry, tempfile::TempDir) {
    let reg = Registry::start_with_auth(USER, PASSWORD);
    let cli = tempfile::tempdir().unwrap(); // the docker CLI's own config for the push
    let docker = |args: &[&str]| {
        let mut c = Command::new("docker");
        c.env("DOCKER_CONFIG", cli.path()).args(args);
        c
    };
    let mut login = docker(&["login", "-u", USER, "--password-stdin", &reg.host()]);
    login.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
    let mut child = login.spawn().unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), PASSWORD.as_bytes()).unwrap();
    assert!(child.wait().unwrap().success(), "docker login to the test registry");
    let src = format!("{}:v2", images().repo);
    let dst = format!("{}/tf-test/private:v1", reg.host());
    // Retried: other tests' image cleanup may take the image before it is pushed.
    let ok = |args: &[&str]| docker(args).output().is_ok_and(|o| o.status.success());
    let pushed = (0..5).any(|_| ok(&["pull", "-q", &src]) && ok(&["tag", &src, &dst]) && ok(&["push", "-q", &dst]));
    assert!(pushed, "cannot pull {src}, tag it {dst} and push that");
    let _ = docker(&["rmi", &dst]).output();
    (reg, cli)
}

fn sandbox(prefix: &str, reg: &Registry, extra_tables: &str) -> Sandbox {
    let sb = Sandbox::new(prefix);
    sb.config_with(extra_tables, "", "");
    let text = std::fs::read_to_string(&sb.config)
        .unwrap()
        .replace(&images().repo, &format!("{}/tf-test/private", reg.host()));
    sb.write_config(&text);
    sb
}

fn deploy(sb: &Sandbox, docker_config: &Path, path_extra: Option<&Path>) -> Run {
    let mut c = sb.tf(&["deploy", &sb.project, "dev"]);
    c.env("DOCKER_CONFIG", docker_config).env("TF_TEST_REGISTRY_PASSWORD", PASSWORD);
    if let Some(dir) = path_extra {
        c.env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap()));
    }
    Run::from(c.output().unwrap())
}

#[test]
fn private_registry_credentials_from_every_source() {
    let (reg, cli) = private_registry();
    let empty = tempfile::tempdir().unwrap();

    // No credentials: the registry says no, clearly, and nothing is left.
    let sb = sandbox("regnone", &reg, "");
    let run = deploy(&sb, empty.path(), None);
    run.code(1);
    assert!(run.error_line().contains("pull failed"), "{}", run.stderr);
    assert!(run.stderr.contains("no basic auth credentials") || run.stderr.contains("unauthorized"), "{}", run.stderr);
    sb.assert_nothing_left();

    // From the tiny-forge config, the password through an *_env key.
    let table = format!(
        "[registries.\"{}\"]\nusername = \"{USER}\"\npassword_env = \"TF_TEST_REGISTRY_PASSWORD\"\n",
        reg.host()
    );
    let sb = sandbox("regcfg", &reg, &table);
    deploy(&sb, empty.path(), None).code(0);
    let logs = sb.logs(sb.deploys()[0].id);
    assert!(logs.iter().any(|l| l.message.contains("credentials of `ci-bot` from the tiny-forge config")), "{logs:?}");

    // From `docker login`'s auths entry.
    let sb = sandbox("regauths", &reg, "");
    deploy(&sb, cli.path(), None).code(0);

    // From a credential helper, named per registry (credHelpers) or as the default (credsStore).
    let bin = tempfile::tempdir().unwrap();
    let helper = bin.path().join("docker-credential-tftest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread registry\necho \"{{\\\"ServerURL\\\":\\\"$registry\\\",\\\"Username\\\":\\\"{USER}\\\",\\\"Secret\\\":\\\"{PASSWORD}\\\"}}\"\n"),
    )
    .unwrap();
    crate::support::run(Command::new("chmod").args(["+x"]).arg(&helper));
    for (prefix, config) in [
        ("reghelper", format!("{{\"credHelpers\":{{\"{}\":\"tftest\"}}}}", reg.host())),
        ("regstore", "{\"credsStore\":\"tftest\"}".to_owned()),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), config).unwrap();
        let sb = sandbox(prefix, &reg, "");
        let run = deploy(&sb, dir.path(), Some(bin.path()));
        run.code(0);
        for output in [&run.stdout, &run.stderr] {
            assert!(!output.contains(PASSWORD), "the registry password is never printed");
        }
    }
}
