//! Hostile input: odd tags, unusable state directories, a full disk, a Docker socket that is not
//! one, credentials in a proxy URL. Each gets a clear one-line error and changes nothing.

use std::process::Command;

use crate::support::npm::NpmDouble;
use crate::support::{Run, Sandbox, retag, run};

#[test]
fn tags_docker_would_refuse_exit_2_and_say_what_a_tag_may_hold() {
    let sb = Sandbox::new("badtags");
    sb.config("", "");
    let long = "a".repeat(129);
    for tag in ["---", "...", "é", "a b", "a/b", ".hidden", long.as_str()] {
        let run = sb.run_tf(&["deploy", "--", &sb.project, "dev", tag]);
        run.code(2);
        let line = run.error_line();
        assert!(line.contains("is invalid") && line.contains("1 to 128 characters"), "{tag:?}: {}", run.stderr);
    }
    assert!(!sb.state.exists());
}

#[test]
fn a_128_character_tag_deploys_under_a_valid_host_name() {
    let sb = Sandbox::new("longtag");
    let npm = NpmDouble::start("ops@example.com", "pw");
    let tables = crate::support::npm_proxy(&npm.url(), "ops@example.com", "TF_TEST_NPM_PASSWORD");
    sb.config_with(&tables, "", "");
    let tag = format!("Feature.{}", "x".repeat(120));
    assert_eq!(tag.len(), 128);
    retag("v2", &tag);
    let run = Run::from(
        sb.tf(&["-q", "deploy", &sb.project, "dev", &tag]).env("TF_TEST_NPM_PASSWORD", "pw").output().unwrap(),
    );
    run.code(0);
    let domain = npm.hosts()[0]["domain_names"][0].as_str().unwrap().to_owned();
    let label = domain.split('.').next().unwrap();
    assert!(label.len() <= 63, "{label}");
    assert!(label.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{label}");
    assert!(label.starts_with(&format!("stage-dev-{}-feature-xxx", sb.project)), "{label}");
    assert_eq!(sb.instances()[0].tag, tag, "the state keeps the real tag");
    assert!(domain.len() <= 253);
}

#[test]
fn an_unusable_state_path_exits_2_before_anything_is_created() {
    let sb = Sandbox::new("rostate");
    sb.config("", "");
    // A file where a directory should be: no one, root included, can create the state there.
    let run = sb.run_tf(&["--state", "/proc/version/state.db", "deploy", &sb.project, "dev"]);
    run.code(2);
    assert!(run.error_line().contains("cannot open state file /proc/version/state.db"), "{}", run.stderr);
    assert!(sb.containers().is_empty());
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs(tempfile::TempDir);

impl Tmpfs {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        run(Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir.path()));
        Self(dir)
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.0.path()).status();
    }
}

/// The state file on a small tmpfs that is then filled to the last block (`dd` must end with
/// "No space left on device", and the file system must report no free block): the deploy cannot
/// record anything, so it refuses up front (exit 2, the disk named as full) and starts nothing.
/// Once space is freed, the state file still holds the first deploy, whose instance still runs.
#[test]
fn a_full_disk_under_the_state_file_fails_cleanly_and_leaves_nothing() {
    let mut sb = Sandbox::new("fulldisk");
    let fs = Tmpfs::mount("512k");
    sb.state = fs.0.path().join("state.db");
    sb.config("", "");
    // A first deploy creates the state file; then the disk fills up.
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let before = sb.instances();
    assert_eq!(before.len(), 1);
    let fill = fs.0.path().join("fill");
    let dd = Command::new("dd").args(["if=/dev/zero", "bs=4k"]).arg(format!("of={}", fill.display())).output().unwrap();
    let dd_err = String::from_utf8_lossy(&dd.stderr);
    assert!(!dd.status.success() && dd_err.contains("No space left on device"), "dd must fill the disk: {dd_err}");
    let free = run(Command::new("stat").args(["-f", "-c", "%a"]).arg(fs.0.path()));
    assert_eq!(String::from_utf8_lossy(&free.stdout).trim(), "0", "no free block left");

    let run = sb.run_tf(&["deploy", &sb.project, "dev", "v2"]);
    run.code(2);
    assert!(run.error_line().contains("full"), "says the disk is full: {}", run.stderr);

    std::fs::remove_file(&fill).unwrap();
    sb.assert_only_left(&before);
    assert!(!sb.deploys().iter().any(|d| d.tag == "v2"), "the v2 deploy was never recorded: {:?}", sb.deploys());
}

#[test]
fn a_docker_host_that_is_not_a_socket_exits_2() {
    let sb = Sandbox::new("nosock");
    sb.config("", "");
    let run =
        Run::from(sb.tf(&["deploy", &sb.project, "dev"]).env("DOCKER_HOST", "unix:///etc/hostname").output().unwrap());
    run.code(2);
    assert!(run.error_line().contains("cannot reach the Docker Engine"), "{}", run.stderr);
    assert!(!sb.state.exists());
}

#[test]
fn credentials_in_a_proxy_url_are_never_printed() {
    let sb = Sandbox::new("urlcred");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://admin:S3cretInUrl@127.0.0.1:{port}");
    let tables = crate::support::npm_proxy(&url, "ops@example.com", "TF_TEST_NPM_PASSWORD");
    sb.config_with(&tables, "", "");
    let deploy = Run::from(sb.tf(&["deploy", &sb.project, "dev"]).env("TF_TEST_NPM_PASSWORD", "pw").output().unwrap());
    deploy.code(1);
    assert!(deploy.error_line().contains(&format!("http://127.0.0.1:{port}")), "{}", deploy.stderr);
    let check = Run::from(sb.tf(&["check"]).env("TF_TEST_NPM_PASSWORD", "pw").output().unwrap());
    let history = sb.run_tf(&["--output", "json", "history"]);
    let show = sb.run_tf(&["history", "show", "1"]);
    for r in [&deploy, &check, &history, &show] {
        assert!(!r.stdout.contains("S3cretInUrl") && !r.stderr.contains("S3cretInUrl"), "{}{}", r.stdout, r.stderr);
    }
    sb.assert_nothing_left();
}
