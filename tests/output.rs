//! What a deploy shows: `plain` and `json` output pinned by snapshots (times, ids, addresses and
//! digests masked), and `history show --follow` tailing a deploy run by another process.

use crate::support::{Run, Sandbox, images};

fn masked(sb: &Sandbox, text: &str) -> String {
    let registry = images().registry.host();
    let mut settings = insta::Settings::clone_current();
    settings.set_prepend_module_to_snapshot(false);
    let filters: Vec<(String, String)> = vec![
        (regex_escape(&sb.project), "[PROJECT]".into()),
        (regex_escape(&registry), "[REGISTRY]".into()),
        (r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z".into(), "[TIME]".into()),
        (r"sha256:[0-9a-f]{64}".into(), "[DIGEST]".into()),
        (r"\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b".into(), "[IP]".into()),
        (r#""(elapsed_ms|duration_ms)":\d+"#.into(), r#""$1":"[MS]""#.into()),
        (r"\b\d+(\.\d+)?(ms|s)\b".into(), "[DUR]".into()),
        (r"\(\d+ probes\)".into(), "(N probes)".into()),
    ];
    // Image hygiene deletes what other tests left of the repository they all share: those lines
    // come and go with them.
    let freed = regex::Regex::new(r": freed [0-9.]+ (B|kB|MB|GB)").unwrap();
    let mut out = text
        .lines()
        .map(|l| freed.replace(l, "").into_owned())
        .filter(|l| !l.contains("delete image") && !l.contains("freed "))
        .collect::<Vec<_>>()
        .join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    for (re, with) in &filters {
        out = regex::Regex::new(re).unwrap().replace_all(&out, with.as_str()).into_owned();
    }
    out
}

/// A config whose probes before the app listens fall in a start period (not counted, not
/// logged), so that the output does not depend on how fast the container binds its port.
fn config(sb: &Sandbox) {
    sb.config("", &format!("[projects.{}.health]\nstart_period = \"2s\"\n", sb.project));
}

fn regex_escape(s: &str) -> String {
    regex::escape(s)
}

#[test]
fn plain_output_of_a_successful_and_a_failed_deploy() {
    let sb = Sandbox::new("outplain");
    config(&sb);
    let ok = sb.run_tf(&["--output", "plain", "deploy", &sb.project, "dev"]);
    ok.code(0);
    insta::assert_snapshot!("plain_success_stderr", masked(&sb, &ok.stderr));
    insta::assert_snapshot!("plain_success_stdout", masked(&sb, &ok.stdout));
    let serving = sb.instances();
    let failed = sb.run_tf(&["--output", "plain", "deploy", &sb.project, "dev", "bad"]);
    failed.code(1);
    sb.assert_only_left(&serving);
    insta::assert_snapshot!("plain_failure_stderr", masked(&sb, &failed.stderr));
    assert!(failed.stdout.is_empty());
}

#[test]
fn json_output_is_one_object_per_line_ending_with_the_result() {
    let sb = Sandbox::new("outjson");
    config(&sb);
    for (tag, code, name) in [("v1", 0, "json_success"), ("bad", 1, "json_failure")] {
        let serving = if sb.state.exists() { sb.instances() } else { Vec::new() };
        let run = sb.run_tf(&["--output", "json", "deploy", &sb.project, "dev", tag]);
        run.code(code);
        if code != 0 {
            sb.assert_only_left(&serving);
        }
        let lines: Vec<serde_json::Value> =
            run.stdout.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
        let last = lines.last().unwrap();
        assert_eq!(last["type"], "result");
        assert_eq!(last["exit_code"], code);
        assert!(lines.iter().all(|l| l["type"].is_string()), "every object has a type");
        // Pull progress depends on timing; the rest is the contract.
        let stable: Vec<&str> = run.stdout.lines().filter(|l| !l.contains(r#""type":"pull_progress""#)).collect();
        insta::assert_snapshot!(name, masked(&sb, &stable.join("\n")));
    }
}

#[test]
fn history_show_follow_tails_a_running_deploy_and_exits_with_its_code() {
    let stamped = regex::Regex::new(r"^\d{4}-\d\d-\d\dT").unwrap();
    for (tag, code) in [("v1", 0), ("bad", 1)] {
        let sb = Sandbox::new("follow");
        sb.config("", "");
        let mut deploy =
            sb.spawn_tf(&["-q", "deploy", &sb.project, "dev", tag], &[("TINY_FORGE_TEST_PAUSE_AFTER", "start:1500ms")]);
        sb.wait_for_log(&mut deploy, "pausing");
        let id = sb.deploys()[0].id.to_string();
        let follow = Run::from(sb.tf(&["history", "show", &id, "--follow"]).output().unwrap());
        let deployed = Run::from(deploy.wait_with_output().unwrap());
        deployed.code(code);
        follow.code(code);
        // Every entry of the deploy's log, once and in order (those written before it started
        // and while it followed), then the outcome.
        let id = sb.deploys()[0].id;
        let entries = sb.logs(id);
        let shown: Vec<&str> = follow.stdout.lines().filter(|l| stamped.is_match(l)).collect();
        assert_eq!(shown.len(), entries.len(), "{}", follow.stdout);
        for (line, e) in shown.iter().zip(&entries) {
            assert!(line.contains(&format!(" {:<8} ", e.step)) && line.ends_with(&e.message), "{line:?} is not {e:?}");
        }
        let pausing = entries.iter().position(|e| e.message.starts_with("pausing")).unwrap();
        assert!(entries[pausing + 1..].iter().any(|e| e.step == "health"), "entries written while it followed");
        let (last_step, status) = if code == 0 { ("retire", "succeeded") } else { ("rollback", "failed") };
        assert!(entries.last().unwrap().message.starts_with(&format!("{last_step} done in")), "{entries:?}");
        let result = follow.stdout.lines().last().unwrap_or_default();
        assert!(result.starts_with(&format!("result  {status} after")), "{}", follow.stdout);
        if code == 0 {
            assert_eq!(sb.instances().len(), 1);
        } else {
            sb.assert_nothing_left();
        }
    }
}
