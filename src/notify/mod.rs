//! Notifications: a deploy's end (success, failure, incomplete rollback) told to webhooks. A
//! notification never blocks or fails a deploy: a [`Notifier`] returns warnings, which the
//! deployer writes into the deploy's log, and nothing else.

mod webhook;

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;
pub use webhook::{SIGNATURE_HEADER, WebhookNotifier, WebhookTarget, sign};

/// Payload shape of a notification (`format = "json" | "slack" | "discord"`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NotifyFormat {
    /// tiny-forge's own JSON (default).
    #[default]
    Json,
    /// Slack incoming webhook.
    Slack,
    /// Discord webhook.
    Discord,
}

/// What happened, as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum NotifyEvent {
    /// The deploy serves.
    #[serde(rename = "deploy.succeeded")]
    Succeeded,
    /// The deploy failed and was rolled back completely.
    #[serde(rename = "deploy.failed")]
    Failed,
    /// The deploy failed and its rollback left something behind.
    #[serde(rename = "deploy.rollback_incomplete")]
    RollbackIncomplete,
}

/// The JSON body of a notification (`format = "json"`): a public contract, documented in
/// `docs/notifications.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notification {
    /// What happened.
    pub event: NotifyEvent,
    /// Deploy id.
    pub deploy_id: i64,
    /// Project.
    pub project: String,
    /// Stage.
    pub stage: String,
    /// Tag.
    pub tag: String,
    /// `deploy` or `rollback`.
    pub trigger: String,
    /// Image digest, once pulled.
    pub digest: Option<String>,
    /// Where it serves (succeeded deploys).
    pub url: Option<String>,
    /// Wall time of the deploy.
    pub duration_ms: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// What a rollback left behind.
    pub leftovers: Vec<String>,
    /// The failed container's last log lines, kept out of `error`. Sent only to targets with
    /// `include_logs = true`; every other target gets an empty list (log lines may hold secrets).
    pub logs: Vec<String>,
}

/// Sends notifications. Implementations bound their own time and never fail: they return one
/// warning per target that could not be told.
pub trait Notifier {
    /// Tells every target; resolves with warnings (empty when all were told).
    fn notify<'a>(&'a self, n: &'a Notification) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>>;
}

/// A notifier with no targets.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoNotifier;

impl Notifier for NoNotifier {
    fn notify<'a>(&'a self, _: &'a Notification) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>> {
        Box::pin(std::future::ready(Vec::new()))
    }
}
