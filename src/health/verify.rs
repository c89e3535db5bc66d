//! The verify step's words: its policy (how long, how often, what counts as failing), one
//! request's answer through the proxy, and why an instance failed verification.
//!
//! The health gate asks the new instance directly, before any traffic moves; verify asks the
//! slot's public route (the proxy, with the slot's host name) after the cut-over, while the
//! previous instance still runs, and watches the new instance for an exit, a restart or an
//! OOM kill.

use std::net::SocketAddr;
use std::time::Duration;

/// How an instance is watched after the cut-over. Defaults: a 30 s window, `/` every second,
/// three failures in a row fail it. Off unless a project or stage sets `verify`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyPolicy {
    /// How long the instance is watched.
    pub window: Duration,
    /// The path requested through the proxy; any answer below 500 passes.
    pub path: String,
    /// Time between request starts; also the bound on one request.
    pub interval: Duration,
    /// Failed requests in a row that fail the step (≥ 1).
    pub failures: u32,
    /// Where the proxy listens (`ip:port`); `None`: wherever the host name resolves.
    pub connect: Option<SocketAddr>,
}

impl Default for VerifyPolicy {
    fn default() -> Self {
        Self {
            window: Duration::from_secs(30),
            path: "/".into(),
            interval: Duration::from_secs(1),
            failures: 3,
            connect: None,
        }
    }
}

/// One request through the proxy: the status, or what went wrong before one arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status, when one arrived.
    pub status: Option<u16>,
    /// `200 OK`, `502 Bad Gateway`, `connection refused`, `timed out after 1s`, …
    pub detail: String,
}

impl Answer {
    /// A 5xx, a connect error or a timeout.
    #[must_use]
    pub fn failed(&self) -> bool {
        self.status.is_none_or(|s| s >= 500)
    }
}

/// Why the new instance failed verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// `failures` requests in a row through the proxy failed.
    #[error(
        "{} requests in a row to {url} through the proxy failed ({}) after {}; the previous instance serves again",
        answers.len(),
        answers.join(", "),
        crate::fmt::millis(*after_ms)
    )]
    Failing {
        /// The URL requested (its host name is the slot's).
        url: String,
        /// The failing answers, oldest first.
        answers: Vec<String>,
        /// Time into the window of the last one.
        after_ms: u64,
    },
    /// The instance exited, was restarted or was killed for lack of memory.
    #[error("{what} after {}; the previous instance serves again; last log lines:{}", crate::fmt::millis(*after_ms), fmt_tail(.logs))]
    Crashed {
        /// `exited with code 3`, `was restarted (exit code 1)`, `was killed for lack of memory`.
        what: String,
        /// The exit code, when known.
        code: Option<i64>,
        /// The kernel killed it for lack of memory.
        oom_killed: bool,
        /// Its last log lines.
        logs: Vec<String>,
        /// Time into the window.
        after_ms: u64,
    },
}

impl VerifyError {
    /// The crashed instance's last log lines (empty otherwise). They may hold secrets: see
    /// [`super::HealthError::logs`].
    #[must_use]
    pub fn logs(&self) -> &[String] {
        match self {
            Self::Crashed { logs, .. } => logs,
            Self::Failing { .. } => &[],
        }
    }

    /// The message without the log lines, for what leaves the host (notifications).
    #[must_use]
    pub fn without_logs(&self) -> String {
        match self {
            Self::Crashed { what, after_ms, .. } => format!(
                "{what} after {}; the previous instance serves again; its last log lines are in the deploy's history",
                crate::fmt::millis(*after_ms)
            ),
            Self::Failing { .. } => self.to_string(),
        }
    }
}

fn fmt_tail(lines: &[String]) -> String {
    if lines.is_empty() { " (none)".into() } else { lines.iter().flat_map(|l| [" | ", l.as_str()]).collect() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_5xx_and_no_answer_fail() {
        let a = |status, detail: &str| Answer { status, detail: detail.into() };
        assert!(!a(Some(200), "200 OK").failed());
        assert!(!a(Some(404), "404 Not Found").failed(), "a 404 on / is the app's answer, not a crash");
        assert!(a(Some(500), "500").failed());
        assert!(a(Some(502), "502").failed());
        assert!(a(None, "connection refused").failed());
    }

    #[test]
    fn a_crash_leaves_the_host_without_its_log_lines() {
        let e = VerifyError::Crashed {
            what: "exited with code 3".into(),
            code: Some(3),
            oom_killed: false,
            logs: vec!["secret=hunter2".into()],
            after_ms: 3000,
        };
        assert!(e.to_string().contains("hunter2"));
        assert!(!e.without_logs().contains("hunter2"));
        assert!(e.without_logs().contains("exited with code 3"));
    }
}
