//! Registry credentials from the Docker CLI's `config.json` (`auths`): the same file `docker
//! login` writes. Config-file credentials (`[registries."host"]`) take precedence.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine as _;
use serde::Deserialize;

use crate::config::{RegistryAuth, Secret};

#[derive(Debug, Default, Deserialize)]
struct DockerConfigFile {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
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
#[must_use]
pub fn from_docker_config(dir: &Path, registry: Option<&str>) -> Option<RegistryAuth> {
    let text = std::fs::read_to_string(dir.join("config.json")).ok()?;
    let file: DockerConfigFile = serde_json::from_str(&text).ok()?;
    let wanted = registry.unwrap_or(DOCKER_HUB);
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
#[must_use]
pub fn for_image(image: &str, from_config: Option<&RegistryAuth>) -> Option<(String, RegistryAuth)> {
    if let Some(a) = from_config {
        return Some(("the tiny-forge config".into(), a.clone()));
    }
    let dir = crate::env::docker_config_dir()?;
    let registry = crate::config::registry_host(image);
    from_docker_config(&dir, registry).map(|a| (dir.join("config.json").display().to_string(), a))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auths_entry_is_decoded_from_base64() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://registry.example.com/v1/":{"auth":"dXNlcjpzM2NyZXQ="}}}"#,
        )
        .unwrap();
        let a = from_docker_config(dir.path(), Some("registry.example.com")).unwrap();
        assert_eq!(a.username, "user");
        assert_eq!(a.password.expose(), "s3cret");
        assert!(from_docker_config(dir.path(), Some("other.example.com")).is_none());
    }

    #[test]
    fn missing_file_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert!(from_docker_config(dir.path(), Some("r.example.com")).is_none());
    }
}
