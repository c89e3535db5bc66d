//! The one pass from the file shape to resolved values. It checks each value where it turns it
//! into its resolved form, collects every problem with its key path instead of stopping at the
//! first, and yields a [`Config`] only when there is none. Nothing reads the raw file after it.
//!
//! Layering: `[health]` < `[projects.X.health]` < `[projects.X.stages.Y.health]`, key by key;
//! project `env_file` < project `env` < stage `env_file` < stage `env` (later wins per key);
//! other stage keys replace the project's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::ConfigError;
use super::file::{
    AccessFile, FileConfig, HealthFile, NotifyFile, OneOffFile, OneOrMany, ProjectFile, RegistryFile, StageFile,
    VerifyFile,
};
use super::parsed::Config;
use super::resolved::{NotifyTarget, OneOff, Resolution, ResolvedStage};
use super::stage::{AccessSecret, EnvLayer, RegistrySecret, StagePlan};
use crate::domain::{Address, ProjectName, StageName, Tag};
use crate::engine::auth::registry_host;
use crate::engine::{Engine, EngineFile, StageFacts};
use crate::health::{HealthPolicy, VerifyPolicy};
use crate::naming::{self, SubdomainPattern};
use crate::proxy::HostAccess;
use crate::secret::SecretSource;

/// Resolves the parsed `file` (read from `path`).
///
/// # Errors
/// [`ConfigError::Invalid`] with every problem found.
pub(super) fn config(file: FileConfig, path: &Path) -> Result<Config, ConfigError> {
    let base = path.parent().map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let base = if base.as_os_str().is_empty() { PathBuf::from(".") } else { base };
    let mut pass = Pass { base: &base, problems: Vec::new() };
    match pass.config(file, path) {
        Some(c) if pass.problems.is_empty() => Ok(c),
        _ => Err(ConfigError::Invalid { path: path.to_path_buf(), problems: pass.problems }),
    }
}

/// The pass: turns each part of the file into its resolved form, recording every problem.
struct Pass<'a> {
    /// The config file's directory; relative paths in the file are relative to it.
    base: &'a Path,
    problems: Vec<String>,
}

/// The settings every stage shares.
struct Shared<'a> {
    subdomain: Option<SubdomainPattern>,
    tag_subdomain: Option<SubdomainPattern>,
    domain: &'a str,
    network: &'a str,
    probe_address: Address,
    remove_idle_network: bool,
    health: &'a HealthFile,
    verify: Option<&'a VerifyFile>,
    registries: &'a BTreeMap<String, RegistrySecret>,
    /// Which proxy serves the hosts: an `access` key must be one it can enforce.
    proxy: &'a crate::proxy::ProxyFile,
    /// How the proxy reaches an instance (`None` without a proxy).
    forward: Option<crate::domain::Address>,
}

impl Pass<'_> {
    fn problem(&mut self, p: impl Into<String>) {
        self.problems.push(p.into());
    }

    /// `None` when something is wrong (already recorded).
    fn config(&mut self, file: FileConfig, path: &Path) -> Option<Config> {
        let s = &file.settings;
        let subdomain = SubdomainPattern::parse(&s.subdomain, false)
            .map_err(|e| self.problem(format!("settings.subdomain `{}` {e}", s.subdomain)))
            .ok();
        let tag_subdomain = SubdomainPattern::parse(&s.tag_subdomain, true)
            .map_err(|e| self.problem(format!("settings.tag_subdomain `{}` {e}", s.tag_subdomain)))
            .ok();
        if !naming::is_valid_host(&s.domain) {
            self.problem(format!(
                "settings.domain `{}`: must be a lowercase host name such as staging.example.com",
                s.domain
            ));
        } else if s.domain.len() > naming::MAX_HOST - naming::MAX_LABEL - 1 {
            self.problem(format!(
                "settings.domain: at most {} bytes, to leave room for the subdomain",
                naming::MAX_HOST - naming::MAX_LABEL - 1
            ));
        }
        if s.network.is_empty() || !s.network.bytes().all(|c| c.is_ascii_alphanumeric() || b"_.-".contains(&c)) {
            self.problem(format!("settings.network `{}`: use letters, digits, `_`, `.` or `-`", s.network));
        }
        let proxy = file.proxy.resolve(self.base, &mut self.problems);
        let notify = self.notify(file.notify);
        self.health_layer(&file.health, "health");
        if let Some(v) = &file.verify {
            self.verify_layer(v, "verify");
        }
        let registries = self.registries(&file.registries);
        if file.projects.is_empty() {
            self.problem("projects: define at least one project, e.g. [projects.shop] with `image` and `port`");
        }
        let shared = Shared {
            subdomain,
            tag_subdomain,
            domain: &s.domain,
            network: &s.network,
            probe_address: s.probe_address,
            remove_idle_network: s.remove_idle_network,
            health: &file.health,
            verify: file.verify.as_ref(),
            registries: &registries,
            proxy: &file.proxy,
            forward: file.proxy.forward(),
        };
        let projects = file.projects.iter().map(|(name, p)| (name.clone(), self.project(name, p, &shared))).collect();
        let (server, receivers) = super::server::server(&file.server, &file.receivers, self.base, &mut self.problems);
        let push_rules = super::server::push_rules(&file.projects, &mut self.problems);
        Some(Config {
            path: path.to_path_buf(),
            state: s.state.as_ref().map(|p| self.base.join(p)),
            ca_file: s.ca_file.as_ref().map(|p| self.base.join(p)),
            network: s.network.clone(),
            history_retention: s.history_retention,
            proxy: proxy?,
            notify,
            projects,
            server,
            receivers,
            push_rules,
        })
    }

    fn notify(&mut self, notify: Option<OneOrMany<NotifyFile>>) -> Vec<NotifyTarget> {
        let targets = notify.map(OneOrMany::into_vec).unwrap_or_default();
        let mut out = Vec::new();
        for (i, n) in targets.into_iter().enumerate() {
            let key = format!("notify[{i}]");
            if !(n.url.starts_with("http://") || n.url.starts_with("https://")) {
                self.problem(format!("{key}.url: must start with http:// or https://"));
            }
            let secret = SecretSource::from_keys(
                &format!("{key}.secret"),
                n.secret_env.as_ref(),
                n.secret_file.as_ref(),
                self.base,
            )
            .unwrap_or_else(|e| {
                self.problem(e);
                None
            });
            if n.budget.is_zero() {
                self.problem(format!("{key}.budget: must be longer than 0s"));
            }
            out.push(NotifyTarget {
                url: n.url,
                secret,
                format: n.format,
                budget: n.budget,
                include_logs: n.include_logs,
            });
        }
        out
    }

    /// Checks the keys one health table sets, under its own key path.
    fn health_layer(&mut self, h: &HealthFile, key: &str) {
        if let Some(path) = &h.path
            && !path.starts_with('/')
        {
            self.problem(format!("{key}.path: must start with `/` (got `{path}`)"));
        }
        if h.retries == Some(0) {
            self.problem(format!("{key}.retries: must be at least 1"));
        }
        for (name, v) in [("interval", h.interval), ("timeout", h.timeout), ("start_interval", h.start_interval)] {
            if v.is_some_and(|v| v.is_zero()) {
                self.problem(format!("{key}.{name}: must be longer than 0s"));
            }
        }
    }

    /// Checks the keys one verify table sets, under its own key path.
    fn verify_layer(&mut self, v: &VerifyFile, key: &str) {
        if let Some(path) = &v.path
            && !path.starts_with('/')
        {
            self.problem(format!("{key}.path: must start with `/` (got `{path}`)"));
        }
        if v.failures == Some(0) {
            self.problem(format!("{key}.failures: must be at least 1"));
        }
        if v.interval.is_some_and(|i| i.is_zero()) {
            self.problem(format!("{key}.interval: must be longer than 0s"));
        }
        if let Some(c) = &v.connect
            && c.parse::<std::net::SocketAddr>().is_err()
        {
            self.problem(format!("{key}.connect `{c}`: give the proxy's public address as ip:port, e.g. 127.0.0.1:80"));
        }
    }

    /// A stage's verify policy from its layers (`None`: off), checked as a whole under `key`.
    fn verify(&mut self, key: &str, layers: [Option<&VerifyFile>; 3]) -> Option<VerifyPolicy> {
        if layers.iter().all(Option::is_none) {
            return None;
        }
        let mut policy = VerifyPolicy::default();
        for layer in layers.into_iter().flatten() {
            layer.apply(&mut policy);
        }
        if policy.window.is_zero() {
            return None;
        }
        if policy.window < policy.interval {
            self.problem(format!(
                "{key}.verify.window ({}) is shorter than verify.interval ({}); make the window at least one interval",
                humantime::format_duration(policy.window),
                humantime::format_duration(policy.interval)
            ));
        }
        Some(policy)
    }

    fn registries(&mut self, registries: &BTreeMap<String, RegistryFile>) -> BTreeMap<String, RegistrySecret> {
        let mut out = BTreeMap::new();
        for (host, r) in registries {
            let key = format!("registries.\"{host}\".password");
            match SecretSource::from_keys(&key, r.password_env.as_ref(), r.password_file.as_ref(), self.base) {
                Ok(Some(password)) => {
                    out.insert(host.clone(), RegistrySecret { key, username: r.username.clone(), password });
                }
                Ok(None) => self.problem(format!("registries.\"{host}\": set `password_env` or `password_file`")),
                Err(e) => self.problem(e),
            }
        }
        out
    }

    /// Checks `memory` and `cpus` under `key`; returns them as bytes and nano-CPUs.
    fn limits(&mut self, key: &str, memory: Option<&str>, cpus: Option<f64>) -> (Option<i64>, Option<i64>) {
        let memory = memory.and_then(|m| {
            let bytes = parse_memory(m);
            if bytes.is_none() {
                self.problem(format!("{key}.memory `{m}`: use a size such as 512m or 1g"));
            }
            bytes
        });
        let nano_cpus = cpus.and_then(|c| {
            if c > 0.0 && c <= 1024.0 {
                #[allow(clippy::cast_possible_truncation, reason = "at most 1024e9, well inside i64")]
                Some((c * 1e9) as i64)
            } else {
                self.problem(format!("{key}.cpus {c}: must be more than 0"));
                None
            }
        });
        (memory, nano_cpus)
    }

    fn project(&mut self, name: &str, p: &ProjectFile, shared: &Shared<'_>) -> BTreeMap<String, StagePlan> {
        let key = format!("projects.{name}");
        let project = ProjectName::new(name).map_err(|e| self.problem(format!("{key}: {e}"))).ok();
        if let Err(e) = crate::image_ref::ImageRef::parse(&p.image) {
            self.problem(format!(
                "{key}.image `{}`: {}; give a repository without tag or digest, e.g. registry.example.com/team/{name}",
                p.image, e.reason
            ));
        }
        if p.max_instances == 0 {
            self.problem(format!("{key}.max_instances: must be at least 1"));
        }
        let limits = self.limits(&key, p.memory.as_deref(), p.cpus);
        for l in p.labels.keys().filter(|l| l.starts_with(crate::engine::LABEL_PREFIX)) {
            self.problem(format!("{key}.labels.{l}: the `{}` prefix is tiny-forge's own", crate::engine::LABEL_PREFIX));
        }
        if p.command.as_ref().is_some_and(Vec::is_empty) {
            self.problem(format!("{key}.command: give at least the program, or remove the key"));
        }
        if let Some(h) = &p.health {
            self.health_layer(h, &format!("{key}.health"));
        }
        if let Some(v) = &p.verify {
            self.verify_layer(v, &format!("{key}.verify"));
        }
        if p.stages.is_empty() {
            self.problem(format!("{key}.stages: define at least one stage, e.g. [{key}.stages.dev]"));
        }
        let mut plans = BTreeMap::new();
        for (sname, st) in &p.stages {
            if let Some(plan) = self.stage(project.as_ref(), name, p, limits, sname, st, shared) {
                plans.insert(sname.clone(), plan);
            }
        }
        plans
    }

    #[allow(clippy::too_many_arguments, reason = "the project's parts resolved once, handed to each stage")]
    fn stage(
        &mut self,
        project: Option<&ProjectName>,
        pname: &str,
        p: &ProjectFile,
        (project_memory, project_cpus): (Option<i64>, Option<i64>),
        sname: &str,
        st: &StageFile,
        shared: &Shared<'_>,
    ) -> Option<StagePlan> {
        let key = format!("projects.{pname}.stages.{sname}");
        let stage = StageName::new(sname).map_err(|e| self.problem(format!("{key}: {e}"))).ok();
        let default_tag = Tag::new(&st.default_tag).map_err(|e| self.problem(format!("{key}.default_tag: {e}"))).ok();
        if st.max_instances == Some(0) {
            self.problem(format!("{key}.max_instances: must be at least 1"));
        }
        let (memory, nano_cpus) = self.limits(&key, st.memory.as_deref(), st.cpus);
        let mut health = HealthPolicy::default();
        shared.health.apply(&mut health);
        for layer in [p.health.as_ref(), st.health.as_ref()].into_iter().flatten() {
            layer.apply(&mut health);
        }
        if let Some(h) = &st.health {
            self.health_layer(h, &format!("{key}.health"));
        }
        if let Some(v) = &st.verify {
            self.verify_layer(v, &format!("{key}.verify"));
        }
        let verify = self.verify(&key, [shared.verify, p.verify.as_ref(), st.verify.as_ref()]);
        for (pattern, pkey) in [(&shared.subdomain, "subdomain"), (&shared.tag_subdomain, "tag_subdomain")] {
            if let Some(pattern) = pattern
                && let Err(e) = pattern.render(pname, sname, &"x".repeat(128))
            {
                self.problem(format!("settings.{pkey} for {pname}/{sname}: {e}"));
            }
        }
        let mut env = Vec::new();
        if let Some(f) = &p.env_file {
            env.push(EnvLayer::File { key: format!("projects.{pname}.env_file"), path: self.base.join(f) });
        }
        env.push(EnvLayer::Inline(p.env.clone()));
        if let Some(f) = &st.env_file {
            env.push(EnvLayer::File { key: format!("{key}.env_file"), path: self.base.join(f) });
        }
        env.push(EnvLayer::Inline(st.env.clone()));
        let registry = registry_host(&p.image).and_then(|h| shared.registries.get(h)).cloned();
        // Its problem is reported once, by `project`.
        let image = crate::image_ref::ImageRef::parse(&p.image).ok();
        let one_off = |name: &str, stage: Option<&OneOffFile>, project: Option<&OneOffFile>, pass: &mut Self| {
            let f = stage.or(project)?;
            if f.command.is_empty() {
                pass.problem(format!("{key}.{name}.command: give at least the program"));
            }
            if f.timeout.is_zero() {
                pass.problem(format!("{key}.{name}.timeout: must be longer than 0s"));
            }
            Some(OneOff { command: f.command.clone(), timeout: f.timeout })
        };
        let release = one_off("release", st.release.as_ref(), p.release.as_ref(), self);
        let on_create = one_off("on_create", st.on_create.as_ref(), p.on_create.as_ref(), self);
        let on_remove = one_off("on_remove", st.on_remove.as_ref(), p.on_remove.as_ref(), self);
        let (access, access_secret) = self.access(&key, st.access.as_ref().or(p.access.as_ref()), shared.proxy);
        let engine = self.engine(&key, st.engine.as_ref().or(p.engine.as_ref()), &health, p, shared);
        Some(StagePlan {
            stage: ResolvedStage {
                project: project?.clone(),
                stage: stage?,
                image: image?,
                port: p.port,
                default_tag: default_tag?,
                max_instances: st.max_instances.unwrap_or(p.max_instances),
                keep_images: st.keep_images.unwrap_or(p.keep_images),
                remove_idle_network: shared.remove_idle_network,
                release,
                on_create,
                on_remove,
                access,
                ttl: st.ttl.or(p.ttl),
                env: Vec::new(),
                restart: p.restart.into(),
                memory: memory.or(project_memory),
                nano_cpus: nano_cpus.or(project_cpus),
                command: p.command.clone(),
                labels: p.labels.clone(),
                volumes: p.volumes.clone(),
                health,
                verify,
                probe_address: shared.probe_address,
                network: shared.network.to_owned(),
                domain: shared.domain.to_owned(),
                registry_auth: None,
                engine,
                resolution: Resolution::ConfigOnly,
                subdomain: shared.subdomain.clone()?,
                tag_subdomain: shared.tag_subdomain.clone()?,
            },
            env,
            registry,
            access_secret,
        })
    }

    /// `engine`, checked by its kind against the rest of the stage.
    fn engine(
        &mut self,
        key: &str,
        e: Option<&EngineFile>,
        health: &HealthPolicy,
        p: &ProjectFile,
        shared: &Shared<'_>,
    ) -> Engine {
        let facts = StageFacts {
            health_command: health.command.as_deref(),
            has_volumes: !p.volumes.is_empty(),
            forward_by_ip: shared.forward == Some(crate::domain::Address::Ip),
        };
        EngineFile::resolve(e, key, &facts, &mut self.problems)
    }

    /// `access`, checked; the basic-auth hash's source comes back apart, to be read with the
    /// stage.
    fn access(
        &mut self,
        key: &str,
        a: Option<&AccessFile>,
        proxy: &crate::proxy::ProxyFile,
    ) -> (HostAccess, Option<AccessSecret>) {
        let Some(a) = a else { return (HostAccess::Public, None) };
        // Caught here, before a deploy starts an instance it would have to roll back.
        if let Some(p) = proxy.access_problem(key, a.npm_access_list_id.is_some(), a.basic_auth.is_some()) {
            self.problem(p);
        }
        match (a.npm_access_list_id, &a.basic_auth) {
            (Some(id), None) => (HostAccess::AccessList(id), None),
            (None, Some(b)) => {
                let skey = format!("{key}.access.basic_auth.password_hash");
                let source = match SecretSource::from_keys(
                    &skey,
                    b.password_hash_env.as_ref(),
                    b.password_hash_file.as_ref(),
                    self.base,
                ) {
                    Ok(Some(s)) => Some(AccessSecret { key: skey.clone(), user: b.user.clone(), source: s }),
                    Ok(None) => {
                        self.problem(format!(
                            "{skey}_env or {skey}_file: required (a bcrypt hash, never the password)"
                        ));
                        None
                    }
                    Err(e) => {
                        self.problem(e);
                        None
                    }
                };
                if b.user.is_empty() || b.user.contains(':') {
                    self.problem(format!("{key}.access.basic_auth.user: give a user name without `:`"));
                }
                // Unreadable until the hash is read (every resolution reads it): a protected
                // host is never written without it.
                (HostAccess::Unreadable(skey), source)
            }
            _ => {
                self.problem(format!(
                    "{key}.access: give either npm_access_list_id (NPM) or basic_auth (Caddy), not both or neither"
                ));
                (HostAccess::Public, None)
            }
        }
    }
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
