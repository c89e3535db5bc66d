//! `tiny-forge serve`'s part of the config: `[server]`, `[[receivers]]` and each stage's
//! `[[…on_push]]` tag rules, resolved in the same pass as the rest (every problem with its key
//! path). A push is only ever a hint: what it may deploy is what these rules name.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::Duration;

use super::file::{ProjectFile, ReceiverFile, ReceiverKind, RuleSlot, ServerFile};
use crate::domain::{ProjectName, StageName, Tag};
use crate::secret::SecretSource;

/// `[server]`, resolved.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Where to listen (`serve --listen` beats it).
    pub listen: String,
    /// Time to answer one request.
    pub request_timeout: Duration,
    /// A connection with no complete request head for this long is closed.
    pub idle_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Peers whose `X-Forwarded-For` / `X-Real-IP` are believed.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Pushes of one tag within this window deploy once.
    pub debounce: Duration,
    /// SIGTERM: how long running deploys may go on.
    pub grace: Duration,
    /// Failed authentications allowed per client (IPv4 address, IPv6 /64) and window.
    pub auth_failures: u32,
    /// The window.
    pub auth_window: Duration,
    /// HTTPS: certificate chain and private key files (PEM), when set.
    pub tls: Option<(std::path::PathBuf, std::path::PathBuf)>,
}

/// One `[[receivers]]` entry.
#[derive(Debug, Clone)]
pub struct ReceiverSettings {
    /// Its name, the last segment of its URL (`/hooks/{name}`).
    pub name: String,
    /// Its format.
    pub kind: ReceiverKind,
    /// Where its secret comes from (read when the server starts).
    pub secret: SecretSource,
    /// The registry host its events are about, when the config says.
    pub registry: Option<String>,
}

/// A tag or a glob where `*` is any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagPattern(String);

impl TagPattern {
    /// The pattern as written.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Is it one exact tag (no `*`)?
    #[must_use]
    pub fn is_exact(&self) -> bool {
        !self.0.contains('*')
    }

    /// Does `tag` match?
    #[must_use]
    pub fn matches(&self, tag: &str) -> bool {
        glob(self.0.as_bytes(), tag.as_bytes())
    }
}

/// `*`-only glob, iterative with one backtrack point (linear enough for 128-byte tags).
fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() && p[pi] == b'*' {
            star = Some((pi, si));
            pi += 1;
        } else if pi < p.len() && p[pi] == s[si] {
            pi += 1;
            si += 1;
        } else if let Some((sp, ss)) = star {
            pi = sp + 1;
            si = ss + 1;
            star = Some((sp, ss + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == b'*')
}

/// One `[[projects.P.stages.S.on_push]]` rule.
#[derive(Debug, Clone)]
pub struct PushRule {
    /// The project.
    pub project: ProjectName,
    /// The stage.
    pub stage: StageName,
    /// The project's repository (`projects.P.image`): the only image a push may deploy here.
    pub image: String,
    /// The stage's default tag (the slot `slot = "default"` deploys to).
    pub default_tag: Tag,
    /// Which pushed tags.
    pub tags: TagPattern,
    /// Where they deploy.
    pub slot: RuleSlot,
    /// Held for approval.
    pub approval: bool,
    /// Poll interval, for exact tags.
    pub poll: Option<Duration>,
}

impl PushRule {
    /// The slot tag a push of `tag` deploys to.
    #[must_use]
    pub fn slot_tag(&self, tag: &Tag) -> Tag {
        match self.slot {
            RuleSlot::Tag => tag.clone(),
            RuleSlot::Default => self.default_tag.clone(),
        }
    }
}

/// The shortest `server.request_timeout` accepted.
const MIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// `10.0.0.0/8`, `fd00::/8`, or one address (a /32 or /128). The address part must be the
/// network's first (`10.1.0.0/8` is refused: it reads like a mistake).
fn parse_cidr(s: &str) -> Option<ipnet::IpNet> {
    let s = s.trim();
    if s.contains('/') {
        let net: ipnet::IpNet = s.parse().ok()?;
        (net.trunc() == net).then_some(net)
    } else {
        s.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from)
    }
}

fn is_receiver_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 64 && n.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
}

fn is_registry_host(h: &str) -> bool {
    !h.is_empty()
        && !h.contains('/')
        && h.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b".-:[]".contains(&c))
}

/// Resolves `[server]` and `[[receivers]]`.
pub(super) fn server(
    s: &ServerFile,
    receivers: &[ReceiverFile],
    base: &Path,
    problems: &mut Vec<String>,
) -> (ServerSettings, Vec<ReceiverSettings>) {
    if s.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(format!("server.listen `{}`: give an address and port, e.g. 127.0.0.1:8420", s.listen));
    }
    for (key, d) in [("auth_window", s.auth_window), ("idle_timeout", s.idle_timeout)] {
        if d.is_zero() {
            problems.push(format!("server.{key}: must be longer than 0s"));
        }
    }
    if s.request_timeout < MIN_REQUEST_TIMEOUT {
        // A long poll answers 1s before the request timeout: below this it would answer at once,
        // and every waiting client would poll in a loop.
        problems.push(format!(
            "server.request_timeout `{}`: at least {} (long polls wait up to a second less)",
            humantime::format_duration(s.request_timeout),
            humantime::format_duration(MIN_REQUEST_TIMEOUT)
        ));
    }
    if s.max_connections == 0 {
        problems.push("server.max_connections: must be at least 1".to_owned());
    }
    let mut trusted_proxies = Vec::new();
    for (i, p) in s.trusted_proxies.iter().enumerate() {
        match parse_cidr(p) {
            Some(net) => trusted_proxies.push(net),
            None => problems.push(format!(
                "server.trusted_proxies[{i}] `{p}`: give an address or a CIDR, e.g. 127.0.0.1 or 172.16.0.0/12"
            )),
        }
    }
    if s.max_body_bytes < 1024 {
        problems.push("server.max_body_bytes: at least 1024 (registry payloads are a few KiB)".to_owned());
    }
    if s.auth_failures == 0 {
        problems.push("server.auth_failures: must be at least 1".to_owned());
    }
    let tls = match (&s.tls_cert_file, &s.tls_key_file) {
        (Some(c), Some(k)) => Some((base.join(c), base.join(k))),
        (None, None) => None,
        _ => {
            problems.push("server.tls_cert_file and server.tls_key_file: set both, or neither".to_owned());
            None
        }
    };
    let settings = ServerSettings {
        listen: s.listen.clone(),
        request_timeout: s.request_timeout,
        idle_timeout: s.idle_timeout,
        max_connections: s.max_connections,
        trusted_proxies,
        max_body_bytes: s.max_body_bytes,
        debounce: s.debounce,
        grace: s.grace,
        auth_failures: s.auth_failures,
        auth_window: s.auth_window,
        tls,
    };
    let mut names = HashSet::new();
    let mut out = Vec::new();
    for (i, r) in receivers.iter().enumerate() {
        let key = format!("receivers[{i}]");
        if !is_receiver_name(&r.name) {
            problems.push(format!("{key}.name `{}`: use 1 to 64 lowercase letters, digits or `-`", r.name));
        } else if !names.insert(r.name.clone()) {
            problems.push(format!("{key}.name `{}`: another receiver has this name", r.name));
        }
        if let Some(h) = &r.registry
            && !is_registry_host(h)
        {
            problems.push(format!("{key}.registry `{h}`: give a registry host, e.g. registry.example.com:5000"));
        }
        if r.kind == ReceiverKind::Gitea && r.registry.is_none() {
            problems.push(format!("{key}.registry: required for kind = \"gitea\" (the payload does not name it)"));
        }
        let secret = match SecretSource::from_keys(
            &format!("{key}.secret"),
            r.secret_env.as_ref(),
            r.secret_file.as_ref(),
            base,
        ) {
            Ok(Some(s)) => Some(s),
            Ok(None) => {
                problems.push(format!(
                    "{key}: set `secret_env` or `secret_file`; a receiver without a secret would accept anyone"
                ));
                None
            }
            Err(e) => {
                problems.push(e);
                None
            }
        };
        if let Some(secret) = secret {
            out.push(ReceiverSettings { name: r.name.clone(), kind: r.kind, secret, registry: r.registry.clone() });
        }
    }
    (settings, out)
}

/// Resolves every stage's `on_push` rules.
pub(super) fn push_rules(projects: &BTreeMap<String, ProjectFile>, problems: &mut Vec<String>) -> Vec<PushRule> {
    let mut out = Vec::new();
    for (pname, p) in projects {
        for (sname, st) in &p.stages {
            for (i, r) in st.on_push.iter().enumerate() {
                let key = format!("projects.{pname}.stages.{sname}.on_push[{i}]");
                let shape_ok = !r.tags.is_empty()
                    && r.tags.len() <= 128
                    && r.tags.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-*".contains(&c));
                if !shape_ok {
                    problems.push(format!("{key}.tags `{}`: a tag, or a pattern with `*` such as `pr-*`", r.tags));
                    continue;
                }
                if r.poll.is_some() && r.tags.contains('*') {
                    problems.push(format!(
                        "{key}.poll: only an exact tag can be polled (a registry lists no tags by pattern); got `{}`",
                        r.tags
                    ));
                }
                if r.poll.is_some_and(|d| d < Duration::from_secs(1)) {
                    problems.push(format!("{key}.poll: at least 1s"));
                }
                let (Ok(project), Ok(stage), Ok(default_tag)) =
                    (ProjectName::new(pname), StageName::new(sname), Tag::new(&st.default_tag))
                else {
                    continue; // reported with the stage
                };
                out.push(PushRule {
                    project,
                    stage,
                    image: p.image.clone(),
                    default_tag,
                    tags: TagPattern(r.tags.clone()),
                    slot: r.slot,
                    approval: r.approval,
                    poll: r.poll,
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "[projects.shop]\nimage = \"r.example.com/shop\"\nport = 80\n[projects.shop.stages.dev]\n";

    fn parse(text: &str) -> Result<super::super::Config, super::super::ConfigError> {
        super::super::from_text(text, Path::new("/etc/tf/tiny-forge.toml"))
    }

    #[test]
    fn server_defaults_and_rules_resolve() {
        let text = format!(
            "{PROJECT}[[projects.shop.stages.dev.on_push]]\ntags = \"main\"\nslot = \"default\"\npoll = \"30s\"\n[[projects.shop.stages.dev.on_push]]\ntags = \"pr-*\"\n"
        );
        let c = parse(&text).unwrap();
        assert_eq!(c.server().listen, "127.0.0.1:8420");
        assert_eq!(c.server().debounce, Duration::from_secs(2));
        let rules = c.push_rules();
        assert_eq!(rules.len(), 2);
        assert_eq!((rules[0].slot, rules[0].poll), (RuleSlot::Default, Some(Duration::from_secs(30))));
        assert_eq!(rules[0].slot_tag(&Tag::new("main").unwrap()).as_str(), "latest", "the stage's default tag");
        assert_eq!(rules[1].slot_tag(&Tag::new("pr-3").unwrap()).as_str(), "pr-3");
    }

    #[test]
    fn every_server_problem_is_reported_with_its_key_path() {
        let text = format!(
            "[server]\nlisten = \"nowhere\"\n[[receivers]]\nname = \"Bad Name\"\nkind = \"distribution\"\n[[receivers]]\nname = \"git\"\nkind = \"gitea\"\nsecret_env = \"X\"\n{PROJECT}[[projects.shop.stages.dev.on_push]]\ntags = \"pr-*\"\npoll = \"1m\"\n"
        );
        let e = parse(&text).unwrap_err().to_string();
        for needle in [
            "server.listen `nowhere`",
            "receivers[0].name `Bad Name`",
            "receivers[0]: set `secret_env` or `secret_file`",
            "receivers[1].registry: required for kind = \"gitea\"",
            "projects.shop.stages.dev.on_push[0].poll: only an exact tag",
        ] {
            assert!(e.contains(needle), "{needle:?} missing from: {e}");
        }
        let e = parse(&format!("[[receivers]]\nname = \"r\"\nkind = \"nexus\"\nsecret_env = \"X\"\n{PROJECT}"))
            .unwrap_err();
        assert!(e.to_string().contains("receivers"), "{e}");
        let e = parse(&format!("{PROJECT}[[projects.shop.stages.dev.on_push]]\ntags = \"x\"\nimage = \"evil/app\"\n"))
            .unwrap_err();
        assert!(e.to_string().contains("unknown field `image`"), "a rule cannot name an image: {e}");
    }

    #[test]
    fn trusted_proxies_take_addresses_and_cidrs_and_refuse_the_rest_with_their_index() {
        let text = format!("[server]\ntrusted_proxies = [\"127.0.0.1\", \"172.16.0.0/12\", \"fd00::/8\"]\n{PROJECT}");
        let c = parse(&text).unwrap();
        let nets: Vec<String> = c.server().trusted_proxies.iter().map(ToString::to_string).collect();
        assert_eq!(nets, ["127.0.0.1/32", "172.16.0.0/12", "fd00::/8"]);
        let text = format!("[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"nginx\", \"10.1.0.0/8\"]\n{PROJECT}");
        let e = parse(&text).unwrap_err().to_string();
        assert!(e.contains("server.trusted_proxies[1] `nginx`"), "{e}");
        assert!(e.contains("server.trusted_proxies[2] `10.1.0.0/8`"), "{e}");
        assert!(!e.contains("trusted_proxies[0]"), "{e}");
    }

    #[test]
    fn a_request_timeout_too_short_for_a_long_poll_is_refused() {
        let e = parse(&format!("[server]\nrequest_timeout = \"1s\"\n{PROJECT}")).unwrap_err().to_string();
        assert!(e.contains("server.request_timeout `1s`: at least 5s"), "{e}");
        assert!(parse(&format!("[server]\nrequest_timeout = \"5s\"\n{PROJECT}")).is_ok());
    }

    #[test]
    fn tag_patterns_match_like_shell_globs_with_star_only() {
        let p = |s: &str| TagPattern(s.to_owned());
        assert!(p("main").matches("main"));
        assert!(!p("main").matches("main2"));
        assert!(p("pr-*").matches("pr-42"));
        assert!(p("pr-*").matches("pr-"));
        assert!(!p("pr-*").matches("xpr-1"));
        assert!(p("v*.*").matches("v1.2"));
        assert!(!p("v*.*").matches("v12"));
        assert!(p("*").matches("anything"));
        assert!(p("a*b*c").matches("aXbYbc"));
    }
}
