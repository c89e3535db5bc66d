//! Webhooks over HTTP(S): tiny-forge's JSON, or Slack's and Discord's incoming-webhook payloads.
//!
//! Authenticity: with a secret, every request carries
//! `X-Tiny-Forge-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, so a
//! receiver can reject forgeries (wrong MAC) and replays (old `t`).
//!
//! Bounded: each target gets a few attempts (backoff 250 ms, then 1 s) with a per-attempt
//! timeout, all within the target's budget (default 10 s); targets are told concurrently. Only
//! the URL's scheme and host are ever logged: a webhook URL often is a secret itself.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac as _};
use serde_json::json;
use sha2::Sha256;
use tokio::time::Instant;

use super::NotifyFormat;
use super::{Notification, Notifier, NotifyEvent};
use crate::secret::Secret;

/// Header carrying the signature.
pub const SIGNATURE_HEADER: &str = "X-Tiny-Forge-Signature";

/// One webhook, resolved. Its `Debug` shows the URL as messages do (a Slack or Discord URL is
/// itself a credential).
#[derive(Clone)]
pub struct WebhookTarget {
    /// Where to POST.
    pub url: String,
    /// HMAC key, if any.
    pub secret: Option<Secret>,
    /// Payload shape.
    pub format: NotifyFormat,
    /// Total time allowed for this target.
    pub budget: Duration,
    /// Whether [`Notification::logs`] is sent to this target.
    pub include_logs: bool,
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &crate::fmt::redact_url(&self.url))
            .field("secret", &self.secret)
            .field("format", &self.format)
            .field("budget", &self.budget)
            .field("include_logs", &self.include_logs)
            .finish()
    }
}

/// Sends to every target.
#[derive(Debug, Clone)]
pub struct WebhookNotifier {
    targets: Vec<WebhookTarget>,
    client: reqwest::Client,
}

/// `t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>`.
#[must_use]
pub fn sign(secret: &str, unix: u64, body: &[u8]) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = <Hmac<Sha256> as hmac::Mac>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(unix.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("t={unix},v1={:x}", mac.finalize().into_bytes())
}

fn text(n: &Notification) -> String {
    let slot = format!("{}/{}:{}", n.project, n.stage, n.tag);
    let mut text = match n.event {
        NotifyEvent::Succeeded => {
            format!("✅ {slot} deployed (deploy {}) at {}", n.deploy_id, n.url.as_deref().unwrap_or("-"))
        }
        NotifyEvent::Failed => {
            format!(
                "❌ {slot} failed and was rolled back (deploy {}): {}",
                n.deploy_id,
                n.error.as_deref().unwrap_or("-")
            )
        }
        NotifyEvent::RollbackIncomplete => format!(
            "⚠️ {slot} failed and its rollback left {} behind; run `tiny-forge prune` (deploy {}): {}",
            n.leftovers.join(", "),
            n.deploy_id,
            n.error.as_deref().unwrap_or("-")
        ),
    };
    if !n.logs.is_empty() {
        text.push_str("\nlast log lines:\n```\n");
        text.push_str(&n.logs.join("\n"));
        text.push_str("\n```");
    }
    text
}

/// The body for target `t`: in its format, with the log lines only when it asks for them.
fn body(t: &WebhookTarget, n: &Notification) -> Vec<u8> {
    let without_logs;
    let n = if t.include_logs || n.logs.is_empty() {
        n
    } else {
        without_logs = Notification { logs: Vec::new(), ..n.clone() };
        &without_logs
    };
    let v = match t.format {
        NotifyFormat::Json => serde_json::to_value(n).unwrap_or_default(),
        NotifyFormat::Slack => json!({ "text": text(n) }),
        NotifyFormat::Discord => json!({ "content": text(n) }),
    };
    v.to_string().into_bytes()
}

impl WebhookNotifier {
    /// A notifier for `targets` using `client`, built with [`crate::http::outbound`] so that
    /// webhooks honour `HTTPS_PROXY` and trust `settings.ca_file`.
    #[must_use]
    pub fn new(targets: Vec<WebhookTarget>, client: reqwest::Client) -> Self {
        Self { targets, client }
    }

    async fn send(&self, t: &WebhookTarget, n: &Notification) -> Result<(), String> {
        let body = body(t, n);
        let deadline = Instant::now() + t.budget;
        let backoff = [Duration::from_millis(250), Duration::from_secs(1)];
        let mut last = String::new();
        for attempt in 0..=backoff.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            let mut req = self
                .client
                .post(&t.url)
                .timeout(left.min(Duration::from_secs(5)))
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(secret) = &t.secret {
                let unix = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
                req = req.header(SIGNATURE_HEADER, sign(secret.expose(), unix, &body));
            }
            match req.send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                    return Err(format!("answered {}", r.status()));
                }
                Ok(r) => last = format!("answered {}", r.status()),
                Err(e) if e.is_timeout() => last = "timed out".into(),
                Err(e) if e.is_connect() => last = crate::http::connect_failure(e),
                Err(e) => last = crate::fmt::one_line(&e.without_url()),
            }
            if let Some(wait) = backoff.get(attempt) {
                let left = deadline.saturating_duration_since(Instant::now());
                tokio::time::sleep((*wait).min(left)).await;
            }
        }
        Err(format!("{last} (gave up within {})", humantime::format_duration(t.budget)))
    }
}

impl Notifier for WebhookNotifier {
    fn notify<'a>(&'a self, n: &'a Notification) -> Pin<Box<dyn Future<Output = Vec<String>> + 'a>> {
        Box::pin(async move {
            let sends = self.targets.iter().map(|t| async move {
                self.send(t, n)
                    .await
                    .err()
                    .map(|e| format!("notification to {} failed: {e}", crate::fmt::redact_url(&t.url)))
            });
            futures_util::future::join_all(sends).await.into_iter().flatten().collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Adversarial review L12: a chat webhook's URL is a credential; `Debug` masks it.
    #[test]
    fn a_target_s_debug_never_shows_its_url_token_or_secret() {
        let t = WebhookTarget {
            url: "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX".into(),
            secret: Some(Secret::new("hmac-key".into())),
            format: NotifyFormat::Slack,
            budget: Duration::from_secs(1),
            include_logs: false,
        };
        let shown = format!("{t:?}");
        assert!(!shown.contains("XXXXSECRETXXXX") && !shown.contains("hmac-key"), "{shown}");
        assert!(shown.contains("hooks.slack.com"), "{shown}");
    }

    #[test]
    fn signature_is_hmac_sha256_of_time_dot_body_in_hex() {
        // echo -n '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        let sig = sign("s3cret", 1_700_000_000, br#"{"a":1}"#);
        assert_eq!(sig, "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940");
        assert_ne!(sig, sign("other", 1_700_000_000, br#"{"a":1}"#));
        assert_ne!(sig, sign("s3cret", 1_700_000_001, br#"{"a":1}"#));
    }

    fn failed_with_logs() -> Notification {
        Notification {
            event: NotifyEvent::Failed,
            deploy_id: 7,
            project: "shop".into(),
            stage: "dev".into(),
            tag: "pr-1".into(),
            trigger: "deploy".into(),
            digest: None,
            url: None,
            duration_ms: 1200,
            error: Some("health failed: container exited with code 3 before it was healthy".into()),
            leftovers: Vec::new(),
            logs: vec!["starting".into(), "DB_PASSWORD=hunter2 rejected".into()],
        }
    }

    fn target(format: NotifyFormat, include_logs: bool) -> WebhookTarget {
        WebhookTarget {
            url: "http://127.0.0.1:9/hook".into(),
            secret: None,
            format,
            budget: Duration::from_secs(1),
            include_logs,
        }
    }

    fn sent(format: NotifyFormat, include_logs: bool) -> serde_json::Value {
        serde_json::from_slice(&body(&target(format, include_logs), &failed_with_logs())).unwrap()
    }

    #[test]
    fn log_lines_go_only_to_targets_with_include_logs() {
        for format in [NotifyFormat::Json, NotifyFormat::Slack, NotifyFormat::Discord] {
            let without = sent(format, false).to_string();
            assert!(!without.contains("hunter2") && !without.contains("starting"), "{format:?}: {without}");
            let with = sent(format, true).to_string();
            assert!(with.contains("DB_PASSWORD=hunter2 rejected") && with.contains("starting"), "{format:?}: {with}");
        }
    }

    #[test]
    fn the_json_payload_always_has_a_logs_list_and_keeps_them_out_of_error() {
        let without = sent(NotifyFormat::Json, false);
        assert_eq!(without["logs"], json!([]));
        let with = sent(NotifyFormat::Json, true);
        assert_eq!(with["logs"], json!(["starting", "DB_PASSWORD=hunter2 rejected"]));
        assert_eq!(with["error"], without["error"]);
        assert!(!with["error"].as_str().unwrap().contains("hunter2"));
    }

    #[test]
    fn chat_formats_put_the_log_lines_in_a_code_block_after_the_summary() {
        let slack = sent(NotifyFormat::Slack, true);
        let text = slack["text"].as_str().unwrap();
        assert!(text.starts_with("❌ shop/dev:pr-1 failed and was rolled back (deploy 7)"), "{text}");
        assert!(text.ends_with("last log lines:\n```\nstarting\nDB_PASSWORD=hunter2 rejected\n```"), "{text}");
        let discord = sent(NotifyFormat::Discord, false);
        assert!(!discord["content"].as_str().unwrap().contains("```"), "{discord}");
    }

    #[test]
    fn only_scheme_and_host_of_a_webhook_url_are_shown() {
        assert_eq!(
            crate::fmt::redact_url("https://hooks.slack.com/services/T000/B000/XXXX"),
            "https://hooks.slack.com"
        );
    }
}
