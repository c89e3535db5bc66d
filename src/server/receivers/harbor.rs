//! Harbor artifact pushes, in the Default format (`"type": "PUSH_ARTIFACT"`, `event_data`) and
//! `CloudEvents` (`"type": "harbor.artifact.pushed"`, `data`). A resource whose tag is its
//! digest is untagged and does not count. The host is the text before the first `/` of
//! `resource_url`.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, digest, is_deploy_tag};

#[derive(Deserialize)]
struct Body {
    #[serde(rename = "type")]
    kind: Option<String>,
    id: Option<String>,
    event_data: Option<Data>,
    data: Option<Data>,
}

#[derive(Deserialize)]
struct Data {
    resources: Option<Vec<Resource>>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct Resource {
    digest: Option<String>,
    tag: Option<String>,
    #[serde(rename = "resource_url")]
    url: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    repo_full_name: Option<String>,
}

pub(super) fn parse(_headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let b: Body = serde_json::from_slice(body).map_err(|e| ParseError::json("harbor", &e))?;
    if !matches!(b.kind.as_deref(), Some("PUSH_ARTIFACT" | "harbor.artifact.pushed")) {
        return Ok(Vec::new());
    }
    let Some(data) = b.event_data.or(b.data) else { return Ok(Vec::new()) };
    let Some(repo) = data.repository.and_then(|r| r.repo_full_name) else { return Ok(Vec::new()) };
    Ok(data
        .resources
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| {
            let tag = r.tag.filter(|t| is_deploy_tag(t) && Some(t) != r.digest.as_ref())?;
            let host = r.url.as_deref()?.split('/').next()?.to_ascii_lowercase();
            Some(PushEvent {
                registry: host,
                repository: repo.to_ascii_lowercase(),
                tag,
                digest: digest(r.digest.as_deref()),
                delivery: b.id.clone(),
            })
        })
        .collect())
}
