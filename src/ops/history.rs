//! What `history --output json` and `history show --output json` print, typed: a deploy's
//! record with its times in RFC 3339, its duration and the exit code it meant, and its log lines.
//! Fields are in key order, so that output diffs cleanly from one run to the next.

use serde::{Deserialize, Serialize};

use crate::domain::{DeployStatus, Trigger};
use crate::fmt::rfc3339;
use crate::report::Level;
use crate::store::{DeployRecord, LogEntry};

use super::ExitCode;

/// One deploy of `history --output json` (and, with its `logs`, `history show`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployLine {
    /// Who asked for it.
    pub actor: Option<String>,
    /// The digest pulled, once known.
    pub digest: Option<String>,
    /// From start to end, once it ended.
    pub duration_ms: Option<i64>,
    /// Why it failed.
    pub error: Option<String>,
    /// The exit code it meant, once it ended.
    pub exit_code: Option<u8>,
    /// When it ended (RFC 3339).
    pub finished_at: Option<String>,
    /// The deploy id.
    pub id: i64,
    /// The image reference asked for.
    pub image: String,
    /// What its undo could not remove.
    pub leftovers: Vec<String>,
    /// Its log (`history show` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logs: Option<Vec<LogLine>>,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// When it began (RFC 3339).
    pub started_at: String,
    /// Where it stands.
    pub status: DeployStatus,
    /// Tag.
    pub tag: String,
    /// What started it.
    pub trigger: Trigger,
    /// The URL it serves at (succeeded deploys).
    pub url: Option<String>,
}

impl DeployLine {
    /// The line for `d`, without its log.
    #[must_use]
    pub fn of(d: &DeployRecord) -> Self {
        Self {
            actor: d.actor.clone(),
            digest: d.digest.clone(),
            duration_ms: d.finished_at.map(|f| f - d.started_at),
            error: d.error.clone(),
            exit_code: ExitCode::of_record(d).map(ExitCode::code),
            finished_at: d.finished_at.map(rfc3339),
            id: d.id.0,
            image: d.image.clone(),
            leftovers: d.leftovers.clone(),
            logs: None,
            project: d.project.clone(),
            stage: d.stage.clone(),
            started_at: rfc3339(d.started_at),
            status: d.status,
            tag: d.tag.clone(),
            trigger: d.trigger,
            url: d.url.clone(),
        }
    }

    /// The line for `d` with its log.
    #[must_use]
    pub fn with_logs(d: &DeployRecord, logs: &[LogEntry]) -> Self {
        Self { logs: Some(logs.iter().map(LogLine::of).collect()), ..Self::of(d) }
    }
}

/// One log line of a deploy: inside [`DeployLine::logs`], or alone (with `type: "log"`) when
/// `history show` streams them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    /// Severity.
    pub level: Level,
    /// What happened.
    pub message: String,
    /// The pipeline step.
    pub step: String,
    /// When (RFC 3339).
    pub ts: String,
    /// `log` when the line stands alone.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<LogTag>,
}

impl LogLine {
    /// The line for `l`, inside a deploy.
    #[must_use]
    pub fn of(l: &LogEntry) -> Self {
        Self { level: l.level, message: l.message.clone(), step: l.step.clone(), ts: rfc3339(l.ts), kind: None }
    }

    /// The line for `l`, standing alone.
    #[must_use]
    pub fn alone(l: &LogEntry) -> Self {
        Self { kind: Some(LogTag::Log), ..Self::of(l) }
    }
}

/// The `type` of a [`LogLine`] that stands alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogTag {
    /// `log`.
    Log,
}

/// The last line `history show --follow --output json` prints: the deploy as it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployEndLine {
    /// The deploy.
    pub deploy: DeployLine,
    /// Always `result`.
    #[serde(rename = "type")]
    pub kind: super::ResultTag,
}

impl DeployEndLine {
    /// The end line for `d`.
    #[must_use]
    pub fn of(d: &DeployRecord) -> Self {
        Self { deploy: DeployLine::of(d), kind: super::ResultTag::Result }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DeployId;

    fn record() -> DeployRecord {
        DeployRecord {
            id: DeployId(7),
            project: "shop".into(),
            stage: "dev".into(),
            tag: "v1".into(),
            image: "r/shop:v1".into(),
            digest: Some("sha256:abc".into()),
            status: DeployStatus::Succeeded,
            pid: 1,
            host: "h".into(),
            started_at: 1_000,
            finished_at: Some(2_500),
            error: None,
            trigger: Trigger::Webhook,
            url: Some("http://x".into()),
            leftovers: Vec::new(),
            actor: None,
        }
    }

    #[test]
    fn a_deploy_line_prints_its_keys_in_order_with_times_in_rfc3339() {
        let text = serde_json::to_string(&DeployLine::of(&record())).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v.to_string(), text, "keys in sorted order, as serde_json's own map prints them");
        assert_eq!(v["duration_ms"], 1_500);
        assert_eq!(v["exit_code"], 0);
        assert_eq!(v["status"], "succeeded");
        assert_eq!(v["trigger"], "webhook");
        assert_eq!(v["started_at"], "1970-01-01T00:00:01.000Z");
        assert!(v.get("logs").is_none(), "no logs key without logs");
    }

    #[test]
    fn a_log_line_alone_says_it_is_a_log_and_keeps_key_order() {
        let l = LogEntry { ts: 0, level: Level::Warn, step: "health".into(), message: "m".into() };
        let text = serde_json::to_string(&LogLine::alone(&l)).unwrap();
        assert_eq!(
            text,
            r#"{"level":"warn","message":"m","step":"health","ts":"1970-01-01T00:00:00.000Z","type":"log"}"#
        );
        let with = serde_json::to_string(&DeployLine::with_logs(&record(), &[l])).unwrap();
        let v: serde_json::Value = serde_json::from_str(&with).unwrap();
        assert_eq!(v.to_string(), with);
        assert!(v["logs"][0].get("type").is_none());
        let end = serde_json::to_string(&DeployEndLine::of(&record())).unwrap();
        assert!(end.starts_with(r#"{"deploy":{"#) && end.ends_with(r#","type":"result"}"#), "{end}");
    }
}
