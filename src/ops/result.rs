//! What a command came to, as one typed value: [`CommandResult`] is the `result` object of
//! `--output json` (docs/output.md), the job result of the server's API and the last event of its
//! stream, so that a local run, a remote one and a script read the same thing. [`ExitCode`] is
//! the exit-code table; [`CommandResult::exit_code`] decides it in one place.

use serde::{Deserialize, Serialize};

use crate::deploy::{DeployError, DeployOutcome, RemoveReport, RollbackError};
use crate::domain::{DeployStatus, Leftover};
use crate::fmt::one_line;
use crate::lock::LockError;
use crate::store::DeployRecord;

/// The exit codes (README, "Exit codes"), one per kind of end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "u8", try_from = "u8")]
pub enum ExitCode {
    /// Deployed, or the command did what it was asked.
    Ok,
    /// The deploy failed and was rolled back completely.
    Failed,
    /// Usage or config error; nothing was touched.
    Usage,
    /// Something could not be undone or cleaned up: listed, recorded, and `prune` finishes it.
    Incomplete,
    /// The stage's lock is held by another run.
    Busy,
    /// `--remote`: the server took the work, and how it ended could not be learned in time.
    OutcomeUnknown,
    /// Interrupted by a signal, and rolled back.
    Interrupted,
}

impl ExitCode {
    /// The process's exit code.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Failed => 1,
            Self::Usage => 2,
            Self::Incomplete => 3,
            Self::Busy => 4,
            Self::OutcomeUnknown => 5,
            Self::Interrupted => 130,
        }
    }

    /// The exit code a finished deploy had, from its record (`history show --follow`, a result
    /// known only from the state file); `None` while it runs.
    #[must_use]
    pub fn of_record(d: &DeployRecord) -> Option<Self> {
        match d.status {
            DeployStatus::Running => None,
            // A live deploy that left something behind exits 3 too.
            DeployStatus::Succeeded | DeployStatus::Failed | DeployStatus::Interrupted if !d.leftovers.is_empty() => {
                Some(Self::Incomplete)
            }
            DeployStatus::Succeeded | DeployStatus::RolledBack => Some(Self::Ok),
            DeployStatus::Interrupted => Some(Self::Interrupted),
            DeployStatus::Failed => Some(Self::Failed),
        }
    }
}

impl From<ExitCode> for u8 {
    fn from(c: ExitCode) -> Self {
        c.code()
    }
}

impl TryFrom<u8> for ExitCode {
    type Error = String;

    fn try_from(c: u8) -> Result<Self, String> {
        Ok(match c {
            0 => Self::Ok,
            1 => Self::Failed,
            2 => Self::Usage,
            3 => Self::Incomplete,
            4 => Self::Busy,
            5 => Self::OutcomeUnknown,
            130 => Self::Interrupted,
            other => return Err(format!("{other} is not one of tiny-forge's exit codes")),
        })
    }
}

/// A deploy or rollback that went live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployed {
    /// The deploy (`tiny-forge history show <id>`).
    pub deploy_id: i64,
    /// Where it serves.
    pub url: Option<String>,
    /// What runs.
    pub digest: Option<String>,
    /// Its instance (container or service), when known.
    #[serde(default)]
    pub container: Option<String>,
    /// Wall time.
    pub duration_ms: Option<u64>,
    /// Problems after it was serving (an old instance that would not go).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// What retire could not take away (then the exit code is 3).
    #[serde(default)]
    pub leftovers: Vec<Leftover>,
    /// It already ran this digest with these settings: nothing was deployed.
    #[serde(default)]
    pub unchanged: bool,
    /// Always null for a success (kept for the documented shape).
    #[serde(default)]
    pub error: Option<String>,
}

/// A deploy or rollback that failed (or was interrupted) and was rolled back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotDeployed {
    /// The deploy.
    pub deploy_id: i64,
    /// Always null (kept for the documented shape).
    #[serde(default)]
    pub url: Option<String>,
    /// The step that failed, when known.
    #[serde(default)]
    pub failed_step: Option<String>,
    /// Wall time.
    pub duration_ms: Option<u64>,
    /// Why, on one line.
    pub error: Option<String>,
    /// What the rollback could not take away (then the exit code is 3).
    #[serde(default)]
    pub leftovers: Vec<Leftover>,
}

/// What `remove` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Removed {
    /// `project/stage:tag`.
    pub slot: String,
    /// The history row (`None`: there was nothing to remove).
    pub deploy_id: Option<i64>,
    /// One line per thing taken down.
    #[serde(default)]
    pub removed: Vec<String>,
    /// What could not be taken down (`prune` finishes it).
    #[serde(default)]
    pub leftovers: Vec<Leftover>,
}

/// A push the server released and then did not deploy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// `project/stage:tag`.
    pub slot: String,
    /// The digest the tag points at now.
    pub digest: String,
    /// `stale` (the notification named another digest) or `removed` (the slot was taken down
    /// on purpose while it ran this digest).
    pub reason: String,
    /// Why, on one line.
    pub error: String,
}

/// What a deploy, rollback or removal came to: the documented `result` object, tagged by
/// `status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum CommandResult {
    /// Live (exit 0, or 3 when retire left something).
    Succeeded(Deployed),
    /// Failed and rolled back (exit 1, or 3 when the rollback left something).
    Failed(NotDeployed),
    /// Stopped by a signal and rolled back (exit 130, or 3).
    Interrupted(NotDeployed),
    /// The slot was taken down (exit 0).
    Removed(Removed),
    /// The slot was taken down but something stays (exit 3).
    Incomplete(Removed),
    /// A push that deploys nothing (exit 0): its notification was only a hint.
    Skipped(Skipped),
}

impl CommandResult {
    /// The exit code this result means: decided here, once, for the CLI, the server and
    /// `history`.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::Succeeded(d) if d.leftovers.is_empty() => ExitCode::Ok,
            Self::Failed(f) if f.leftovers.is_empty() => ExitCode::Failed,
            Self::Interrupted(f) if f.leftovers.is_empty() => ExitCode::Interrupted,
            Self::Removed(_) | Self::Skipped(_) => ExitCode::Ok,
            Self::Succeeded(_) | Self::Failed(_) | Self::Interrupted(_) | Self::Incomplete(_) => ExitCode::Incomplete,
        }
    }

    /// The deploy (or removal) history row.
    #[must_use]
    pub fn deploy_id(&self) -> Option<i64> {
        match self {
            Self::Succeeded(d) => Some(d.deploy_id),
            Self::Failed(f) | Self::Interrupted(f) => Some(f.deploy_id),
            Self::Removed(r) | Self::Incomplete(r) => r.deploy_id,
            Self::Skipped(_) => None,
        }
    }

    /// What was left behind.
    #[must_use]
    pub fn leftovers(&self) -> &[Leftover] {
        match self {
            Self::Succeeded(d) => &d.leftovers,
            Self::Failed(f) | Self::Interrupted(f) => &f.leftovers,
            Self::Removed(r) | Self::Incomplete(r) => &r.leftovers,
            Self::Skipped(_) => &[],
        }
    }

    /// One word for metrics and logs: `succeeded`, `failed`, `interrupted`, `removed`,
    /// `incomplete`.
    #[must_use]
    pub fn word(&self) -> &'static str {
        match self {
            _ if self.exit_code() == ExitCode::Incomplete => "incomplete",
            Self::Succeeded(d) if d.unchanged => "skipped",
            Self::Skipped(_) => "skipped",
            Self::Succeeded(_) => "succeeded",
            Self::Failed(_) => "failed",
            Self::Interrupted(_) => "interrupted",
            Self::Removed(_) | Self::Incomplete(_) => "removed",
        }
    }

    /// The result of a deploy that ran here.
    #[must_use]
    pub fn of_deploy(outcome: &DeployOutcome) -> Self {
        match outcome {
            DeployOutcome::Succeeded(s) => Self::Succeeded(Deployed {
                deploy_id: s.deploy_id.0,
                url: Some(s.url.clone()),
                digest: Some(s.digest.clone()),
                container: Some(s.container.clone()),
                duration_ms: Some(ms(s.elapsed)),
                warnings: s.warnings.clone(),
                leftovers: s.leftovers.clone(),
                unchanged: s.unchanged,
                error: None,
            }),
            DeployOutcome::Failed(f) => {
                let n = NotDeployed {
                    deploy_id: f.deploy_id.0,
                    url: None,
                    failed_step: Some(f.failed.step.as_str().to_owned()),
                    duration_ms: Some(ms(f.elapsed)),
                    error: Some(one_line(&f.failed)),
                    leftovers: f.rollback.leftovers.clone(),
                };
                if f.interrupted { Self::Interrupted(n) } else { Self::Failed(n) }
            }
        }
    }

    /// The result of a removal of `slot` (`project/stage:tag`).
    #[must_use]
    pub fn of_removal(slot: &str, report: &RemoveReport) -> Self {
        let r = Removed {
            slot: slot.to_owned(),
            deploy_id: report.deploy_id.map(|d| d.0),
            removed: report.removed.clone(),
            leftovers: report.leftovers.clone(),
        };
        if report.leftovers.is_empty() { Self::Removed(r) } else { Self::Incomplete(r) }
    }

    /// The result of a finished deploy known only from its record (run by another process, or
    /// before a server restarted): its leftovers are the lines it recorded, `failed_step` and
    /// `warnings` are unknown. `None` while it runs.
    #[must_use]
    pub fn of_record(d: &DeployRecord) -> Option<Self> {
        let duration_ms = d.finished_at.map(|f| u64::try_from(f - d.started_at).unwrap_or(0));
        let leftovers: Vec<Leftover> = d.leftovers.iter().map(|l| Leftover::Recorded { text: l.clone() }).collect();
        let failed = || NotDeployed {
            deploy_id: d.id.0,
            url: None,
            failed_step: None,
            duration_ms,
            error: d.error.clone(),
            leftovers: leftovers.clone(),
        };
        Some(match d.status {
            DeployStatus::Running => return None,
            DeployStatus::Succeeded | DeployStatus::RolledBack => Self::Succeeded(Deployed {
                deploy_id: d.id.0,
                url: d.url.clone(),
                digest: d.digest.clone(),
                container: None,
                duration_ms,
                warnings: Vec::new(),
                leftovers: leftovers.clone(),
                unchanged: false,
                error: None,
            }),
            DeployStatus::Interrupted => Self::Interrupted(failed()),
            DeployStatus::Failed => Self::Failed(failed()),
        })
    }
}

/// The `result` line as `--output json` prints it last and the API sends it: the result with
/// `"type": "result"` and its `exit_code`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultLine {
    /// Always `result`.
    #[serde(rename = "type")]
    pub kind: ResultTag,
    /// The exit code the result means.
    pub exit_code: ExitCode,
    /// The result.
    #[serde(flatten)]
    pub result: CommandResult,
}

/// The `type` of a [`ResultLine`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResultTag {
    /// `result`.
    Result,
}

impl From<CommandResult> for ResultLine {
    fn from(result: CommandResult) -> Self {
        Self { kind: ResultTag::Result, exit_code: result.exit_code(), result }
    }
}

/// Why a command did not begin (nothing was touched, or only its lock was waited for): the
/// lock is busy, the state file cannot be used, a signal came while it waited, or there is
/// nothing to roll back to.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// The deploy or removal could not begin.
    #[error(transparent)]
    NotBegun(#[from] DeployError),
    /// A rollback has nothing (or nothing fitting) to return to.
    #[error(transparent)]
    Rollback(#[from] RollbackError),
}

impl CommandError {
    /// The exit code: 4 for a busy lock, 130 for a signal, 2 for the rest.
    #[must_use]
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Self::NotBegun(DeployError::Lock(LockError::Busy { .. })) => ExitCode::Busy,
            Self::NotBegun(DeployError::Interrupted) => ExitCode::Interrupted,
            Self::NotBegun(DeployError::Lock(LockError::Io { .. }) | DeployError::Store(_)) | Self::Rollback(_) => {
                ExitCode::Usage
            }
        }
    }
}

/// Milliseconds, saturating.
fn ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::LeftoverCause;

    fn deployed(leftovers: Vec<Leftover>) -> CommandResult {
        CommandResult::Succeeded(Deployed {
            deploy_id: 7,
            url: Some("http://x".into()),
            digest: Some("sha256:ab".into()),
            container: Some("tf-shop-dev-main-7".into()),
            duration_ms: Some(1200),
            warnings: Vec::new(),
            leftovers,
            unchanged: false,
            error: None,
        })
    }

    #[test]
    fn the_result_line_is_the_documented_object_and_reads_back() {
        let line = ResultLine::from(deployed(Vec::new()));
        let v = serde_json::to_value(&line).unwrap();
        assert_eq!(v["type"], "result");
        assert_eq!(v["status"], "succeeded");
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["deploy_id"], 7);
        assert_eq!(v["url"], "http://x");
        assert_eq!(v["error"], serde_json::Value::Null);
        let back: ResultLine = serde_json::from_value(v).unwrap();
        assert_eq!(back, line);
    }

    #[test]
    fn leftovers_make_any_result_exit_3() {
        let left = Leftover::Container { name: "c".into(), cause: LeftoverCause::Abandoned };
        assert_eq!(deployed(Vec::new()).exit_code(), ExitCode::Ok);
        assert_eq!(deployed(vec![left.clone()]).exit_code(), ExitCode::Incomplete);
        let failed = NotDeployed {
            deploy_id: 1,
            url: None,
            failed_step: Some("health".into()),
            duration_ms: None,
            error: Some("x".into()),
            leftovers: Vec::new(),
        };
        assert_eq!(CommandResult::Failed(failed.clone()).exit_code(), ExitCode::Failed);
        assert_eq!(CommandResult::Interrupted(failed.clone()).exit_code(), ExitCode::Interrupted);
        let stuck = NotDeployed { leftovers: vec![left], ..failed };
        assert_eq!(CommandResult::Interrupted(stuck).exit_code(), ExitCode::Incomplete);
        for code in [0u8, 1, 2, 3, 4, 5, 130] {
            assert_eq!(ExitCode::try_from(code).unwrap().code(), code);
        }
    }
}
