//! Issue 15: the release phase, slot hooks, the instance's own names in its env, and protected
//! previews, with real containers (the demo app's `once` mode is the one-off command), the
//! NPM double and a real Caddy.

use crate::support::caddy::Caddy;
use crate::support::npm::NpmDouble;
use crate::support::{Run, Sandbox, Watch, docker, retag};

/// One-off containers of the sandbox's project still there (`role` label).
fn one_offs(sb: &Sandbox) -> Vec<String> {
    let filter = format!("label=dev.tiny-forge.project={}", sb.project);
    docker(&["ps", "-a", "--filter", &filter, "--filter", "label=dev.tiny-forge.role", "--format", "{{.Names}}"])
        .lines()
        .map(str::to_owned)
        .collect()
}

fn bed(prefix: &str, project_extra: &str) -> Sandbox {
    let sb = Sandbox::new(prefix);
    sb.config(
        &format!("env = {{ DATABASE_URL = \"postgres://db/{{slot}}\", APP_URL = \"{{url}}\" }}\n{project_extra}"),
        "",
    );
    sb
}

fn log_of(sb: &Sandbox, id: &str) -> String {
    sb.run_tf(&["history", "show", id]).stdout
}

/// The release runs from the digest before the instance is created, with the instance's env;
/// its output is in the deploy's log and its container does not stay.
#[test]
fn a_release_runs_before_the_instance_and_leaves_no_container() {
    let sb = bed("release", "release = { command = [\"once\"], timeout = \"1m\" }");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    let d = sb.deploys()[0].clone();
    let logs = sb.logs(d.id);
    let release = logs.iter().position(|l| l.step == "release" && l.message.starts_with("once: TF_SLOT="));
    let created = logs.iter().position(|l| l.step == "create" && l.message.starts_with("created container"));
    assert!(release.is_some() && release < created, "the release ran first:\n{}", log_of(&sb, &d.id.to_string()));
    assert!(logs.iter().any(|l| l.step == "release" && l.message.contains("once: TF_URL=http://")));
    assert!(logs.iter().any(|l| l.level.as_str() == "warn" && l.message.contains("goes to stderr")));
    assert_eq!(one_offs(&sb), Vec::<String>::new());
    assert_eq!(sb.containers().len(), 1);
}

/// A release that fails, or runs past its timeout, fails the deploy (exit 1) with its code
/// and last lines, and nothing is left: no instance, no one-off container.
#[test]
fn a_release_that_fails_or_times_out_fails_the_deploy_and_leaves_nothing() {
    let sb = bed("relfail", "release = { command = [\"once\", \"3\"] }");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1);
    assert!(
        run.error_line().contains("release failed") && run.error_line().contains("exited with code 3"),
        "{}",
        run.stderr
    );
    assert!(run.error_line().contains("once: exiting with code 3"), "the last lines: {}", run.stderr);
    assert_eq!(one_offs(&sb), Vec::<String>::new());
    sb.assert_nothing_left();

    let sb = bed("relslow", "release = { command = [\"once\", \"0\", \"60000\"], timeout = \"1s\" }");
    let run = sb.run_tf(&["deploy", &sb.project, "dev"]);
    run.code(1);
    assert!(run.error_line().contains("did not finish within 1s"), "{}", run.stderr);
    assert_eq!(one_offs(&sb), Vec::<String>::new());
    sb.assert_nothing_left();
}

/// SIGINT during the release rolls back like any other step. After kill -9, the release may
/// still be migrating: prune keeps it while it runs (exit 3, naming it; a migration is never
/// killed halfway), and removes it once it has ended (issue 21, review F5).
#[test]
fn a_signal_or_kill_during_the_release_leaves_nothing_after_recovery() {
    for (sig, ms) in [("INT", "60000"), ("KILL", "4000")] {
        let sb = bed("relsig", &format!("release = {{ command = [\"once\", \"0\", \"{ms}\"] }}"));
        let mut child = sb.spawn_tf(&["deploy", &sb.project, "dev"], &[]);
        sb.wait_for_log(&mut child, "once: running");
        crate::support::run(std::process::Command::new("kill").args([&format!("-{sig}"), &child.id().to_string()]));
        let out = Run::from(child.wait_with_output().unwrap());
        if sig == "INT" {
            out.code(130);
        } else {
            let running = one_offs(&sb);
            assert_eq!(running.len(), 1, "the release outlived its deploy: {running:?}");
            let kept = sb.run_tf(&["prune"]);
            kept.code(3).stderr_has("still runs");
            assert_eq!(one_offs(&sb), running, "not killed halfway");
            docker(&["wait", &running[0]]);
            sb.run_tf(&["prune"]).code(0);
        }
        assert_eq!(one_offs(&sb), Vec::<String>::new(), "{sig}");
        sb.assert_nothing_left();
    }
}

/// Issue 21 (review F5): a deploy killed during its release leaves the release running; the
/// next deploy of the stage waits for it to end before it runs its own: two releases of a stage
/// never run at once.
#[test]
fn the_next_deploy_waits_for_a_release_a_killed_deploy_left_running() {
    let sb = bed("relwait", "release = { command = [\"once\", \"0\", \"4000\"] }");
    let mut child = sb.spawn_tf(&["deploy", &sb.project, "dev"], &[]);
    sb.wait_for_log(&mut child, "once: running");
    crate::support::run(std::process::Command::new("kill").args(["-KILL", &child.id().to_string()]));
    child.wait().unwrap();
    let left = one_offs(&sb);
    assert_eq!(left.len(), 1, "{left:?}");
    let next = sb.run_tf(&["deploy", &sb.project, "dev"]);
    next.code(0);
    let d = sb.deploys()[0].clone();
    let logs = sb.logs(d.id);
    let waited = logs.iter().position(|l| l.message.contains(&left[0]) && l.message.contains("still runs; waiting"));
    let ended = logs.iter().position(|l| l.message.contains(&format!("{} ended with code 0", left[0])));
    let own = logs.iter().position(|l| l.step == "release" && l.message.starts_with("running once"));
    assert!(waited.is_some() && waited < ended && ended < own, "waited, then ran its own release: {logs:#?}");
    assert_eq!(one_offs(&sb), Vec::<String>::new());
    assert_eq!(sb.containers().len(), 1);
}

/// `on_create` runs on a slot's first deploy only, not on a redeploy.
#[test]
fn on_create_runs_once_per_slot() {
    let sb = bed("oncreate", "on_create = { command = [\"once\"] }");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "--force"]).code(0);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    let ran: Vec<(String, bool)> = sb
        .deploys()
        .iter()
        .map(|d| {
            (d.tag.clone(), sb.logs(d.id).iter().any(|l| l.step == "on_create" && l.message.contains("succeeded")))
        })
        .collect();
    assert_eq!(ran, [("v2".to_owned(), true), ("v1".to_owned(), false), ("v1".to_owned(), true)]);
    assert_eq!(one_offs(&sb), Vec::<String>::new());
}

/// A failed `on_remove` is reported (exit 3, a leftover) and the instance still goes; a later
/// prune runs it again.
#[test]
fn a_failed_on_remove_exits_3_and_prune_runs_it_again() {
    let sb = bed("onremove", "on_remove = { command = [\"once\", \"5\"] }");
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", "v2"]).code(0);
    let removed = sb.run_tf(&["remove", &sb.project, "dev", "v2"]);
    removed.code(3).stderr_has("on_remove hook of");
    assert_eq!(sb.containers(), Vec::<String>::new(), "the instance went anyway");
    assert!(sb.run_tf(&["list"]).stdout.contains("on_remove hook"), "shown as left behind");
    let fixed = std::fs::read_to_string(&sb.config).unwrap().replace("\"once\", \"5\"", "\"once\"");
    sb.write_config(&fixed);
    let prune = sb.run_tf(&["prune"]);
    prune.code(0);
    assert!(prune.stdout.contains("on_remove hook of"), "{}", prune.stdout);
    sb.assert_nothing_left();
}

/// The instance knows itself: `TF_*` and `{slot}`/`{url}` substituted, with an odd tag.
#[test]
fn the_instance_env_holds_its_names_with_an_odd_tag() {
    let sb = bed("tfenv", "");
    let tag = format!("Feature.Login_{}", sb.project);
    retag("v2", &tag);
    sb.run_tf(&["-q", "deploy", &sb.project, "dev", &tag]).code(0);
    let name = &sb.instances()[0].container_name;
    let env = docker(&["inspect", "-f", "{{range .Config.Env}}{{println .}}{{end}}", name]);
    let get = |k: &str| env.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or_default().to_owned();
    let slot = get("TF_SLOT");
    assert!(slot.starts_with(&format!("{}-dev-feature-login", sb.project)), "{slot}");
    assert!(slot.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'), "{slot}");
    assert_eq!(get("TF_TAG"), tag);
    let host = get("TF_HOST");
    assert!(
        host.starts_with(&format!("stage-dev-{}-feature-login", sb.project)) && host.ends_with(".test.local"),
        "{host}"
    );
    assert_eq!(get("DATABASE_URL"), format!("postgres://db/{slot}"));
    assert_eq!(get("APP_URL"), get("TF_URL"));
    assert!(get("TF_URL").starts_with("http://"), "{}", get("TF_URL"));
}

/// A protected preview behind Caddy: 401 without credentials, 200 with them; a public stage of
/// the same project stays public.
#[test]
fn a_protected_preview_behind_caddy_asks_for_credentials() {
    let caddy = Caddy::start();
    let sb = Sandbox::new("protect");
    let hash = String::from_utf8(
        std::process::Command::new("caddy")
            .args(["hash-password", "--plaintext", "let-me-in"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let stage_extra = "access = { basic_auth = { user = \"preview\", password_hash_env = \"TF_TEST_PREVIEW_HASH\" } }";
    let demo = format!("[projects.{}.stages.demo]\ndefault_tag = \"v1\"\n", sb.project);
    sb.config_with(
        &format!("[proxy]\nkind = \"caddy\"\nurl = \"{}\"\n", caddy.admin_url()),
        "env = { MESSAGE = \"private\" }",
        &format!("{stage_extra}\n{demo}"),
    );
    sb.watch(Watch::Caddy(caddy.admin_url()));
    let tf = |args: &[&str]| Run::from(sb.tf(args).env("TF_TEST_PREVIEW_HASH", hash.trim()).output().unwrap());
    tf(&["-q", "deploy", &sb.project, "dev"]).code(0);
    tf(&["-q", "deploy", &sb.project, "demo"]).code(0);
    assert_eq!(caddy.get(&sb.host(None)).0, 401, "no credentials");
    let with = caddy.get_with_auth(&sb.host(None), "preview", "let-me-in");
    assert_eq!(with, (200, "private\n".to_owned()));
    assert_eq!(caddy.get_with_auth(&sb.host(None), "preview", "wrong").0, 401);
    let demo_host = format!("stage-demo-{}.test.local", sb.project);
    assert_eq!(caddy.get(&demo_host), (200, "private\n".to_owned()), "demo stays public");
    let route = crate::support::caddy::routes(&caddy.admin_url())
        .into_iter()
        .find(|r| r["match"].to_string().contains(&sb.host(None)))
        .unwrap();
    assert!(!route.to_string().contains("let-me-in"), "only the hash is written");
    // A missing hash is a config error before anything is touched.
    let missing =
        Run::from(sb.tf(&["deploy", &sb.project, "dev", "v2"]).env_remove("TF_TEST_PREVIEW_HASH").output().unwrap());
    missing.code(2);
    assert!(missing.error_line().contains("TF_TEST_PREVIEW_HASH"), "{}", missing.stderr);
}

/// A protected preview behind NPM: the host carries the access list.
#[test]
fn a_protected_preview_behind_npm_carries_the_access_list() {
    let sb = Sandbox::new("protnpm");
    let npm = NpmDouble::start("ops@example.com", "pw");
    sb.config_with(
        &crate::support::npm_proxy(&npm.url(), "ops@example.com", "TF_TEST_NPM_PASSWORD"),
        "access = { npm_access_list_id = 3 }",
        "",
    );
    sb.watch(Watch::Npm(npm.view()));
    Run::from(sb.tf(&["-q", "deploy", &sb.project, "dev"]).env("TF_TEST_NPM_PASSWORD", "pw").output().unwrap()).code(0);
    let hosts = npm.hosts();
    assert_eq!(hosts.len(), 1);
    assert_eq!(hosts[0]["access_list_id"], 3);
}
