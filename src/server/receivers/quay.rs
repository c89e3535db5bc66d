//! Quay "Push to Repository" notifications: `docker_url` (`quay.io/ns/name`) and
//! `updated_tags` (a list; very old payloads used a tag → image map). No digest.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, is_deploy_tag};

#[derive(Deserialize)]
#[serde(untagged)]
enum Tags {
    List(Vec<String>),
    Map(std::collections::BTreeMap<String, serde_json::Value>),
}

#[derive(Deserialize)]
struct Body {
    docker_url: Option<String>,
    updated_tags: Option<Tags>,
}

pub(super) fn parse(_headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let b: Body = serde_json::from_slice(body).map_err(|e| ParseError::json("quay", &e))?;
    let Some((host, repo)) = b.docker_url.as_deref().and_then(|u| u.split_once('/')) else { return Ok(Vec::new()) };
    let tags = match b.updated_tags {
        Some(Tags::List(v)) => v,
        Some(Tags::Map(m)) => m.into_keys().collect(),
        None => Vec::new(),
    };
    Ok(tags
        .into_iter()
        .filter(|t| is_deploy_tag(t))
        .map(|tag| PushEvent {
            registry: host.to_ascii_lowercase(),
            repository: repo.to_ascii_lowercase(),
            tag,
            digest: None,
            delivery: None,
        })
        .collect())
}
