//! `tiny-forge check`: verifies, one line each, what a deploy will need (config, TLS roots, the
//! outbound proxy, the proxy backend, state, Docker, network, registries; a stage whose env files
//! or registry secret cannot be read gets a `stage` line); exits non-zero if any check fails.

use tiny_forge::config::{Config, ResolvedStage};
use tiny_forge::domain::{ProjectName, StageName};
use tiny_forge::engine::{AnyEngine, Images as _, Networks as _, Services as _, auth};
use tiny_forge::http::{self, ProxyEnv, Trust};
use tiny_forge::proxy::AnyProxy;

use super::{Ctx, Failure, exit, out};

pub(crate) async fn run(ctx: &Ctx) -> Result<u8, Failure> {
    let mut failed = false;
    let mut line = |ok: bool, what: &str, detail: String| {
        failed |= !ok;
        out(&format!("{} {what}: {detail}", if ok { "ok  " } else { "FAIL" }))
    };
    let config = match ctx.load_config() {
        Ok(c) => {
            line(true, "config", config_line(&c))?;
            Some(c)
        }
        Err(f) => {
            line(false, "config", super::one_line(f.error.as_ref()))?;
            None
        }
    };
    if let Some(c) = &config {
        let trust = match Trust::load(c.ca_file().as_deref()) {
            Ok(t) => {
                line(true, "tls", t.summary())?;
                Some(t)
            }
            Err(e) => {
                line(false, "tls", super::one_line(&e))?;
                None
            }
        };
        // Proxy URLs are shown with their credentials masked, here and in errors.
        let proxies = ProxyEnv::from_env();
        let client = match trust.as_ref().map(|t| http::outbound(t, &proxies)) {
            Some(Ok(client)) => {
                line(true, "outbound", proxies.describe())?;
                Some(client)
            }
            Some(Err(e)) => {
                line(false, "outbound", super::one_line(&e))?;
                None
            }
            None => None,
        };
        match client.map(|client| AnyProxy::from_settings(c.proxy(), &client)) {
            Some(Ok(proxy)) => match tiny_forge::Proxy::check(&proxy).await {
                Ok(detail) => line(true, "proxy", detail)?,
                Err(e) => line(false, "proxy", super::one_line(&e))?,
            },
            Some(Err(e)) => line(false, "proxy", e)?,
            None => line(false, "proxy", "not checked: no HTTP client (see above)".to_owned())?,
        }
    }
    let (stages, unreadable) = config.as_ref().map(stages).unwrap_or_default();
    for detail in unreadable {
        line(false, "stage", detail)?;
    }
    match ctx.state_path(config.as_ref()) {
        Ok(p) => match Ctx::open_store(&p) {
            Ok(_) => line(true, "state", p.display().to_string())?,
            Err(f) => line(false, "state", super::one_line(f.error.as_ref()))?,
        },
        Err(f) => line(false, "state", super::one_line(f.error.as_ref()))?,
    }
    match AnyEngine::connect().await {
        Ok(d) => {
            line(true, "docker", format!("engine {}", d.version().await.unwrap_or_default()))?;
            if let Some(c) = &config {
                let swarm = stages.iter().any(|s| matches!(s.engine, tiny_forge::config::Engine::Swarm(_)));
                if swarm {
                    match d.swarm_info().await {
                        Ok(i) if i.manager => {
                            line(true, "swarm", format!("manager; {} of {} nodes ready", i.ready, i.nodes))?;
                        }
                        Ok(i) => line(
                            false,
                            "swarm",
                            format!(
                                "this engine is not a swarm manager (swarm state: {}); run `docker swarm init` here or set DOCKER_HOST to a manager",
                                if i.state.is_empty() { "unknown" } else { &i.state }
                            ),
                        )?,
                        Err(e) => line(false, "swarm", super::one_line(&e))?,
                    }
                }
                let ensured =
                    if swarm { d.ensure_overlay(c.network()).await } else { d.ensure_network(c.network()).await };
                match ensured {
                    Ok(created) => {
                        let kind = if swarm { ", overlay, attachable" } else { "" };
                        let created = if created { ", created" } else { "" };
                        line(true, "network", format!("{}{}{}", c.network(), kind, created))?;
                    }
                    Err(e) => line(false, "network", super::one_line(&e))?,
                }
                for (ok, detail) in registries(&d, &stages).await {
                    line(ok, "registry", detail)?;
                }
            }
        }
        Err(e) => line(false, "docker", super::one_line(&e))?,
    }
    Ok(if failed { exit::USAGE } else { exit::OK })
}

/// Every stage resolved as a deploy resolves it (env files and registry secrets read), and one
/// line for each stage where that fails.
fn stages(config: &Config) -> (Vec<ResolvedStage>, Vec<String>) {
    let mut resolved = Vec::new();
    let mut unreadable = Vec::new();
    for (p, s) in config.stages() {
        let (Ok(project), Ok(stage)) = (ProjectName::new(&p), StageName::new(&s)) else { continue };
        match config.resolve(&project, &stage) {
            Ok(r) => resolved.push(r),
            Err(e) => unreadable.push(format!("{p}/{s}: {}", super::one_line(&e))),
        }
    }
    (resolved, unreadable)
}

/// Each project's default image, asked of its registry with the credentials a deploy would use.
async fn registries(docker: &AnyEngine, stages: &[ResolvedStage]) -> Vec<(bool, String)> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for s in stages {
        let image = s.image_ref(&s.default_tag);
        if !seen.insert(image.clone()) {
            continue;
        }
        let auth = match auth::for_image(s.image.as_str(), s.registry_auth.as_ref(), auth::HELPER_TIMEOUT).await {
            Ok(a) => a,
            Err(e) => {
                out.push((false, format!("{image}: {e}")));
                continue;
            }
        };
        let source = auth
            .as_ref()
            .map_or_else(|| "no credentials".to_owned(), |(src, a)| format!("as {} from {src}", a.username));
        match docker.resolve_digest(&image, auth.as_ref().map(|(_, a)| a)).await {
            Ok(digest) => out.push((true, format!("{image} ({source}): {digest}"))),
            Err(e) => out.push((false, format!("{} ({source})", super::one_line(&e)))),
        }
    }
    out
}

/// The config's path, stage count and revision (what `serve`'s /healthz names when it runs
/// this file).
fn config_line(c: &Config) -> String {
    let revision =
        std::fs::read(c.path()).map_or_else(|_| "unknown".to_owned(), |b| tiny_forge::server::live::revision(&b));
    format!("{} ({} stages, revision {revision})", c.path().display(), c.stages().len())
}
