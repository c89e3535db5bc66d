//! `tiny-forge token create|list|revoke`: API tokens for `serve`, kept in the state file on
//! the server's host (whoever may write the state file may mint tokens; nothing else may).
//!
//! The state file is the one `serve` uses: `--state`, else the config's `settings.state`. A
//! config that does not load is an error unless `--state` names the file, never a silent
//! fallback to another file (a token made there would be answered 401). Each command says on
//! stderr which state file it used.

use anyhow::anyhow;
use tiny_forge::domain::{ProjectName, StageName};
use tiny_forge::server::auth;
use tiny_forge::store::NewToken;

use super::args::TokenCommand;
use super::{Ctx, Failure, exit, out, out_json, render};

/// `--can` lists that make no sense: an action without `read`, which its CLI needs to follow
/// what it started (and to list and look at history).
fn check_actions(can: &[String]) -> Result<(), Failure> {
    let acts: Vec<&str> = can.iter().map(String::as_str).filter(|a| *a != "read").collect();
    if !acts.is_empty() && !can.iter().any(|a| a == "read") {
        return Err(Failure::usage(anyhow!(
            "--can {}: add read (--can {},read): the CLI follows what the token starts and reads history with it",
            can.join(","),
            can.join(",")
        )));
    }
    Ok(())
}

pub(crate) fn run(ctx: &Ctx, cmd: TokenCommand) -> Result<u8, Failure> {
    if let TokenCommand::Create { can, .. } = &cmd {
        check_actions(can)?;
    }
    let path = if ctx.state.is_some() {
        ctx.state_path(None)?
    } else {
        let config = ctx.load_config().map_err(|f| Failure {
            code: f.code,
            error: f.error.context("tokens live in serve's state file: fix the config, or name the file with --state"),
        })?;
        ctx.state_path(Some(&config))?
    };
    if !ctx.quiet {
        eprintln!("state file: {}", path.display());
    }
    let store = Ctx::open_store(&path)?;
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
                out_json(&Created { can: &can, name: &name, projects: &projects, stages: &stages, token: &token })?;
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

/// What `token create --output json` prints (once: the token is not stored).
#[derive(serde::Serialize)]
struct Created<'a> {
    can: &'a [String],
    name: &'a str,
    projects: &'a [String],
    stages: &'a [String],
    token: &'a str,
}
