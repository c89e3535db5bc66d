//! The exit codes as the binary returns them: the library's [`ExitCode`] table, as numbers.

use tiny_forge::ops::ExitCode;

/// Deployed, or the command did what it was asked.
pub(crate) const OK: u8 = ExitCode::Ok.code();
/// Usage or config error; nothing was touched.
pub(crate) const USAGE: u8 = ExitCode::Usage.code();
/// Something was left behind; `prune` finishes the job.
pub(crate) const INCOMPLETE: u8 = ExitCode::Incomplete.code();
/// `--remote`: the server took the work, then could not be asked how it ended within the
/// retry budget (a restart that took too long, a server gone). `history` tells, later.
pub(crate) const OUTCOME_UNKNOWN: u8 = ExitCode::OutcomeUnknown.code();

/// The exit code a finished deploy had (for `history show --follow`); `None` while it runs.
pub(crate) fn for_record(d: &tiny_forge::store::DeployRecord) -> Option<u8> {
    ExitCode::of_record(d).map(ExitCode::code)
}
