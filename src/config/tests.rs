use std::path::Path;
use std::time::Duration;

use super::*;
use crate::domain::{ProjectName, StageName, Tag};

const MINIMAL: &str = r#"
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
[projects.shop.stages.dev]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/etc/tf/tiny-forge.toml"))
}

fn resolve(c: &Config, p: &str, s: &str) -> Result<ResolvedStage, ConfigError> {
    c.resolve(&ProjectName::new(p).unwrap(), &StageName::new(s).unwrap())
}

#[test]
fn minimal_config_gets_the_documented_defaults() {
    let c = parse(MINIMAL).unwrap();
    let r = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(r.default_tag.as_str(), "latest");
    assert_eq!(r.max_instances, 3);
    assert_eq!(r.network, "tiny-forge");
    assert_eq!(r.restart, RestartPolicy::UnlessStopped);
    assert_eq!(r.health.retries, 3);
    assert_eq!(r.health.interval, Duration::from_secs(5));
    assert_eq!(r.health.timeout, Duration::from_secs(10));
    assert_eq!(r.host_name(&Tag::new("latest").unwrap()), "stage-dev-shop.localhost");
    assert_eq!(r.host_name(&Tag::new("pr-1").unwrap()), "stage-dev-shop-pr-1.localhost");
    assert!(matches!(c.proxy(), ProxySettings::None));
}

#[test]
fn unknown_key_is_rejected_with_its_line() {
    let text = format!("{MINIMAL}colour = \"blue\"\n");
    let e = parse(&text).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::Parse { line: 6, .. }), "{msg}");
    assert!(msg.contains("unknown field `colour`"), "{msg}");
    assert!(msg.starts_with("/etc/tf/tiny-forge.toml:6:"), "{msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
}

#[test]
fn bad_duration_is_reported_with_its_line() {
    let text = format!("[health]\ninterval = \"5 parsecs\"\n{MINIMAL}");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains(":2:"), "{msg}");
}

#[test]
fn validation_reports_every_problem_with_its_key_path() {
    let text = r#"
[settings]
subdomain = "stage-{stage}"
tag_subdomain = "stage-{stage}-{project}"
[projects.Shop]
image = "shop:latest"
port = 70000
[projects.Shop.stages.dev]
"#;
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else { panic!("{e}") };
    let all = problems.join("\n");
    for needle in [
        "settings.subdomain `stage-{stage}` must contain `{project}`",
        "settings.tag_subdomain `stage-{stage}-{project}` must contain `{tag}`",
        "projects.Shop: project name `Shop` is invalid",
        "projects.Shop.image `shop:latest`",
        "projects.Shop.port 70000: must be between 1 and 65535",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn secrets_come_only_from_env_or_file_keys() {
    let text = format!(
        "[proxy]\nkind = \"npm\"\nurl = \"http://127.0.0.1:81\"\nemail = \"a@b.c\"\npassword = \"x\"\n{MINIMAL}"
    );
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("unknown field `password`"), "{msg}");
}

#[test]
fn npm_without_password_source_is_refused() {
    let text = format!("[proxy]\nkind = \"npm\"\nurl = \"http://127.0.0.1:81\"\nemail = \"a@b.c\"\n{MINIMAL}");
    let msg = parse(&text).unwrap_err().to_string();
    assert!(msg.contains("proxy.password_env or proxy.password_file"), "{msg}");
}

#[test]
fn unknown_stage_says_which_table_to_add() {
    let c = parse(MINIMAL).unwrap();
    let msg = resolve(&c, "shop", "qa").unwrap_err().to_string();
    assert!(msg.contains("stage `qa` is not defined for project `shop`; add [projects.shop.stages.qa]"), "{msg}");
    let msg = resolve(&c, "blog", "dev").unwrap_err().to_string();
    assert!(msg.contains("project `blog` is not defined"), "{msg}");
}

#[test]
fn stage_values_override_project_values_and_env_merges() {
    let text = r#"
[health]
path = "/ready"
retries = 5
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
max_instances = 4
env = { A = "project", B = "project" }
[projects.shop.health]
retries = 2
[projects.shop.stages.dev]
default_tag = "main"
max_instances = 2
env = { B = "stage" }
[projects.shop.stages.dev.health]
interval = "1s"
"#;
    let r = resolve(&parse(text).unwrap(), "shop", "dev").unwrap();
    assert_eq!(r.max_instances, 2);
    assert_eq!(r.default_tag.as_str(), "main");
    assert_eq!(r.env, vec![("A".into(), "project".into()), ("B".into(), "stage".into())]);
    assert_eq!(r.health.path, "/ready");
    assert_eq!(r.health.retries, 2);
    assert_eq!(r.health.interval, Duration::from_secs(1));
}

#[test]
fn env_file_is_read_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("dev.env"), "# comment\nFROM_FILE=1\nB=file\nLITERAL=\"$HOME\"\n").unwrap();
    let text = r#"
[projects.shop]
image = "shop"
port = 80
[projects.shop.stages.dev]
env_file = "dev.env"
env = { B = "inline" }
"#;
    let c = Config::parse(text, &dir.path().join("tiny-forge.toml")).unwrap();
    let r = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(
        r.env,
        vec![("B".into(), "inline".into()), ("FROM_FILE".into(), "1".into()), ("LITERAL".into(), "\"$HOME\"".into())]
    );
}

#[test]
fn both_notify_forms_are_accepted() {
    let one = format!("[notify]\nurl = \"http://127.0.0.1:9/hook\"\n{MINIMAL}");
    assert_eq!(parse(&one).unwrap().notify().len(), 1);
    let many = format!(
        "[[notify]]\nurl = \"http://127.0.0.1:9/a\"\n[[notify]]\nurl = \"http://127.0.0.1:9/b\"\nformat = \"slack\"\n{MINIMAL}"
    );
    assert_eq!(parse(&many).unwrap().notify().len(), 2);
}

#[test]
fn missing_config_file_error_names_every_place_looked_at() {
    let e = ConfigError::NotFound {
        searched: vec!["tiny-forge.toml".into(), "/home/u/.config/tiny-forge/config.toml".into()],
    };
    let msg = e.to_string();
    assert!(msg.contains("tiny-forge.toml, /home/u/.config/tiny-forge/config.toml"), "{msg}");
    assert!(msg.contains("--config"), "{msg}");
}

#[test]
fn the_commented_example_config_parses_and_resolves() {
    let c = parse(include_str!("../../examples/tiny-forge.toml")).unwrap();
    let r = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(r.health.path, "/healthz");
    assert_eq!(r.default_tag.as_str(), "latest");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn any_text_parses_or_fails_without_panicking(text in "(?s).{0,400}") {
            let _ = parse(&text);
        }

        #[test]
        fn a_valid_config_with_any_line_replaced_never_panics(line in 0usize..5, junk in "[ -~]{0,40}") {
            let mut lines: Vec<String> = MINIMAL.lines().map(str::to_owned).collect();
            let i = line % lines.len();
            lines[i] = junk;
            if let Ok(c) = parse(&lines.join("\n")) {
                for (p, s) in c.stages() {
                    if let (Ok(p), Ok(s)) = (ProjectName::new(&p), StageName::new(&s)) {
                        let _ = c.resolve(&p, &s);
                    }
                }
            }
        }
    }
}
