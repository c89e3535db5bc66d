//! Registry credentials as the Docker CLI finds them in its `config.json`: a credential helper
//! named for the registry in `credHelpers`, else the default `credsStore` helper, else the
//! `auths` entry `docker login` wrote. A helper is the program `docker-credential-<name>`, asked
//! with `get` and the registry on stdin. Config-file credentials (`[registries."host"]`) come
//! before all of these.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryAuth;
use crate::secret::Secret;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default)]
    cred_helpers: HashMap<String, String>,
    creds_store: Option<String>,
}

/// What a credential helper answers to `get`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct HelperAnswer {
    username: String,
    secret: String,
}

/// The registry host of an image reference, if it names one (`host.tld/…`, `host:port/…`,
/// `localhost/…`).
#[must_use]
pub fn registry_host(image: &str) -> Option<&str> {
    let (first, _) = image.split_once('/')?;
    (first.contains('.') || first.contains(':') || first == "localhost").then_some(first)
}

/// Asks `docker-credential-<helper> get` for `registry`'s credentials.
fn from_helper(helper: &str, registry: &str) -> Result<Option<RegistryAuth>, String> {
    use std::io::Write as _;
    let program = format!("docker-credential-{helper}");
    let mut child = std::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(registry.as_bytes());
    }
    let out = child.wait_with_output().map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        // Helpers answer "credentials not found" on stdout or stderr with a failure status.
        let said =
            String::from_utf8_lossy(if out.stderr.is_empty() { &out.stdout } else { &out.stderr }).trim().to_owned();
        return if said.to_ascii_lowercase().contains("not found") {
            Ok(None)
        } else {
            Err(format!("{program} get failed: {said}"))
        };
    }
    let answer: HelperAnswer =
        serde_json::from_slice(&out.stdout).map_err(|e| format!("{program} answered something unreadable: {e}"))?;
    Ok(Some(RegistryAuth { username: answer.username, password: Secret::new(answer.secret) }))
}

#[derive(Debug, Default, Deserialize)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identitytoken: Option<String>,
}

/// The key Docker uses for Docker Hub in `auths`.
const DOCKER_HUB: &str = "https://index.docker.io/v1/";

/// Looks up credentials for `registry` (a host such as `registry.example.com` or
/// `127.0.0.1:5000`; `None` for Docker Hub) in `dir/config.json`. A missing or unreadable file
/// means no credentials.
///
/// # Errors
/// When a credential helper named in the file fails (not when it has no credentials).
pub fn from_docker_config(dir: &Path, registry: Option<&str>) -> Result<Option<RegistryAuth>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else { return Ok(None) };
    let Ok(file) = serde_json::from_str::<DockerConfigFile>(&text) else { return Ok(None) };
    let wanted = registry.unwrap_or(DOCKER_HUB);
    let helper = file.cred_helpers.iter().find_map(|(k, v)| (normalise(k) == normalise(wanted)).then_some(v));
    if let Some(helper) = helper.or(file.creds_store.as_ref()) {
        return from_helper(helper, wanted);
    }
    Ok(from_auths(&file, wanted))
}

fn from_auths(file: &DockerConfigFile, wanted: &str) -> Option<RegistryAuth> {
    let entry = file.auths.iter().find_map(|(k, v)| (normalise(k) == normalise(wanted)).then_some(v))?;
    if let Some(token) = &entry.identitytoken {
        return Some(RegistryAuth { username: "<token>".into(), password: Secret::new(token.clone()) });
    }
    if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
        return Some(RegistryAuth { username: u.clone(), password: Secret::new(p.clone()) });
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(entry.auth.as_ref()?.trim()).ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (u, p) = decoded.split_once(':')?;
    Some(RegistryAuth { username: u.to_owned(), password: Secret::new(p.to_owned()) })
}

/// `https://host/v1/` and `host` name the same registry.
fn normalise(key: &str) -> &str {
    let k = key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")).unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

/// Credentials for `image`'s registry: the config's `[registries."host"]` first, then the Docker
/// CLI's `config.json`. Returns where they came from (for the log; never the secret) and them.
///
/// # Errors
/// When a credential helper fails; the pull then goes on without credentials.
pub fn for_image(image: &str, from_config: Option<&RegistryAuth>) -> Result<Option<(String, RegistryAuth)>, String> {
    if let Some(a) = from_config {
        return Ok(Some(("the tiny-forge config".into(), a.clone())));
    }
    let Some(dir) = crate::env::docker_config_dir() else { return Ok(None) };
    let registry = registry_host(image);
    Ok(from_docker_config(&dir, registry)?.map(|a| (dir.join("config.json").display().to_string(), a)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_host_is_the_first_component_when_it_looks_like_a_host() {
        assert_eq!(registry_host("registry.example.com/team/shop"), Some("registry.example.com"));
        assert_eq!(registry_host("127.0.0.1:5000/shop"), Some("127.0.0.1:5000"));
        assert_eq!(registry_host("team/shop"), None);
        assert_eq!(registry_host("shop"), None);
    }

    #[test]
    fn auths_entry_is_decoded_from_base64() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://registry.example.com/v1/":{"auth":"dXNlcjpzM2NyZXQ="}}}"#,
        )
        .unwrap();
        let a = from_docker_config(dir.path(), Some("registry.example.com")).unwrap().unwrap();
        assert_eq!(a.username, "user");
        assert_eq!(a.password.expose(), "s3cret");
        assert!(from_docker_config(dir.path(), Some("other.example.com")).unwrap().is_none());
    }

    #[test]
    fn a_missing_credential_helper_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credHelpers":{"r.example.com":"tf-surely-missing"}}"#)
            .unwrap();
        let e = from_docker_config(dir.path(), Some("r.example.com")).unwrap_err();
        assert!(e.contains("docker-credential-tf-surely-missing"), "{e}");
    }

    #[test]
    fn missing_file_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert!(from_docker_config(dir.path(), Some("r.example.com")).unwrap().is_none());
    }
}
