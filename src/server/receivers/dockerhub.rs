//! Docker Hub repository webhooks: `repository.repo_name` and `push_data.tag`, no digest (the
//! server resolves it) and no delivery id (the queue's debounce folds the several calls of one
//! multi-arch push). `callback_url` is ignored: never fetch a URL a payload names.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, is_deploy_tag};

#[derive(Deserialize)]
struct Body {
    push_data: Option<PushData>,
    repository: Option<Repository>,
}

#[derive(Deserialize)]
struct PushData {
    tag: Option<String>,
}

#[derive(Deserialize)]
struct Repository {
    repo_name: Option<String>,
}

pub(super) fn parse(_headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let b: Body = serde_json::from_slice(body).map_err(|e| ParseError::json("dockerhub", &e))?;
    let (Some(repo), Some(tag)) = (b.repository.and_then(|r| r.repo_name), b.push_data.and_then(|p| p.tag)) else {
        return Ok(Vec::new());
    };
    if !is_deploy_tag(&tag) {
        return Ok(Vec::new());
    }
    let repository =
        if repo.contains('/') { repo.to_ascii_lowercase() } else { format!("library/{}", repo.to_ascii_lowercase()) };
    Ok(vec![PushEvent { registry: "docker.io".into(), repository, tag, digest: None, delivery: None }])
}
