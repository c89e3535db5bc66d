//! Command-line arguments. Doc comments are the help text; nothing here reaches the library.

#![allow(clippy::doc_markdown, reason = "doc comments here are help text, shown verbatim")]

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Turn one Docker image tag into a running, proxied, health-checked staging instance.
///
/// Exit codes: 0 deployed (or command succeeded); 1 deploy failed and was rolled back
/// completely; 2 usage or config error, nothing touched; 3 rollback incomplete (the leftovers
/// are listed; "tiny-forge prune" finishes the job); 4 lock busy (with --no-wait or --wait);
/// 5 --remote only: the server took the work but its outcome could not be learned (see
/// "tiny-forge --remote … history"); 130 interrupted, rolled back.
#[derive(Debug, Parser)]
#[command(name = "tiny-forge", version = env!("TF_VERSION"), about, long_about, max_term_width = 100)]
pub(crate) struct Cli {
    /// Config file [default: $TINY_FORGE_CONFIG, ./tiny-forge.toml, $XDG_CONFIG_HOME/tiny-forge/config.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) config: Option<PathBuf>,

    /// State file [default: settings.state, else $XDG_STATE_HOME/tiny-forge/state.db]
    #[arg(long, global = true, value_name = "PATH")]
    pub(crate) state: Option<PathBuf>,

    /// How progress and results are shown
    #[arg(long, global = true, value_enum, default_value_t = Output::Auto)]
    pub(crate) output: Output,

    /// Print only results and errors
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub(crate) quiet: bool,

    /// Show every log entry (spinners are replaced by plain lines)
    #[arg(short, long, global = true)]
    pub(crate) verbose: bool,

    /// Run deploy, rollback, remove, list and history against a `tiny-forge serve` at this URL
    /// (with the token in $TINY_FORGE_TOKEN)
    #[arg(long, global = true, value_name = "URL", env = "TINY_FORGE_REMOTE")]
    pub(crate) remote: Option<String>,

    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Output mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// tty on a terminal, plain otherwise
    Auto,
    /// Spinners, one per step, with elapsed time
    Tty,
    /// One timestamped line per event (CI logs)
    Plain,
    /// One JSON object per line, then a result object
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Deploy a tag of a project's stage: pull, create, start, health-check, publish
    ///
    /// Without a tag, deploys the stage's default tag (its URL uses settings.subdomain).
    ///
    /// Example: tiny-forge deploy shop dev pr-42
    Deploy(DeployArgs),

    /// Deploy a slot's previous successful image again (by digest), health-gated like a deploy
    ///
    /// Without --to, returns to the newest earlier successful deploy of the slot that ran
    /// another image.
    ///
    /// Example: tiny-forge rollback shop dev --to 41
    Rollback(RollbackArgs),

    /// Take one instance down on purpose: proxy host, container, record (e.g. a merged branch)
    ///
    /// Removing a slot that has no instance is not an error.
    ///
    /// Example: tiny-forge remove shop dev pr-42
    Remove(RemoveArgs),

    /// Repair and clean up: proxy hosts, orphans, interrupted deploys, TTLs, max_instances,
    /// unused images, old history
    ///
    /// Reads what Docker, the proxy and the state file hold now and acts on the difference:
    /// points every live instance's host at its container, rolls back deploys whose process
    /// died, removes what incomplete undos left, instances whose container is gone, tag
    /// instances older than --older-than (or the project's ttl), instances beyond max_instances,
    /// containers and marked proxy hosts that no instance owns, and images of configured
    /// repositories that no container uses (keeping each live slot's last keep_images digests).
    /// Never touches what lacks this state file's label or mark. Running it twice in a row does
    /// nothing the second time. Exit 3 when something is still left.
    ///
    /// Example (cron): 0 * * * * tiny-forge prune --older-than 7d
    Prune(PruneArgs),

    /// Print an instance's own output: stdout to stdout, stderr to stderr
    ///
    /// Without a tag, the stage's default tag. --follow ends when the instance is replaced or
    /// removed.
    ///
    /// Example: tiny-forge logs shop dev pr-42 --since 10m --follow
    Logs(LogsArgs),

    /// List instances, cross-checked with Docker
    ///
    /// Example: tiny-forge list shop
    List {
        /// Only this project
        project: Option<String>,
        /// Only this stage
        stage: Option<String>,
        /// Probe each running instance's health path now (HEALTH column)
        #[arg(long)]
        probe: bool,
    },

    /// Show past deploys, newest first; "history show <id>" for one deploy's log
    ///
    /// Example: tiny-forge history shop dev --limit 5
    #[command(args_conflicts_with_subcommands = true)]
    History(HistoryArgs),

    /// Check what a deploy needs: config, proxy login, state file, Docker, network, and each
    /// project's image in its registry with its credentials
    ///
    /// One line per check; exits 2 if any fails, with what to fix.
    ///
    /// Example: tiny-forge --config /etc/tiny-forge.toml check
    Check,

    /// Run the deploy server: HTTP API with live events, registry webhooks, poller
    ///
    /// Listens on --listen, else [server] listen (127.0.0.1:8420). Uses the same config, state
    /// file and stage locks as the CLI. SIGTERM stops accepting, gives running deploys
    /// [server] grace to finish, then rolls back what still runs.
    ///
    /// Example: tiny-forge serve --listen 127.0.0.1:8420
    Serve {
        /// Address and port to listen on
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },

    /// Manage API tokens for `tiny-forge serve` (in the state file, on the server's host)
    #[command(subcommand)]
    Token(TokenCommand),

    /// Print a shell completion script
    ///
    /// Example: tiny-forge completions bash > /etc/bash_completion.d/tiny-forge
    Completions {
        /// The shell
        shell: clap_complete::Shell,
    },

    /// Print the man page (roff); committed as man/tiny-forge.1
    #[command(hide = true)]
    Manpage,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Make a token; it is printed once, and only its hash is kept
    ///
    /// Example: tiny-forge token create --name ci-shop --project shop --stage dev --can deploy,read
    Create {
        /// A unique name, recorded as the actor of every deploy the token starts
        #[arg(long)]
        name: String,
        /// Only these projects (repeatable) [default: any]
        #[arg(long = "project", value_name = "PROJECT")]
        projects: Vec<String>,
        /// Only these stages (repeatable) [default: any]
        #[arg(long = "stage", value_name = "STAGE")]
        stages: Vec<String>,
        /// What it may do (deploy, rollback and remove need read too)
        #[arg(long, value_delimiter = ',', default_value = "deploy,rollback,remove,read", value_parser = ["deploy", "rollback", "remove", "read"])]
        can: Vec<String>,
    },
    /// List tokens (never the tokens themselves)
    List,
    /// Revoke a token by name; requests with it fail from now on
    Revoke {
        /// Its name
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// Project, as in [projects.NAME]
    pub(crate) project: String,
    /// Stage, as in [projects.PROJECT.stages.NAME]
    pub(crate) stage: String,
    /// Image tag [default: the stage's default_tag]
    pub(crate) tag: Option<String>,
    /// Show the plan and touch nothing: the digest the tag resolves to now, whether it already
    /// runs, the host name, what it replaces, what max_instances would evict
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Redeploy even when the slot already runs this digest with the same settings
    #[arg(long)]
    pub(crate) force: bool,
    /// Skip the verify step: retire the previous instance as soon as the new one serves
    #[arg(long)]
    pub(crate) no_verify: bool,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// Project
    pub(crate) project: String,
    /// Stage
    pub(crate) stage: String,
    /// Tag of the slot [default: the stage's default_tag]
    pub(crate) tag: Option<String>,
    /// Return to this deploy's image (an id from `tiny-forge history`)
    #[arg(long, value_name = "DEPLOY_ID")]
    pub(crate) to: Option<i64>,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RemoveArgs {
    /// Project
    pub(crate) project: String,
    /// Stage
    pub(crate) stage: String,
    /// Tag of the instance to remove
    pub(crate) tag: String,
    #[command(flatten)]
    pub(crate) wait: WaitArgs,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Remove tag instances older than this (e.g. 7d) [default: each project's ttl]
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) older_than: Option<Duration>,
    /// Let age-based removal reach the default tag's slot too
    #[arg(long)]
    pub(crate) include_default: bool,
    /// Print exactly what would be done, and do nothing
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Project
    pub(crate) project: String,
    /// Stage
    pub(crate) stage: String,
    /// Tag of the slot [default: the stage's default_tag]
    pub(crate) tag: Option<String>,
    /// Keep printing new lines until the instance is replaced or removed
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Only lines from the last DURATION (e.g. 10m)
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) since: Option<Duration>,
    /// Only the last N lines
    #[arg(long, value_name = "N")]
    pub(crate) tail: Option<usize>,
}

#[derive(Debug, Clone, Args)]
pub(crate) struct WaitArgs {
    /// Exit 4 at once if another run holds this stage's lock
    #[arg(long, conflicts_with = "wait")]
    pub(crate) no_wait: bool,
    /// Wait at most this long for the lock (e.g. 5m), then exit 4
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub(crate) wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub(crate) struct HistoryArgs {
    /// Only this project
    pub(crate) project: Option<String>,
    /// Only this stage
    pub(crate) stage: Option<String>,
    /// How many deploys
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    #[command(subcommand)]
    pub(crate) show: Option<HistoryCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum HistoryCommand {
    /// One deploy with all its log entries
    ///
    /// Example: tiny-forge history show 42 --follow
    Show {
        /// Deploy id
        id: i64,
        /// Keep printing entries until the deploy ends; exit with its exit code
        #[arg(long)]
        follow: bool,
    },
}
