//! Validation of the parsed file and resolution of one project's stage into concrete values.
//! Layering: `[health]` < `[projects.X.health]` < `[projects.X.stages.Y.health]`; project `env`
//! and `env_file` < stage `env_file` < stage `env` (later wins per key); other stage keys replace
//! the project's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::ConfigError;
use super::file::{FileConfig, HealthFile, OneOrMany, ProjectFile, StageFile};
use super::resolved::{
    ForwardTo, NotifyFormat, NotifyTarget, NpmSettings, ProbeAddress, ProxySettings, RegistryAuth, ResolvedStage,
    RestartPolicy,
};
use crate::domain::{ProjectName, StageName, Tag};
use crate::engine::auth::registry_host;
use crate::health::HealthPolicy;
use crate::naming::{self, SubdomainPattern};
use crate::secret::SecretSource;

/// A parsed and validated config file.
#[derive(Debug)]
pub struct Config {
    path: PathBuf,
    base: PathBuf,
    file: FileConfig,
    subdomain: SubdomainPattern,
    tag_subdomain: SubdomainPattern,
    proxy: ProxySettings,
    notify: Vec<NotifyTarget>,
}

fn merge_health(layers: &[Option<&HealthFile>]) -> HealthFile {
    let mut out = HealthFile::default();
    for l in layers.iter().flatten() {
        macro_rules! take {
            ($($f:ident),*) => { $( if l.$f.is_some() { out.$f = l.$f.clone(); } )* };
        }
        take!(path, interval, timeout, retries, start_period, start_interval);
    }
    out
}

fn health_policy(h: &HealthFile, key: &str, problems: &mut Vec<String>) -> HealthPolicy {
    let d = HealthPolicy::default();
    let p = HealthPolicy {
        path: h.path.clone().unwrap_or(d.path),
        interval: h.interval.unwrap_or(d.interval),
        timeout: h.timeout.unwrap_or(d.timeout),
        retries: h.retries.unwrap_or(d.retries),
        start_period: h.start_period.unwrap_or(d.start_period),
        start_interval: h.start_interval.unwrap_or(d.start_interval),
    };
    if !p.path.starts_with('/') {
        problems.push(format!("{key}.path: must start with `/` (got `{}`)", p.path));
    }
    if p.retries == 0 {
        problems.push(format!("{key}.retries: must be at least 1"));
    }
    for (name, v) in [("interval", p.interval), ("timeout", p.timeout), ("start_interval", p.start_interval)] {
        if v.is_zero() {
            problems.push(format!("{key}.{name}: must be longer than 0s"));
        }
    }
    p
}

/// Parses `512m`, `1g`, `1024k` or a byte count.
fn parse_memory(s: &str) -> Option<i64> {
    let s = s.trim().to_ascii_lowercase();
    let s = s.strip_suffix('b').unwrap_or(&s);
    let (num, mult) = match s.chars().last()? {
        'k' => (&s[..s.len() - 1], 1i64 << 10),
        'm' => (&s[..s.len() - 1], 1 << 20),
        'g' => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.parse::<i64>().ok().filter(|n| *n > 0).and_then(|n| n.checked_mul(mult))
}

fn env_file(path: &Path, key: &str, problems: &mut Vec<String>) -> Vec<(String, String)> {
    match dotenvy::from_path_iter(path) {
        Ok(iter) => {
            let mut out = Vec::new();
            for item in iter {
                match item {
                    Ok(kv) => out.push(kv),
                    Err(e) => {
                        problems.push(format!("{key}: `{}` is not a valid env file: {e}", path.display()));
                        break;
                    }
                }
            }
            out
        }
        Err(e) => {
            problems.push(format!("{key}: cannot read `{}`: {e}", path.display()));
            Vec::new()
        }
    }
}

fn is_valid_repository(image: &str) -> bool {
    !image.is_empty()
        && !image.contains('@')
        && !image.ends_with('/')
        && image.rsplit('/').next().is_some_and(|last| !last.contains(':'))
        && image.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || b"._-/:".contains(&c))
}

impl Config {
    pub(super) fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let file: FileConfig = toml::from_str(text).map_err(|e| {
            let (line, column) = e.span().map_or((1, 1), |span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map_or(0, str::len) + 1;
                (line, column)
            });
            ConfigError::Parse {
                path: path.to_path_buf(),
                line,
                column,
                message: e.message().replace('\n', " ").trim().to_owned(),
            }
        })?;
        let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
        let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
        Self::validate(file, path, base)
    }

    #[allow(clippy::too_many_lines, reason = "one flat list of checks reads best")]
    fn validate(file: FileConfig, path: &Path, base: PathBuf) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let s = &file.settings;
        let subdomain = SubdomainPattern::parse(&s.subdomain, false)
            .map_err(|e| problems.push(format!("settings.subdomain `{}` {e}", s.subdomain)))
            .ok();
        let tag_subdomain = SubdomainPattern::parse(&s.tag_subdomain, true)
            .map_err(|e| problems.push(format!("settings.tag_subdomain `{}` {e}", s.tag_subdomain)))
            .ok();
        if !naming::is_valid_host(&s.domain) {
            problems.push(format!(
                "settings.domain `{}`: must be a lowercase host name such as staging.example.com",
                s.domain
            ));
        } else if s.domain.len() > naming::MAX_HOST - naming::MAX_LABEL - 1 {
            problems.push(format!(
                "settings.domain: at most {} bytes, to leave room for the subdomain",
                naming::MAX_HOST - naming::MAX_LABEL - 1
            ));
        }
        if s.network.is_empty() || !s.network.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)) {
            problems.push(format!("settings.network `{}`: use letters, digits, `_`, `.` or `-`", s.network));
        }
        if let Some(p) = &s.probe_address
            && !matches!(p.as_str(), "ip" | "name")
        {
            problems.push(format!("settings.probe_address `{p}`: use `ip` or `name`"));
        }
        let proxy = Self::validate_proxy(&file, &base, &mut problems);
        let notify = Self::validate_notify(&file, &base, &mut problems);
        let _ = merge_health(&[Some(&file.health)]);
        health_policy(&file.health, "health", &mut problems);
        for (host, r) in &file.registries {
            if let Err(e) = SecretSource::from_keys(
                &format!("registries.\"{host}\".password"),
                r.password_env.as_ref(),
                r.password_file.as_ref(),
                &base,
            ) {
                problems.push(e);
            }
            if r.password_env.is_none() && r.password_file.is_none() {
                problems.push(format!("registries.\"{host}\": set `password_env` or `password_file`"));
            }
        }
        if file.projects.is_empty() {
            problems.push("projects: define at least one project, e.g. [projects.shop] with `image` and `port`".into());
        }
        for (name, p) in &file.projects {
            Self::validate_project(name, p, &file, subdomain.as_ref(), tag_subdomain.as_ref(), &mut problems);
        }
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path: path.to_path_buf(), problems });
        }
        match (subdomain, tag_subdomain) {
            (Some(subdomain), Some(tag_subdomain)) => {
                Ok(Self { path: path.to_path_buf(), base, file, subdomain, tag_subdomain, proxy, notify })
            }
            _ => Err(ConfigError::Invalid { path: path.to_path_buf(), problems }),
        }
    }

    fn validate_project(
        name: &str,
        p: &ProjectFile,
        file: &FileConfig,
        subdomain: Option<&SubdomainPattern>,
        tag_subdomain: Option<&SubdomainPattern>,
        problems: &mut Vec<String>,
    ) {
        let key = format!("projects.{name}");
        if let Err(e) = ProjectName::new(name) {
            problems.push(format!("{key}: {e}"));
        }
        if !is_valid_repository(&p.image) {
            problems.push(format!(
                "{key}.image `{}`: give a repository without tag or digest, e.g. registry.example.com/team/{name}",
                p.image
            ));
        }
        if !(1..=65535).contains(&p.port) {
            problems.push(format!("{key}.port {}: must be between 1 and 65535", p.port));
        }
        if p.max_instances == Some(0) {
            problems.push(format!("{key}.max_instances: must be at least 1"));
        }
        if let Some(r) = &p.restart
            && !matches!(r.as_str(), "no" | "always" | "unless-stopped" | "on-failure")
        {
            problems.push(format!("{key}.restart `{r}`: use no, always, unless-stopped or on-failure"));
        }
        check_limits(&key, p.memory.as_deref(), p.cpus, problems);
        for l in p.labels.keys() {
            if l.starts_with(crate::engine::LABEL_PREFIX) {
                problems.push(format!(
                    "{key}.labels.{l}: the `{}` prefix is tiny-forge's own",
                    crate::engine::LABEL_PREFIX
                ));
            }
        }
        if p.command.as_ref().is_some_and(Vec::is_empty) {
            problems.push(format!("{key}.command: give at least the program, or remove the key"));
        }
        if p.stages.is_empty() {
            problems.push(format!("{key}.stages: define at least one stage, e.g. [{key}.stages.dev]"));
        }
        for (sname, st) in &p.stages {
            let skey = format!("{key}.stages.{sname}");
            if let Err(e) = StageName::new(sname) {
                problems.push(format!("{skey}: {e}"));
            }
            if let Some(t) = &st.default_tag
                && let Err(e) = Tag::new(t)
            {
                problems.push(format!("{skey}.default_tag: {e}"));
            }
            if st.max_instances == Some(0) {
                problems.push(format!("{skey}.max_instances: must be at least 1"));
            }
            check_limits(&skey, st.memory.as_deref(), st.cpus, problems);
            let h = merge_health(&[Some(&file.health), p.health.as_ref(), st.health.as_ref()]);
            health_policy(&h, &format!("{skey}.health"), problems);
            for (pat, pkey) in [(subdomain, "subdomain"), (tag_subdomain, "tag_subdomain")] {
                if let Some(pat) = pat
                    && let Err(e) = pat.render(name, sname, &"x".repeat(128))
                {
                    problems.push(format!("settings.{pkey} for {name}/{sname}: {e}"));
                }
            }
        }
    }

    fn validate_proxy(file: &FileConfig, base: &Path, problems: &mut Vec<String>) -> ProxySettings {
        let p = &file.proxy;
        let timeout = p.timeout.unwrap_or(Duration::from_secs(10));
        let is_caddy = p.kind.as_deref() == Some("caddy");
        let forward = match p.forward.as_deref() {
            // Caddy usually runs on the host, where container names do not resolve.
            None if is_caddy => ForwardTo::Ip,
            None | Some("name") => ForwardTo::Name,
            Some("ip") => ForwardTo::Ip,
            Some(other) => {
                problems.push(format!("proxy.forward `{other}`: use `name` or `ip`"));
                ForwardTo::Name
            }
        };
        let url_ok = |problems: &mut Vec<String>, what: &str| -> String {
            match &p.url {
                Some(u) if u.starts_with("http://") || u.starts_with("https://") => u.trim_end_matches('/').to_owned(),
                Some(_) => {
                    problems.push(format!("proxy.url: must start with http:// or https:// ({what})"));
                    String::new()
                }
                None => {
                    problems.push(format!("proxy.url: required for kind = \"{what}\""));
                    String::new()
                }
            }
        };
        match p.kind.as_deref().unwrap_or("none") {
            "none" => ProxySettings::None,
            "npm" => {
                let url = url_ok(problems, "npm");
                let email = p.email.clone().unwrap_or_else(|| {
                    problems.push("proxy.email: required for kind = \"npm\" (the NPM login)".into());
                    String::new()
                });
                let password = match SecretSource::from_keys(
                    "proxy.password",
                    p.password_env.as_ref(),
                    p.password_file.as_ref(),
                    base,
                ) {
                    Ok(Some(s)) => s,
                    Ok(None) => {
                        problems.push("proxy.password_env or proxy.password_file: required for kind = \"npm\"".into());
                        SecretSource::Env(String::new())
                    }
                    Err(e) => {
                        problems.push(e);
                        SecretSource::Env(String::new())
                    }
                };
                ProxySettings::Npm(NpmSettings {
                    url,
                    email,
                    password,
                    timeout,
                    forward,
                    certificate_id: p.certificate_id,
                    ssl_forced: p.ssl_forced.unwrap_or(p.certificate_id.is_some()),
                    http2_support: p.http2_support.unwrap_or(p.certificate_id.is_some()),
                    hsts_enabled: p.hsts_enabled.unwrap_or(false),
                    hsts_subdomains: p.hsts_subdomains.unwrap_or(false),
                    block_exploits: p.block_exploits.unwrap_or(true),
                    allow_websocket_upgrade: p.allow_websocket_upgrade.unwrap_or(true),
                    caching_enabled: p.caching_enabled.unwrap_or(false),
                    advanced_config: p.advanced_config.clone().unwrap_or_default(),
                })
            }
            "caddy" => ProxySettings::Caddy {
                admin_url: url_ok(problems, "caddy"),
                server: p.server.clone().unwrap_or_else(|| "srv0".into()),
                timeout,
                forward,
            },
            other => {
                problems.push(format!("proxy.kind `{other}`: use none, npm or caddy"));
                ProxySettings::None
            }
        }
    }

    fn validate_notify(file: &FileConfig, base: &Path, problems: &mut Vec<String>) -> Vec<NotifyTarget> {
        let targets = match &file.notify {
            None => return Vec::new(),
            Some(OneOrMany::One(n)) => vec![n.clone()],
            Some(OneOrMany::Many(v)) => v.clone(),
        };
        targets
            .into_iter()
            .enumerate()
            .map(|(i, n)| {
                let key = format!("notify[{i}]");
                if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
                    problems.push(format!("{key}.url: must start with http:// or https://"));
                }
                let format = match n.format.as_deref() {
                    None | Some("json") => NotifyFormat::Json,
                    Some("slack") => NotifyFormat::Slack,
                    Some("discord") => NotifyFormat::Discord,
                    Some(other) => {
                        problems.push(format!("{key}.format `{other}`: use json, slack or discord"));
                        NotifyFormat::Json
                    }
                };
                let secret = SecretSource::from_keys(
                    &format!("{key}.secret"),
                    n.secret_env.as_ref(),
                    n.secret_file.as_ref(),
                    base,
                )
                .unwrap_or_else(|e| {
                    problems.push(e);
                    None
                });
                let budget = n.budget.unwrap_or(Duration::from_secs(10));
                if budget.is_zero() {
                    problems.push(format!("{key}.budget: must be longer than 0s"));
                }
                NotifyTarget { url: n.url, secret, format, budget }
            })
            .collect()
    }

    /// The file this config came from.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `settings.state`, relative to the config file's directory.
    #[must_use]
    pub fn state_path(&self) -> Option<PathBuf> {
        self.file.settings.state.as_ref().map(|p| self.base.join(p))
    }

    /// `settings.ca_file`, relative to the config file's directory: extra CA certificates (PEM)
    /// that HTTPS clients trust.
    #[must_use]
    pub fn ca_file(&self) -> Option<PathBuf> {
        self.file.settings.ca_file.as_ref().map(|p| self.base.join(p))
    }

    /// The proxy backend's settings.
    #[must_use]
    pub fn proxy(&self) -> &ProxySettings {
        &self.proxy
    }

    /// The webhook targets (empty when `[notify]` is absent).
    #[must_use]
    pub fn notify(&self) -> &[NotifyTarget] {
        &self.notify
    }

    /// How long `prune` keeps finished deploys in history (default 90 days).
    #[must_use]
    pub fn history_retention(&self) -> Duration {
        self.file.settings.history_retention.unwrap_or(Duration::from_secs(90 * 86_400))
    }

    /// Every configured stage, resolved (for `prune`).
    ///
    /// # Errors
    /// As [`Config::resolve`].
    pub fn resolve_all(&self) -> Result<Vec<ResolvedStage>, ConfigError> {
        let mut out = Vec::new();
        for (p, s) in self.stages() {
            let (Ok(p), Ok(s)) = (ProjectName::new(&p), StageName::new(&s)) else { continue };
            out.push(self.resolve(&p, &s)?);
        }
        Ok(out)
    }

    /// The Docker network every instance joins.
    #[must_use]
    pub fn network(&self) -> &str {
        &self.file.settings.network
    }

    /// Projects and their stages, sorted.
    #[must_use]
    pub fn stages(&self) -> Vec<(String, String)> {
        self.file.projects.iter().flat_map(|(p, pf)| pf.stages.keys().map(move |s| (p.clone(), s.clone()))).collect()
    }

    /// Resolves `project`'s `stage`, reading env files and config secrets.
    ///
    /// # Errors
    /// [`ConfigError::UnknownProject`], [`ConfigError::UnknownStage`], [`ConfigError::Invalid`]
    /// for unreadable env files, [`ConfigError::Secret`] for unreadable registry secrets.
    pub fn resolve(&self, project: &ProjectName, stage: &StageName) -> Result<ResolvedStage, ConfigError> {
        let p = self.file.projects.get(project.as_str()).ok_or_else(|| ConfigError::UnknownProject {
            path: self.path.clone(),
            project: project.to_string(),
            known: self.file.projects.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let st: &StageFile = p.stages.get(stage.as_str()).ok_or_else(|| ConfigError::UnknownStage {
            path: self.path.clone(),
            project: project.to_string(),
            stage: stage.to_string(),
            known: p.stages.keys().cloned().collect::<Vec<_>>().join(", "),
        })?;
        let key = format!("projects.{project}.stages.{stage}");
        let mut problems = Vec::new();
        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(f) = &p.env_file {
            env.extend(env_file(&self.base.join(f), &format!("projects.{project}.env_file"), &mut problems));
        }
        env.extend(p.env.clone());
        if let Some(f) = &st.env_file {
            env.extend(env_file(&self.base.join(f), &format!("{key}.env_file"), &mut problems));
        }
        env.extend(st.env.clone());
        let health = health_policy(
            &merge_health(&[Some(&self.file.health), p.health.as_ref(), st.health.as_ref()]),
            &key,
            &mut problems,
        );
        if !problems.is_empty() {
            return Err(ConfigError::Invalid { path: self.path.clone(), problems });
        }
        let registry_auth = match registry_host(&p.image).and_then(|h| self.file.registries.get(h).map(|r| (h, r))) {
            Some((host, r)) => {
                let key = format!("registries.\"{host}\".password");
                let src = SecretSource::from_keys(&key, r.password_env.as_ref(), r.password_file.as_ref(), &self.base)
                    .map_err(ConfigError::Secret)?
                    .ok_or_else(|| ConfigError::Secret(format!("{key}: missing")))?;
                Some(RegistryAuth {
                    username: r.username.clone(),
                    password: src.read(&key).map_err(ConfigError::Secret)?,
                })
            }
            None => None,
        };
        let restart = match p.restart.as_deref() {
            Some("no") => RestartPolicy::No,
            Some("always") => RestartPolicy::Always,
            Some("on-failure") => RestartPolicy::OnFailure,
            _ => RestartPolicy::UnlessStopped,
        };
        #[allow(clippy::cast_possible_truncation, reason = "validated to a sane CPU count")]
        let nano_cpus = st.cpus.or(p.cpus).map(|c| (c * 1e9) as i64);
        Ok(ResolvedStage {
            project: project.clone(),
            stage: stage.clone(),
            image: p.image.clone(),
            port: u16::try_from(p.port).unwrap_or(80),
            default_tag: Tag::new(st.default_tag.as_deref().unwrap_or("latest")).map_err(|e| ConfigError::Invalid {
                path: self.path.clone(),
                problems: vec![format!("{key}.default_tag: {e}")],
            })?,
            max_instances: st.max_instances.or(p.max_instances).unwrap_or(3),
            ttl: st.ttl.or(p.ttl),
            env: env.into_iter().collect(),
            restart,
            memory: st.memory.as_deref().or(p.memory.as_deref()).and_then(parse_memory),
            nano_cpus,
            command: p.command.clone(),
            labels: p.labels.clone(),
            volumes: p.volumes.clone(),
            health,
            probe_address: match self.file.settings.probe_address.as_deref() {
                Some("name") => ProbeAddress::Name,
                _ => ProbeAddress::Ip,
            },
            network: self.file.settings.network.clone(),
            domain: self.file.settings.domain.clone(),
            registry_auth,
            subdomain: self.subdomain.clone(),
            tag_subdomain: self.tag_subdomain.clone(),
        })
    }
}

fn check_limits(key: &str, memory: Option<&str>, cpus: Option<f64>, problems: &mut Vec<String>) {
    if let Some(m) = memory
        && parse_memory(m).is_none()
    {
        problems.push(format!("{key}.memory `{m}`: use a size such as 512m or 1g"));
    }
    if let Some(c) = cpus
        && !(c > 0.0 && c <= 1024.0)
    {
        problems.push(format!("{key}.cpus {c}: must be more than 0"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sizes_parse_like_docker() {
        assert_eq!(parse_memory("512m"), Some(512 << 20));
        assert_eq!(parse_memory("1g"), Some(1 << 30));
        assert_eq!(parse_memory("1024"), Some(1024));
        assert_eq!(parse_memory("1.5g"), None);
        assert_eq!(parse_memory("lots"), None);
    }
}
