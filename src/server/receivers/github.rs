//! GitHub `package` and `registry_package` events (GHCR). One event per manifest: only the one
//! whose `container_metadata.tag.name` is a tag counts. Owner and name are lower-cased (OCI
//! references are); the digest is `package_version.name`.

use axum::http::HeaderMap;
use serde::Deserialize;

use super::{ParseError, PushEvent, digest, header_str, is_deploy_tag};

#[derive(Deserialize)]
struct Body {
    action: Option<String>,
    package: Option<Package>,
    registry_package: Option<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: Option<String>,
    #[serde(rename = "package_type")]
    kind: Option<String>,
    owner: Option<Owner>,
    #[serde(rename = "package_version")]
    version: Option<Version>,
}

#[derive(Deserialize)]
struct Owner {
    login: Option<String>,
}

#[derive(Deserialize)]
struct Version {
    name: Option<String>,
    container_metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    tag: Option<TagInfo>,
    manifest: Option<Manifest>,
}

#[derive(Deserialize)]
struct TagInfo {
    name: Option<String>,
    digest: Option<String>,
}

#[derive(Deserialize)]
struct Manifest {
    digest: Option<String>,
}

pub(super) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Vec<PushEvent>, ParseError> {
    let event = header_str(headers, "x-github-event").unwrap_or_default();
    if !matches!(event, "package" | "registry_package") {
        return Ok(Vec::new()); // `ping` and anything else: nothing to do
    }
    let b: Body = serde_json::from_slice(body).map_err(|e| ParseError::json("github", &e))?;
    if !matches!(b.action.as_deref(), Some("published" | "updated")) {
        return Ok(Vec::new());
    }
    let Some(p) = b.package.or(b.registry_package) else { return Ok(Vec::new()) };
    let container =
        p.kind.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("container") || t.eq_ignore_ascii_case("docker"));
    let (Some(owner), Some(name), Some(v), true) = (p.owner.and_then(|o| o.login), p.name, p.version, container) else {
        return Ok(Vec::new());
    };
    let meta = v.container_metadata;
    let tag_info = meta.as_ref().and_then(|m| m.tag.as_ref());
    let Some(tag) = tag_info.and_then(|t| t.name.clone()).filter(|t| is_deploy_tag(t)) else { return Ok(Vec::new()) };
    let d = digest(v.name.as_deref())
        .or_else(|| digest(tag_info.and_then(|t| t.digest.as_deref())))
        .or_else(|| digest(meta.as_ref().and_then(|m| m.manifest.as_ref()).and_then(|m| m.digest.as_deref())));
    Ok(vec![PushEvent {
        registry: "ghcr.io".into(),
        repository: format!("{}/{}", owner.to_ascii_lowercase(), name.to_ascii_lowercase()),
        tag,
        digest: d,
        delivery: header_str(headers, "x-github-delivery").map(str::to_owned),
    }])
}
