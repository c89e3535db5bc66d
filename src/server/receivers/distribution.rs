//! CNCF distribution notifications (`docker-registry`, `registry:2`/`:3`, GitLab's registry):
//! an envelope `{"events":[…]}` in which only a `push` of a manifest by tag counts. Every
//! event of the envelope is looked at (they are unrelated); the registry host is the
//! receiver's configured one, else the event's `request.host`.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, digest, is_deploy_tag};

#[derive(Deserialize)]
struct Envelope {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: Option<String>,
    action: Option<String>,
    target: Option<Target>,
    request: Option<Request>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Target {
    media_type: Option<String>,
    digest: Option<String>,
    repository: Option<String>,
    url: Option<String>,
    tag: Option<String>,
}

#[derive(Deserialize)]
struct Request {
    host: Option<String>,
}

fn is_manifest(t: &Target) -> bool {
    let by_type = t.media_type.as_deref().is_some_and(|m| m.contains("manifest") || m.contains("image.index"));
    let by_url = t.url.as_deref().is_some_and(|u| u.contains("/manifests/"));
    by_type || by_url
}

pub(super) fn parse(_headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let env: Envelope = serde_json::from_slice(body).map_err(|e| ParseError::json("distribution", &e))?;
    Ok(env
        .events
        .into_iter()
        .filter(|e| e.action.as_deref() == Some("push"))
        .filter_map(|e| {
            let t = e.target?;
            if !is_manifest(&t) {
                return None;
            }
            let tag = t.tag.filter(|tag| is_deploy_tag(tag))?;
            Some(PushEvent {
                registry: e.request.and_then(|r| r.host).unwrap_or_default().to_ascii_lowercase(),
                repository: t.repository?.to_ascii_lowercase(),
                tag,
                digest: digest(t.digest.as_deref()),
                delivery: e.id,
            })
        })
        .collect())
}
