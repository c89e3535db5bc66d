//! Packaging: the FROM-scratch image builds here (nothing to pull) and runs, and the commented
//! example config and CI files are in place.

use std::path::Path;
use std::process::Command;

use crate::support::run;

#[test]
fn the_scratch_image_builds_without_a_pull_and_runs_version() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let tag = format!("tiny-forge-test:{}", std::process::id());
    // scripts/test builds the static binary right before the tests; build it here otherwise.
    let out =
        run(Command::new(root.join("scripts/docker-image")).arg(&tag).current_dir(root).env("TF_IMAGE_PREBUILT", "1"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&tag));
    let version = run(Command::new("docker").args(["run", "--rm", &tag, "--version"]));
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(text.starts_with(&format!("tiny-forge {}", env!("CARGO_PKG_VERSION"))), "{text}");
    let _ = Command::new("docker").args(["rmi", &tag]).output();
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
