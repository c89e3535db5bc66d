//! The small "deployer" interface that `deploy`, `rollback`, `remove`, `list` and `history`
//! run against: an [`Order`] in, a [`CommandResult`] out. Implemented by the local backend and
//! by the remote one.

use tiny_forge::ops::CommandResult;
use tiny_forge::ops::list::ListItem;
use tiny_forge::report::Reporter;
use tiny_forge::store::DeployRecord;

use super::Failure;
use super::args::WaitArgs;

/// What the user asked to do to a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderKind {
    /// `deploy`, with `--force` and `--no-verify`.
    Deploy { force: bool, no_verify: bool },
    /// `rollback`, with `--to`.
    Rollback { to: Option<i64> },
    /// `remove`.
    Remove,
}

/// A deploy, rollback or removal as the user asked for it, names not yet checked.
#[derive(Debug, Clone)]
pub(crate) struct Order {
    pub(crate) project: String,
    pub(crate) stage: String,
    pub(crate) tag: Option<String>,
    pub(crate) kind: OrderKind,
    pub(crate) wait: WaitArgs,
}

/// What the commands need from a deployer.
pub(crate) trait Deploys {
    /// Runs `order`; events go to `reporter`. Returns the result, whose exit code is the
    /// process's.
    async fn run(&self, order: &Order, reporter: &dyn Reporter) -> Result<CommandResult, Failure>;
    /// `list`'s items.
    async fn instances(
        &self,
        project: Option<String>,
        stage: Option<String>,
        probe: bool,
    ) -> Result<Vec<ListItem>, Failure>;
    /// `history`'s rows, newest first.
    async fn history(
        &self,
        project: Option<String>,
        stage: Option<String>,
        limit: usize,
    ) -> Result<Vec<DeployRecord>, Failure>;
}
