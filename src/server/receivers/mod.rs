//! Registry webhooks: one pure parser per format, `(headers, body) -> Result<Vec<PushEvent>>`,
//! behind one authenticator that checks the raw bytes first, in constant time.
//!
//! A [`PushEvent`] is a hint ("this tag now points at that manifest"), never an order: the
//! server acts only on the repositories and tag rules the config names ([`candidates`]), and
//! deploys by digest. Every parser drops what is not "a tag now points at a manifest": blob
//! uploads, pulls, deletes, untagged manifests (a tag that is a digest or empty), cosign
//! signature and attestation tags.

mod distribution;
mod dockerhub;
mod gitea;
mod github;
mod harbor;
mod quay;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;

use super::queue::Candidate;
use crate::config::{PushRule, ReceiverKind};
use crate::domain::{Slot, Tag, Trigger};
use crate::secret::Secret;

/// One pushed tag, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushEvent {
    /// Registry host (`registry.example.com:5000`, `ghcr.io`, `docker.io`), lower case.
    pub registry: String,
    /// Repository path without host (`team/app`), lower case.
    pub repository: String,
    /// The tag.
    pub tag: String,
    /// The manifest digest, when the payload says.
    pub digest: Option<String>,
    /// The sender's id for this event or delivery, when it has one (for replay detection).
    pub delivery: Option<String>,
}

/// A body that is not the format's JSON (or not an object it knows).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a {format} payload: {reason}")]
pub struct ParseError {
    /// The format.
    pub format: &'static str,
    /// What was wrong (never a value from the body).
    pub reason: String,
}

impl ParseError {
    fn json(format: &'static str, e: &serde_json::Error) -> Self {
        // serde_json's message names the line, column and expected type; not the bytes.
        Self { format, reason: format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()) }
    }
}

/// The parser of `kind`.
///
/// # Errors
/// [`ParseError`] when the body is not that format.
pub fn parse(kind: ReceiverKind, headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    match kind {
        ReceiverKind::Distribution | ReceiverKind::Gitlab => distribution::parse(headers, body),
        ReceiverKind::Github => github::parse(headers, body),
        ReceiverKind::Gitea => gitea::parse(headers, body),
        ReceiverKind::Harbor => harbor::parse(headers, body),
        ReceiverKind::Dockerhub => dockerhub::parse(headers, body),
        ReceiverKind::Quay => quay::parse(headers, body),
    }
}

/// Is `tag` one a deploy may follow? Not empty, not a digest, not a cosign signature,
/// attestation or SBOM tag, and a valid Docker tag.
#[must_use]
pub fn is_deploy_tag(tag: &str) -> bool {
    if tag.starts_with("sha256:") || Tag::new(tag).is_err() {
        return false;
    }
    if let Some(rest) = tag.strip_prefix("sha256-") {
        let hex = rest.split('.').next().unwrap_or_default();
        if hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()) {
            return false;
        }
    }
    true
}

/// A well-formed `sha256:<64 hex>` digest, or nothing.
#[must_use]
pub fn digest(d: Option<&str>) -> Option<String> {
    d.filter(|d| d.strip_prefix("sha256:").is_some_and(|h| h.len() == 64 && h.bytes().all(|c| c.is_ascii_hexdigit())))
        .map(str::to_ascii_lowercase)
}

/// An image reference's registry host and repository path, normalised the way Docker does:
/// no host means `docker.io`, a one-part Docker Hub name is under `library/`, and Docker Hub's
/// other host names are `docker.io`. Ports stay (`host:5000/app`).
#[must_use]
pub fn split_image(image: &str) -> (String, String) {
    let image = image.to_ascii_lowercase();
    match crate::image_ref::Reference::parse(&image) {
        Ok(r) => (r.repo.domain().to_owned(), r.repo.path().to_owned()),
        // Not a reference: it matches no configured repository.
        Err(_) => (String::new(), image),
    }
}

/// The deploys `event` asks for under `rules`: one per slot that a rule whose project's image is
/// the event's repository and whose tag pattern matches deploys to. Nothing else: the payload
/// never chooses an image the config does not name. When several rules send the tag to one
/// slot, the push needs approval when any of them asks for it: an overlapping rule can never
/// skip an approval, whatever the rules' order.
#[must_use]
pub fn candidates(event: &PushEvent, rules: &[PushRule], actor: &str, trigger: Trigger) -> Vec<Candidate> {
    let Ok(tag) = Tag::new(&event.tag) else { return Vec::new() };
    if !is_deploy_tag(&event.tag) {
        return Vec::new();
    }
    let (registry, repository) = split_image(&format!("{}/{}", event.registry, event.repository));
    let mut out: Vec<Candidate> = Vec::new();
    for r in rules
        .iter()
        .filter(|r| split_image(&r.image) == (registry.clone(), repository.clone()) && r.tags.matches(tag.as_str()))
    {
        let slot = Slot { project: r.project.clone(), stage: r.stage.clone(), tag: r.slot_tag(&tag) };
        if let Some(c) = out.iter_mut().find(|c| c.slot == slot) {
            c.approval |= r.approval;
            continue;
        }
        out.push(Candidate {
            slot,
            image: r.image.clone(),
            tag: tag.clone(),
            digest: event.digest.clone(),
            actor: actor.to_owned(),
            trigger,
            approval: r.approval,
        });
    }
    out
}

/// Does a push of `tag` into `slot` need approval under `rules`? (Any rule that sends the tag
/// there asks for it.) For the poller, whose candidates come from one rule at a time.
#[must_use]
pub fn needs_approval(rules: &[PushRule], slot: &Slot, tag: &Tag) -> bool {
    rules.iter().any(|r| {
        r.approval
            && r.project == slot.project
            && r.stage == slot.stage
            && r.tags.matches(tag.as_str())
            && r.slot_tag(tag) == slot.tag
    })
}

/// How a receiver's requests prove who sent them.
#[derive(Debug, Clone)]
pub enum Authenticator {
    /// The `Authorization` header is the secret, or `Bearer` and the secret (distribution,
    /// GitLab, Harbor).
    Header(Secret),
    /// GitHub: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>`.
    GithubHmac(Secret),
    /// Gitea / Forgejo: `X-Gitea-Signature` / `X-Forgejo-Signature` (hex, no prefix), or
    /// GitHub's header.
    GiteaHmac(Secret),
    /// Docker Hub, Quay: the last path segment is the secret.
    Path(Secret),
}

impl Authenticator {
    /// The authenticator `kind` uses with `secret`.
    #[must_use]
    pub fn for_kind(kind: ReceiverKind, secret: Secret) -> Self {
        match kind {
            ReceiverKind::Distribution | ReceiverKind::Gitlab | ReceiverKind::Harbor => Self::Header(secret),
            ReceiverKind::Github => Self::GithubHmac(secret),
            ReceiverKind::Gitea => Self::GiteaHmac(secret),
            ReceiverKind::Dockerhub | ReceiverKind::Quay => Self::Path(secret),
        }
    }

    /// Does the request carry the right credential? `path_secret` is the path segment after
    /// the receiver's name, if any. Runs before anything parses the body.
    #[must_use]
    pub fn verify(&self, headers: &HeaderMap, path_secret: Option<&str>, body: &[u8]) -> bool {
        let header = |name: &str| headers.get(name).map(axum::http::HeaderValue::as_bytes).unwrap_or_default();
        match self {
            Self::Header(s) => {
                let got = header("authorization");
                let want = s.expose().as_bytes();
                let bearer = [b"Bearer ".as_slice(), want].concat();
                !want.is_empty() && (bool::from(got.ct_eq(want)) | bool::from(got.ct_eq(&bearer)))
            }
            Self::GithubHmac(s) => {
                header("x-hub-signature-256").strip_prefix(b"sha256=").is_some_and(|hex| hmac_ok(s, body, hex))
            }
            Self::GiteaHmac(s) => {
                let gitea = header("x-gitea-signature");
                let forgejo = header("x-forgejo-signature");
                let hub = header("x-hub-signature-256").strip_prefix(b"sha256=").unwrap_or_default();
                [gitea, forgejo, hub].into_iter().find(|h| !h.is_empty()).is_some_and(|hex| hmac_ok(s, body, hex))
            }
            Self::Path(s) => {
                let want = s.expose().as_bytes();
                !want.is_empty() && path_secret.is_some_and(|p| bool::from(p.as_bytes().ct_eq(want)))
            }
        }
    }
}

/// `hex` is the lowercase or uppercase hex HMAC-SHA256 of `body` under `secret`; checked by
/// the `hmac` crate's constant-time `verify_slice`.
fn hmac_ok(secret: &Secret, body: &[u8], hex: &[u8]) -> bool {
    let Some(sig) = unhex(hex) else { return false };
    if secret.expose().is_empty() {
        return false;
    }
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes()) else { return false };
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

fn unhex(hex: &[u8]) -> Option<Vec<u8>> {
    if hex.len() != 64 {
        return None;
    }
    hex.chunks(2)
        .map(|p| {
            let s = std::str::from_utf8(p).ok()?;
            u8::from_str_radix(s, 16).ok()
        })
        .collect()
}

/// The value of header `name`, as text.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests;
