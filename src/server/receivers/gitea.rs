//! Gitea and Forgejo `package` events. Every manifest PUT fires one, tagged or not: a version
//! that is a digest is an untagged manifest and does not count. No digest for tags (the server
//! resolves it). The registry host is the receiver's configured one (the payload does not name
//! it); `html_url`'s host is only a fallback.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, header_str, is_deploy_tag};

#[derive(Deserialize)]
struct Body {
    action: Option<String>,
    package: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    version: Option<String>,
    owner: Option<Owner>,
    html_url: Option<String>,
}

#[derive(Deserialize)]
struct Owner {
    login: Option<String>,
}

pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let event = header_str(headers, "x-gitea-event").or_else(|| header_str(headers, "x-forgejo-event"));
    if event != Some("package") {
        return Ok(Vec::new());
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| ParseError::json("gitea", &e))?;
    let Some(p) = b.package else { return Ok(Vec::new()) };
    if b.action.as_deref() != Some("created") || p.kind.as_deref() != Some("container") {
        return Ok(Vec::new());
    }
    let (Some(owner), Some(name), Some(tag)) = (p.owner.and_then(|o| o.login), p.name, p.version) else {
        return Ok(Vec::new());
    };
    if !is_deploy_tag(&tag) {
        return Ok(Vec::new());
    }
    let host = p
        .html_url
        .as_deref()
        .and_then(|u| u.split_once("://"))
        .and_then(|(_, rest)| rest.split('/').next())
        .unwrap_or_default()
        .to_ascii_lowercase();
    Ok(vec![PushEvent {
        registry: host,
        repository: format!("{}/{}", owner.to_ascii_lowercase(), name.to_ascii_lowercase()),
        tag,
        digest: None,
        delivery: header_str(headers, "x-gitea-delivery")
            .or_else(|| header_str(headers, "x-forgejo-delivery"))
            .map(str::to_owned),
    }])
}
