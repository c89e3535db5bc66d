use std::path::Path;
use std::time::Duration;

use super::*;
use crate::domain::Address;
use crate::domain::{ProjectName, StageName, Tag};
use crate::proxy::{CaddySettings, ProxySettings};

const MINIMAL: &str = r#"
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
[projects.shop.stages.dev]
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    from_text(text, Path::new("/etc/tf/tiny-forge.toml"))
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
port = 8080
max_instances = 0
memory = "lots"
[projects.Shop.health]
retries = 0
[projects.Shop.stages.dev]
default_tag = "a/b"
[projects.Shop.stages.dev.health]
path = "health"
"#;
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else { panic!("{e}") };
    let all = problems.join("\n");
    for needle in [
        "settings.subdomain `stage-{stage}` must contain `{project}`",
        "settings.tag_subdomain `stage-{stage}-{project}` must contain `{tag}`",
        "projects.Shop: project name `Shop` is invalid",
        "projects.Shop.image `shop:latest`",
        "projects.Shop.max_instances: must be at least 1",
        "projects.Shop.memory `lots`: use a size such as 512m or 1g",
        "projects.Shop.health.retries: must be at least 1",
        "projects.Shop.stages.dev.default_tag: tag `a/b` is invalid",
        "projects.Shop.stages.dev.health.path: must start with `/` (got `health`)",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
    assert_eq!(problems.len(), 9, "each problem once, under the key that holds it:\n{all}");
    assert!(!e.to_string().contains('\n'));
}

#[test]
fn an_out_of_range_port_names_the_key_and_its_line() {
    for (port, shown) in [("70000", "70000"), ("0", "0"), ("-1", "-1")] {
        let text = MINIMAL.replace("port = 8080", &format!("port = {port}"));
        let e = parse(&text).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Parse { line: 4, column: 8, .. }), "{msg}");
        assert_eq!(
            msg,
            format!(
                "/etc/tf/tiny-forge.toml:4:8: projects.shop.port: {shown} is not a port; use a number between 1 and 65535"
            )
        );
    }
    let msg = parse(&MINIMAL.replace("port = 8080", "port = \"8080\"")).unwrap_err().to_string();
    assert!(msg.contains("projects.shop.port: invalid type: string \"8080\", expected a port number"), "{msg}");
}

#[test]
fn a_misspelt_word_names_the_key_its_line_and_the_choices() {
    for (table, line, key, choices) in [
        ("[proxy]\nkind = \"nginx\"\n", 2, "proxy.kind", "`none`, `npm`, `caddy`"),
        ("[proxy]\nkind = \"npm\"\nforward = \"dns\"\n", 3, "proxy.forward", "expected `name` or `ip`"),
        ("[settings]\nprobe_address = \"host\"\n", 2, "settings.probe_address", "expected `name` or `ip`"),
        ("[notify]\nurl = \"http://x\"\nformat = \"teams\"\n", 3, "notify.format", "`json`, `slack`, `discord`"),
        (
            "[[notify]]\nurl = \"http://x\"\n[[notify]]\nurl = \"http://y\"\nformat = \"teams\"\n",
            5,
            "notify.format",
            "`json`, `slack`, `discord`",
        ),
    ] {
        let e = parse(&format!("{table}{MINIMAL}")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Parse { line: l, .. } if l == line), "{table}: {msg}");
        assert!(msg.contains(&format!("{key}: unknown variant")) && msg.contains(choices), "{msg}");
    }
    let msg = parse(&MINIMAL.replace("port = 8080", "port = 8080\nrestart = \"sometimes\"")).unwrap_err().to_string();
    assert!(msg.contains(":5:") && msg.contains("projects.shop.restart: unknown variant `sometimes`"), "{msg}");
    assert!(msg.contains("`no`, `always`, `unless-stopped`, `on-failure`"), "{msg}");
}

#[test]
fn an_unknown_key_in_a_notify_table_is_named_whichever_form_it_takes() {
    for table in ["[notify]\nurl = \"http://x\"\nsecret = \"s\"\n", "[[notify]]\nurl = \"http://x\"\nsecret = \"s\"\n"]
    {
        let e = parse(&format!("{table}{MINIMAL}")).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ConfigError::Parse { line: 3, .. }), "{msg}");
        assert!(msg.contains("unknown field `secret`"), "{msg}");
    }
}

#[test]
fn every_default_is_the_documented_one() {
    let text = format!(
        "[proxy]\nkind = \"npm\"\nurl = \"http://127.0.0.1:81/\"\nemail = \"a@b.c\"\npassword_env = \"X\"\n[notify]\nurl = \"http://127.0.0.1:9/hook\"\n{MINIMAL}"
    );
    let c = parse(&text).unwrap();
    let ProxySettings::Npm(npm) = c.proxy() else { panic!("{:?}", c.proxy()) };
    assert_eq!(npm.url, "http://127.0.0.1:81");
    assert_eq!(npm.timeout, Duration::from_secs(10));
    assert_eq!(npm.forward, Address::Name);
    assert!(!npm.ssl_forced && !npm.http2_support && !npm.hsts_enabled && !npm.hsts_subdomains);
    assert!(npm.block_exploits && npm.allow_websocket_upgrade && !npm.caching_enabled);
    let n = &c.notify()[0];
    assert_eq!((n.format, n.budget, n.include_logs), (NotifyFormat::Json, Duration::from_secs(10), false));
    assert_eq!(c.history_retention(), Duration::from_secs(90 * 86_400));
    assert_eq!(c.network(), "tiny-forge");
    assert_eq!(c.state_path(), None);
    let r = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(r.probe_address, Address::Ip);
    assert_eq!((r.memory, r.nano_cpus, r.ttl), (None, None, None));
    assert_eq!(r.resolution, Resolution::Full);

    let caddy = parse(&format!("[proxy]\nkind = \"caddy\"\nurl = \"http://127.0.0.1:2019\"\n{MINIMAL}")).unwrap();
    let ProxySettings::Caddy(CaddySettings { server, forward, timeout, .. }) = caddy.proxy() else { panic!() };
    assert_eq!((server.as_str(), *forward, *timeout), ("srv0", Address::Ip, Duration::from_secs(10)));
}

#[test]
fn typed_words_resolve_to_their_settings() {
    let text = format!(
        "[settings]\nprobe_address = \"name\"\n[proxy]\nkind = \"caddy\"\nurl = \"http://c:2019\"\nforward = \"name\"\n[notify]\nurl = \"http://h\"\nformat = \"discord\"\ninclude_logs = true\n{}",
        MINIMAL.replace("port = 8080", "port = 8080\nrestart = \"on-failure\"\nmemory = \"1g\"\ncpus = 0.5")
    );
    let c = parse(&text).unwrap();
    assert!(matches!(c.proxy(), ProxySettings::Caddy(CaddySettings { forward: Address::Name, .. })));
    assert_eq!((c.notify()[0].format, c.notify()[0].include_logs), (NotifyFormat::Discord, true));
    let r = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(r.probe_address, Address::Name);
    assert_eq!(r.restart, RestartPolicy::OnFailure);
    assert_eq!((r.memory, r.nano_cpus), (Some(1 << 30), Some(500_000_000)));
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
    let c = from_text(text, &dir.path().join("tiny-forge.toml")).unwrap();
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

#[test]
fn the_preview_database_example_parses_with_its_hooks_and_access() {
    let c = parse(include_str!("../../examples/preview-db/tiny-forge.toml")).unwrap();
    let p = ProjectName::new("shop").unwrap();
    let dev = c.resolve_with(&p, &StageName::new("dev").unwrap(), Resolution::ConfigOnly).unwrap();
    assert!(dev.release.is_some() && dev.on_create.is_some() && dev.on_remove.is_some());
    // Protected by basic auth; without the hash in the environment it is unreadable, and such a
    // host is never written.
    assert!(
        matches!(dev.access, crate::proxy::HostAccess::Unreadable(ref key) if key.contains("access.basic_auth.password_hash")),
        "{:?}",
        dev.access
    );
    assert_eq!(dev.ttl, Some(Duration::from_secs(7 * 24 * 3600)));
    let demo = c.resolve_with(&p, &StageName::new("demo").unwrap(), Resolution::ConfigOnly).unwrap();
    assert_eq!(demo.access, crate::proxy::HostAccess::Public);
}

#[test]
fn an_access_key_the_proxy_cannot_enforce_is_a_config_error() {
    let caddy = "[proxy]\nkind = \"caddy\"\nurl = \"http://127.0.0.1:2019\"\n";
    let npm = "[proxy]\nkind = \"npm\"\nurl = \"http://127.0.0.1:81\"\nemail = \"a@b.c\"\npassword_env = \"NPM_PW\"\n";
    let list = "access = { npm_access_list_id = 3 }\n";
    let basic = "access = { basic_auth = { user = \"u\", password_hash_env = \"H\" } }\n";
    for (proxy, access, says) in [
        (caddy, list, "npm_access_list_id is for NPM"),
        (npm, basic, "basic_auth is for Caddy"),
        ("", list, "needs a proxy"),
    ] {
        let msg = parse(&format!("{proxy}{MINIMAL}{access}")).unwrap_err().to_string();
        assert!(msg.contains("projects.shop.stages.dev.access") && msg.contains(says), "{msg}");
    }
    parse(&format!("{caddy}{MINIMAL}{basic}")).unwrap();
    parse(&format!("{npm}{MINIMAL}{list}")).unwrap();
}

#[test]
fn a_swarm_stage_reads_its_engine_keys_and_a_stage_table_replaces_the_project_s() {
    let text = format!(
        "[proxy]\nkind = \"npm\"\nurl = \"http://npm:81\"\nemail = \"a@b.c\"\npassword_env = \"P\"\nforward = \"name\"\n{MINIMAL}engine = {{ kind = \"swarm\", replicas = 3, constraints = [\"node.role == worker\"], endpoint_mode = \"dnsrr\" }}\nhealth = {{ command = [\"/app\", \"probe\"] }}\n[projects.shop.stages.prod]\nengine = {{ kind = \"docker\" }}\n"
    );
    let c = parse(&text).unwrap();
    let dev = resolve(&c, "shop", "dev").unwrap();
    assert_eq!(
        dev.engine,
        Engine::Swarm(SwarmSettings {
            replicas: 3,
            constraints: vec!["node.role == worker".into()],
            endpoint_mode: crate::engine::EndpointMode::Dnsrr,
        })
    );
    assert_eq!(dev.health.command, Some(vec!["/app".to_owned(), "probe".to_owned()]));
    assert_eq!(resolve(&parse(MINIMAL).unwrap(), "shop", "dev").unwrap().engine, Engine::Docker);
}

#[test]
fn what_a_swarm_stage_cannot_do_is_a_config_error_that_says_what_to_change() {
    let npm_ip =
        "[proxy]\nkind = \"npm\"\nurl = \"http://npm:81\"\nemail = \"a@b.c\"\npassword_env = \"P\"\nforward = \"ip\"\n";
    let swarm = "engine = { kind = \"swarm\" }\n";
    for (before, stage, says) in [
        (npm_ip, swarm.to_owned(), "set proxy.forward = \"name\""),
        ("", "engine = { kind = \"swarm\", replicas = 0 }\n".to_owned(), "engine.replicas: must be at least 1"),
        ("", "engine = { kind = \"swarm\", constraints = [\"worker\"] }\n".to_owned(), "node.role == worker"),
        ("", "engine = { kind = \"docker\", replicas = 2 }\n".to_owned(), "are for kind = \"swarm\""),
        ("", "health = { command = [\"/app\"] }\n".to_owned(), "health.command is run by Swarm"),
        ("", "engine = { kind = \"swarm\" }\nhealth = { command = [] }\n".to_owned(), "give at least the program"),
    ] {
        let msg = parse(&format!("{before}{MINIMAL}{stage}")).unwrap_err().to_string();
        assert!(msg.contains(says), "{says}: {msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    let volumes = "[projects.shop]\nimage = \"r/shop\"\nport = 80\nvolumes = [\"/srv:/srv\"]\n[projects.shop.stages.dev]\nengine = { kind = \"swarm\" }\n";
    let msg = parse(volumes).unwrap_err().to_string();
    assert!(msg.contains("host binds"), "{msg}");
    let msg = parse(&format!("{MINIMAL}engine = {{ kind = \"kubernetes\" }}\n")).unwrap_err().to_string();
    assert!(msg.contains("docker") && msg.contains("swarm"), "{msg}");
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

/// A stage whose registry password variable is unset and whose env file is missing.
const UNREADABLE: &str = r#"
[registries."registry.example.com"]
username = "ci"
password_env = "TF_TEST_SURELY_UNSET_REGISTRY_PW"
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
env_file = "missing.env"
[projects.shop.stages.dev]
"#;

#[test]
fn full_resolution_reports_every_unreadable_env_file_and_secret_at_once() {
    let c = parse(UNREADABLE).unwrap();
    let e = resolve(&c, "shop", "dev").unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else { panic!("{e}") };
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].starts_with("projects.shop.env_file: cannot read `/etc/tf/missing.env`"), "{problems:?}");
    assert!(
        problems[1]
            .contains("registries.\"registry.example.com\".password_env names `TF_TEST_SURELY_UNSET_REGISTRY_PW`"),
        "{problems:?}"
    );
}

#[test]
fn config_only_resolution_reads_no_env_file_and_no_secret() {
    let c = parse(UNREADABLE).unwrap();
    let (p, s) = (ProjectName::new("shop").unwrap(), StageName::new("dev").unwrap());
    let r = c.resolve_with(&p, &s, Resolution::ConfigOnly).unwrap();
    assert_eq!(r.resolution, Resolution::ConfigOnly);
    assert!(r.env.is_empty() && r.registry_auth.is_none());
    assert_eq!((r.port, r.max_instances, r.default_tag.as_str()), (8080, 3, "latest"));
}

/// Issue 23: each proxy backend reads its own keys; another backend's key is refused by name,
/// and errors inside `[proxy]` still point at the line that holds them.
#[test]
fn a_key_of_another_proxy_backend_is_refused_with_its_line() {
    let table = "[proxy]\nkind = \"caddy\"\nurl = \"http://127.0.0.1:2019\"\nemail = \"ops@example.com\"\n";
    let e = parse(&format!("{table}{MINIMAL}")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::Parse { line: 4, .. }), "{msg}");
    assert!(msg.contains("unknown field `email`"), "{msg}");
    let table = "[proxy]\nkind = \"caddy\"\nurl = \"http://127.0.0.1:2019\"\ntimeout = \"soon\"\n";
    let e = parse(&format!("{table}{MINIMAL}")).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::Parse { line: 4, .. }), "{msg}");
    assert!(msg.contains("proxy.timeout"), "{msg}");
}

#[test]
fn verify_is_off_unless_set_and_layers_key_by_key() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(resolve(&c, "shop", "dev").unwrap().verify, None, "off by default");
    let text = r#"
[verify]
connect = "127.0.0.1:8080"
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
verify = { window = "10s", failures = 2 }
[projects.shop.stages.dev]
verify = { path = "/ready" }
[projects.shop.stages.qa]
verify = { window = "0s" }
"#;
    let c = parse(text).unwrap();
    let v = resolve(&c, "shop", "dev").unwrap().verify.expect("on");
    assert_eq!(
        v,
        crate::health::VerifyPolicy {
            window: Duration::from_secs(10),
            path: "/ready".into(),
            interval: Duration::from_secs(1),
            failures: 2,
            connect: Some("127.0.0.1:8080".parse().unwrap()),
        }
    );
    assert_eq!(resolve(&c, "shop", "qa").unwrap().verify, None, "a 0s window turns it off");
}

#[test]
fn a_bad_verify_setting_is_named_by_its_key() {
    let text = r#"
[projects.shop]
image = "registry.example.com/team/shop"
port = 8080
verify = { failures = 0, path = "health", connect = "proxy:80" }
[projects.shop.stages.dev]
verify = { window = "1s", interval = "2s" }
"#;
    let e = parse(text).unwrap_err();
    let ConfigError::Invalid { problems, .. } = &e else { panic!("{e}") };
    let all = problems.join("\n");
    for needle in [
        "projects.shop.verify.failures: must be at least 1",
        "projects.shop.verify.path: must start with `/` (got `health`)",
        "projects.shop.verify.connect `proxy:80`: give the proxy's public address as ip:port",
        "projects.shop.stages.dev.verify.window (1s) is shorter than verify.interval (2s)",
    ] {
        assert!(all.contains(needle), "missing {needle:?} in\n{all}");
    }
    assert_eq!(problems.len(), 4, "{all}");
}
