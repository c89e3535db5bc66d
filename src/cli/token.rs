//! `tiny-forge token create|list|revoke`: API tokens for `serve`, kept in the state file on
//! the server's host (whoever may write the state file may mint tokens; nothing else may).

use anyhow::anyhow;
use serde_json::json;
use tiny_forge::domain::{ProjectName, StageName};
use tiny_forge::server::auth;
use tiny_forge::store::NewToken;

use super::args::TokenCommand;
use super::{Ctx, Failure, exit, out, render};

pub(crate) fn run(ctx: &Ctx, cmd: TokenCommand) -> Result<u8, Failure> {
    let config = ctx.load_config().ok();
    let store = Ctx::open_store(&ctx.state_path(config.as_ref())?)?;
    match cmd {
        TokenCommand::Create { name, projects, stages, can } => {
            let name_ok = !name.is_empty()
                && name.len() <= 64
                && name.bytes().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(&c));
            if !name_ok {
                return Err(Failure::usage(anyhow!(
                    "token name `{name}`: use 1 to 64 letters, digits, `-`, `_` or `.`"
                )));
            }
            for p in &projects {
                ProjectName::new(p).map_err(Failure::usage)?;
            }
            for s in &stages {
                StageName::new(s).map_err(Failure::usage)?;
            }
            let token = auth::generate().map_err(Failure::usage)?;
            let hash = auth::hash(&token);
            let created = store
                .create_token(&NewToken {
                    name: &name,
                    hash: &hash,
                    projects: &projects,
                    stages: &stages,
                    actions: &can,
                })
                .map_err(Failure::usage)?;
            if !created {
                return Err(Failure::usage(anyhow!(
                    "a token named `{name}` exists; revoke it first or pick another name"
                )));
            }
            if ctx.json() {
                out(&json!({"name": name, "token": token, "projects": projects, "stages": stages, "can": can})
                    .to_string())?;
            } else {
                if !ctx.quiet {
                    eprintln!(
                        "token `{name}` created; it is shown once, store it now (e.g. as TINY_FORGE_TOKEN in CI):"
                    );
                }
                out(&token)?;
            }
            Ok(exit::OK)
        }
        TokenCommand::List => {
            let tokens = store.tokens().map_err(Failure::usage)?;
            if ctx.json() {
                out(&serde_json::to_string(&tokens).unwrap_or_default())?;
                return Ok(exit::OK);
            }
            let any = |v: &[String]| if v.is_empty() { "*".to_owned() } else { v.join(",") };
            for t in tokens {
                let state = match t.revoked_at {
                    Some(at) => format!("revoked {}", render::rfc3339(at)),
                    None => {
                        t.last_used_at.map_or_else(|| "never used".into(), |u| format!("used {}", render::rfc3339(u)))
                    }
                };
                out(&format!(
                    "{}  projects={}  stages={}  can={}  created {}  {state}",
                    t.name,
                    any(&t.projects),
                    any(&t.stages),
                    t.actions.join(","),
                    render::rfc3339(t.created_at)
                ))?;
            }
            Ok(exit::OK)
        }
        TokenCommand::Revoke { name } => {
            if store.revoke_token(&name).map_err(Failure::usage)? {
                if !ctx.quiet {
                    eprintln!("token `{name}` revoked");
                }
                Ok(exit::OK)
            } else {
                Err(Failure::usage(anyhow!("no live token named `{name}`; see `tiny-forge token list`")))
            }
        }
    }
}
