//! The binary's side: parse, build the adapters once, call the library, render, pick the exit
//! code. Errors are printed once, at the edge, on one line with their causes.

mod adapters;
pub(crate) mod args;
mod backend;
mod check;
pub(crate) mod deploy;
pub(crate) mod exit;
mod lifecycle;
mod logs;
mod order;
mod query;
mod remote;
mod render;
mod serve;
mod signals;
mod token;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use tiny_forge::config::{self, Config};
use tiny_forge::report::{NoReporter, Reporter};
use tiny_forge::store::SqliteStore;

use self::args::{Cli, Command, Output};

/// An error with the exit code it must end the process with.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) error: anyhow::Error,
}

impl Failure {
    /// Usage or config error: exit 2.
    pub(crate) fn usage(error: impl Into<anyhow::Error>) -> Self {
        Self { code: exit::USAGE, error: error.into() }
    }
}

pub(crate) use tiny_forge::fmt::one_line;

/// Global options every command may need.
pub(crate) struct Ctx {
    pub(crate) config: Option<PathBuf>,
    pub(crate) state: Option<PathBuf>,
    pub(crate) output: Output,
    pub(crate) quiet: bool,
    pub(crate) verbose: bool,
    /// `--remote` / `$TINY_FORGE_REMOTE`: run against a server.
    pub(crate) remote: Option<String>,
}

impl Ctx {
    pub(crate) fn load_config(&self) -> Result<Config, Failure> {
        let path = config::discover(self.config.as_deref()).map_err(Failure::usage)?;
        config::load(&path).map_err(Failure::usage)
    }

    /// `--state`, else `settings.state`, else `$XDG_STATE_HOME/tiny-forge/state.db`.
    pub(crate) fn state_path(&self, config: Option<&Config>) -> Result<PathBuf, Failure> {
        if let Some(p) = &self.state {
            return Ok(p.clone());
        }
        if let Some(p) = config.and_then(Config::state_path) {
            return Ok(p);
        }
        tiny_forge::env::state_home().map(|d| d.join("tiny-forge").join("state.db")).ok_or_else(|| {
            Failure::usage(anyhow::anyhow!("cannot place the state file: set XDG_STATE_HOME or HOME, or pass --state"))
        })
    }

    pub(crate) fn open_store(path: &Path) -> Result<SqliteStore, Failure> {
        SqliteStore::open(path).map_err(Failure::usage)
    }

    /// The state file if it exists; a missing one means "nothing yet", not an error.
    pub(crate) fn store_if_any(&self) -> Result<Option<SqliteStore>, Failure> {
        let config = self.load_config().ok();
        let path = self.state_path(config.as_ref())?;
        if !path.exists() {
            return Ok(None);
        }
        Self::open_store(&path).map(Some)
    }

    /// Does this run print JSON?
    pub(crate) fn json(&self) -> bool {
        self.output == Output::Json
    }

    /// The renderer for deploy events.
    pub(crate) fn reporter(&self) -> Box<dyn Reporter> {
        let colour = std::env::var_os(tiny_forge::env::NO_COLOR).is_none_or(|v| v.is_empty());
        match self.output {
            Output::Json => Box::new(render::Json),
            _ if self.quiet => Box::new(NoReporter),
            Output::Tty if !self.verbose => Box::new(render::Tty::new(colour)),
            Output::Auto if !self.verbose && std::io::stderr().is_terminal() => Box::new(render::Tty::new(colour)),
            _ if self.verbose => Box::new(render::Plain::verbose()),
            _ => Box::new(render::Plain::quiet()),
        }
    }
}

/// Runs the parsed command; returns the exit code.
pub(crate) async fn run(cli: Cli) -> Result<u8, Failure> {
    let remote = cli.remote.filter(|r| !r.is_empty());
    let ctx = Ctx {
        config: cli.config,
        state: cli.state,
        output: cli.output,
        quiet: cli.quiet,
        verbose: cli.verbose,
        remote,
    };
    match cli.command {
        Command::Deploy(a) => Box::pin(deploy::run(&ctx, a)).await,
        Command::Rollback(a) => Box::pin(deploy::rollback(&ctx, a)).await,
        Command::Remove(a) => Box::pin(lifecycle::remove(&ctx, a)).await,
        Command::Prune(a) => lifecycle::prune(&ctx, a).await,
        Command::Logs(a) => logs::run(&ctx, a).await,
        Command::List { project, stage, probe } => query::list(&ctx, project, stage, probe).await,
        Command::History(h) => query::history(&ctx, h).await,
        Command::Check => check::run(&ctx).await,
        Command::Serve { listen } => serve::run(&ctx, listen).await,
        Command::Token(t) => token::run(&ctx, t),
        Command::Manpage => {
            // Without the commit: the committed page must not change with every commit.
            let cmd = <Cli as clap::CommandFactory>::command().version(env!("CARGO_PKG_VERSION"));
            let mut out = Vec::new();
            clap_mangen::Man::new(cmd).render(&mut out).map_err(|e| Failure { code: exit::USAGE, error: e.into() })?;
            std::io::Write::write_all(&mut std::io::stdout(), &out)
                .map_err(|e| Failure { code: exit::OK, error: e.into() })?;
            Ok(exit::OK)
        }
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(shell, &mut cmd, "tiny-forge", &mut std::io::stdout());
            Ok(exit::OK)
        }
    }
}

/// `value` as one line of JSON on stdout, typed to the end (no `serde_json::Value` between).
pub(crate) fn out_json<T: serde::Serialize>(value: &T) -> Result<(), Failure> {
    let line = serde_json::to_string(value).context("write JSON").map_err(Failure::usage)?;
    out(&line)
}

/// Writes a line to stdout; a closed pipe is not an error worth a panic.
pub(crate) fn out(line: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    writeln!(o, "{line}").context("write to stdout").map_err(|error| Failure { code: exit::OK, error })
}
