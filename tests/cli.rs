//! The command line: bad input, history, list, completions.

use crate::support::{Sandbox, docker};

#[test]
fn invalid_names_exit_2_with_one_line_and_touch_nothing() {
    let sb = Sandbox::new("names");
    sb.config("", "");
    for (args, needle) in [
        (vec!["deploy", "Shop", "dev"], "project name `Shop` is invalid"),
        (vec!["deploy", &sb.project, "QA"], "stage name `QA` is invalid"),
        (vec!["deploy", &sb.project, "dev", "bad/tag"], "tag `bad/tag` is invalid"),
        (vec!["deploy", &sb.project, "dev", "-x"], ""),
        (vec!["deploy", &sb.project, "qa"], "stage `qa` is not defined"),
        (vec!["deploy", "nosuch", "dev"], "project `nosuch` is not defined"),
    ] {
        let run = sb.run_tf(&args);
        run.code(2);
        let lines: Vec<&str> = run.stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        if !needle.is_empty() {
            assert_eq!(lines.len(), 1, "one line for {args:?}: {}", run.stderr);
            assert!(lines[0].starts_with("error: ") && lines[0].contains(needle), "{args:?}: {}", run.stderr);
        }
    }
    assert!(!sb.state.exists(), "no state file was created");
    assert!(sb.containers().is_empty());
}

#[test]
fn unknown_config_key_names_the_file_and_line() {
    let sb = Sandbox::new("badkey");
    sb.config("colour = \"blue\"", "");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(2);
    let text = std::fs::read_to_string(&sb.config).unwrap();
    let n = text.lines().position(|l| l.starts_with("colour")).unwrap() + 1;
    let line = run.error_line();
    assert!(line.contains(&format!("tiny-forge.toml:{n}:1:")) && line.contains("unknown field `colour`"), "{line}");
    assert!(!sb.state.exists());
}

#[test]
fn missing_config_file_exits_2_and_says_where_it_looked() {
    let sb = Sandbox::new("nocfg");
    let run = sb.run_tf(&["deploy", "shop", "dev"]);
    run.code(2);
    assert!(run.error_line().contains("cannot read config file"), "{}", run.stderr);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-forge"))
        .args(["deploy", "shop", "dev"])
        .current_dir(dir.path())
        .env_remove("TINY_FORGE_CONFIG")
        .env("XDG_CONFIG_HOME", dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no config file found") && err.contains("tiny-forge.toml"), "{err}");
}

#[test]
fn unreachable_docker_exits_2_before_anything_is_recorded() {
    let sb = Sandbox::new("nodock");
    sb.config("", "");
    let run = crate::support::Run::from(
        sb.tf(&["deploy", &sb.project, "dev"]).env("DOCKER_HOST", "unix:///nonexistent/docker.sock").output().unwrap(),
    );
    run.code(2);
    assert!(run.error_line().contains("cannot reach the Docker Engine"), "{}", run.stderr);
    assert!(run.error_line().contains("DOCKER_HOST"), "says what to fix: {}", run.stderr);
    assert!(!sb.state.exists(), "no state changed");
}

#[test]
fn history_and_list_show_what_happened() {
    let sb = Sandbox::new("hist");
    sb.config("", "");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let serving = sb.instances();
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "nope"]).code(1);
    sb.assert_only_left(&serving);

    let h = sb.run_tf(&["history", &sb.project]);
    h.code(0);
    let lines: Vec<&str> = h.stdout.lines().collect();
    assert!(lines[0].starts_with("ID  SLOT"), "{}", h.stdout);
    assert!(lines[1].contains(":nope") && lines[1].contains("failed"), "newest first: {}", h.stdout);
    assert!(lines[2].contains(":v1") && lines[2].contains("succeeded"), "{}", h.stdout);

    let j = sb.run_tf(&["--output", "json", "history", &sb.project]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v[0]["status"], "failed");
    assert_eq!(v[0]["exit_code"], 1);
    assert_eq!(v[1]["status"], "succeeded");

    let id = v[1]["id"].as_i64().unwrap().to_string();
    let show = sb.run_tf(&["history", "show", &id]);
    show.code(0);
    assert!(show.stdout.contains("health") && show.stdout.contains("result  succeeded"), "{}", show.stdout);

    let l = sb.run_tf(&["list", &sb.project]);
    l.code(0);
    assert!(l.stdout.lines().nth(1).is_some_and(|r| r.contains("v1") && r.contains("running")), "{}", l.stdout);
    let probed = sb.run_tf(&["list", &sb.project, "--probe"]);
    assert!(probed.stdout.lines().nth(1).is_some_and(|r| r.contains("healthy")), "{}", probed.stdout);
    let lj = sb.run_tf(&["--output", "json", "list", &sb.project]);
    let v: serde_json::Value = serde_json::from_str(&lj.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["container_state"], "running");
}

#[test]
fn list_flags_a_container_removed_behind_its_back() {
    let sb = Sandbox::new("drift");
    sb.config("", "");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let name = sb.instances()[0].container_name.clone();
    docker(&["rm", "-f", &name]);
    let l = sb.run_tf(&["list", &sb.project]);
    assert!(l.stdout.contains("missing"), "{}", l.stdout);
}

#[test]
fn history_show_of_unknown_deploy_exits_2() {
    let sb = Sandbox::new("hshow");
    sb.config("", "");
    sb.run_tf(&["history", "show", "999"]).code(2);
}

#[test]
fn committed_completions_match_the_cli() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for (shell, file) in [
        ("bash", "tiny-forge.bash"),
        ("zsh", "_tiny-forge"),
        ("fish", "tiny-forge.fish"),
        ("elvish", "tiny-forge.elv"),
        ("powershell", "_tiny-forge.ps1"),
    ] {
        let out =
            std::process::Command::new(env!("CARGO_BIN_EXE_tiny-forge")).args(["completions", shell]).output().unwrap();
        let committed = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        assert!(
            committed == String::from_utf8_lossy(&out.stdout),
            "completions/{file} is stale; refresh with: ./target/debug/tiny-forge completions {shell} > completions/{file}"
        );
    }
}

#[test]
fn committed_man_page_matches_the_cli() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/tiny-forge.1");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-forge")).arg("manpage").output().unwrap();
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == String::from_utf8_lossy(&out.stdout),
        "man/tiny-forge.1 is stale; refresh with: ./target/debug/tiny-forge manpage > man/tiny-forge.1"
    );
}

#[test]
fn version_names_the_release_and_every_subcommand_has_help_with_an_example() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-forge")).arg("--version").output().unwrap();
    let v = String::from_utf8_lossy(&out.stdout);
    assert!(v.starts_with(&format!("tiny-forge {}", env!("CARGO_PKG_VERSION"))), "{v}");
    for sub in ["deploy", "rollback", "remove", "prune", "list", "history", "check", "completions"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tiny-forge")).args([sub, "--help"]).output().unwrap();
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{sub} --help");
        assert!(help.contains("Example"), "{sub} --help has an example:\n{help}");
    }
}

#[test]
fn check_passes_on_a_working_setup_and_names_each_broken_part() {
    let sb = Sandbox::new("check");
    sb.config("", "");
    let ok = sb.run_tf(&["check"]);
    ok.code(0);
    for part in ["config", "proxy", "state", "docker", "network", "registry"] {
        assert!(
            ok.stdout.lines().any(|l| l.starts_with("ok") && l.contains(&format!(" {part}:"))),
            "{part}:\n{}",
            ok.stdout
        );
    }
    let failing = |run: &crate::support::Run, part: &str| {
        assert_eq!(run.code, 2, "{}", run.stdout);
        assert!(
            run.stdout.lines().any(|l| l.starts_with("FAIL") && l.contains(&format!(" {part}:"))),
            "{part}:\n{}",
            run.stdout
        );
    };
    // An image tag the registry does not have.
    let text =
        std::fs::read_to_string(&sb.config).unwrap().replace("default_tag = \"v1\"", "default_tag = \"no-such-tag\"");
    sb.write_config(&text);
    failing(&sb.run_tf(&["check"]), "registry");
    // No Docker.
    let run =
        crate::support::Run::from(sb.tf(&["check"]).env("DOCKER_HOST", "unix:///nonexistent.sock").output().unwrap());
    failing(&run, "docker");
    // An unusable state path.
    failing(&sb.run_tf(&["--state", "/proc/version/x.db", "check"]), "state");
    // A proxy that refuses the login.
    let npm = crate::support::npm::NpmDouble::start("a@b.c", "right");
    sb.config_with(&crate::support::npm_proxy(&npm.url(), "a@b.c", "TF_TEST_PW"), "", "");
    failing(&crate::support::Run::from(sb.tf(&["check"]).env("TF_TEST_PW", "wrong").output().unwrap()), "proxy");
    // A config that does not parse.
    sb.write_config("[settings]\ncolour = 1\n");
    failing(&sb.run_tf(&["check"]), "config");
}

/// Issue 11, item 14: `prune` from cron reads no stage's secrets. An unrelated project whose
/// registry password variable is unset and whose env file is missing must not stop it; a deploy
/// of that project still refuses up front, naming what is missing and never a value.
#[test]
fn issue_11_prune_needs_no_stage_secret_and_deploying_that_stage_names_what_is_missing() {
    const UNSET: &str = "TF_TEST_SURELY_UNSET_REGISTRY_PW";
    let sb = Sandbox::new("prunesec");
    let other = format!("{}b", sb.project);
    sb.config("", "");
    let text = std::fs::read_to_string(&sb.config).unwrap();
    sb.write_config(&format!(
        "[registries.\"registry.invalid\"]\nusername = \"ci\"\npassword_env = \"{UNSET}\"\n\n{text}\n\
         [projects.{other}]\nimage = \"registry.invalid/team/other\"\nport = 8080\n\
         [projects.{other}.stages.qa]\nenv_file = \"qa.env\"\n"
    ));
    let tf = |args: &[&str]| crate::support::Run::from(sb.tf(args).env_remove(UNSET).output().unwrap());

    // A tag instance of the sandbox's project, old enough for `--older-than 0s`.
    tf(&["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    assert_eq!(sb.instances().len(), 1);
    let prune = tf(&["prune", "--older-than", "0s"]);
    prune.code(0);
    assert!(prune.stdout.contains("did remove"), "{}", prune.stdout);
    sb.assert_nothing_left();

    // The unrelated stage: a deploy or remove reads its secrets first and exits 2, touching nothing.
    std::fs::write(sb.dir.path().join("qa.env"), "OK=1\nDB_PASSWORD hunter2-value\n").unwrap();
    for args in [vec!["deploy", other.as_str(), "qa"], vec!["remove", other.as_str(), "qa", "v1"]] {
        let run = tf(&args);
        run.code(2);
        let line = run.error_line();
        assert_eq!(run.stderr.lines().filter(|l| !l.trim().is_empty()).count(), 1, "one line: {}", run.stderr);
        assert!(line.contains(&format!("password_env names `{UNSET}`, which is not set")), "{args:?}: {line}");
        assert!(line.contains("qa.env:2: the variable name holds whitespace"), "{args:?}: {line}");
        assert!(!run.stderr.contains("hunter2") && !run.stdout.contains("hunter2"), "{}", run.stderr);
    }
    let filter = format!("label=dev.tiny-forge.project={other}");
    let out = crate::support::docker(&["ps", "-aq", "--filter", &filter]);
    assert!(out.trim().is_empty(), "nothing was created for {other}");
}
