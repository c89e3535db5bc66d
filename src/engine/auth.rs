//! Registry credentials as the Docker CLI finds them in its `config.json`: a credential helper
//! named for the registry in `credHelpers`, else the default `credsStore` helper, else the
//! `auths` entry `docker login` wrote. A helper is the program `docker-credential-<name>`, asked
//! with `get` and the registry on stdin; it runs as a `tokio` child process, bounded by a
//! timeout and killed when the lookup is dropped. Config-file credentials
//! (`[registries."host"]`) come before all of these.

use std::collections::HashMap;
use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;

use super::RegistryAuth;
use crate::env;
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
    crate::image_ref::registry_host(image)
}

/// How long a credential helper may take to answer `get` in a deploy's pull (and in `check`).
/// Long enough for a keychain that has to wake up; short enough that a helper waiting for a
/// prompt nobody sees fails the lookup well inside the pull step's own bound.
pub const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// How credential helpers are run: the bound on one answer, and (tests only) the directories
/// searched for `docker-credential-*` instead of `$PATH`.
#[derive(Debug, Clone)]
struct Helpers<'a> {
    timeout: Duration,
    search_path: Option<&'a OsStr>,
}

/// Asks `docker-credential-<helper> get` for `registry`'s credentials. The helper is killed when
/// it has not answered within the timeout, and when this future is dropped (the deploy was
/// interrupted or its step bound fired).
async fn from_helper(helper: &str, registry: &str, how: &Helpers<'_>) -> Result<Option<RegistryAuth>, String> {
    use tokio::io::AsyncWriteExt as _;
    let program = format!("docker-credential-{helper}");
    let mut cmd = tokio::process::Command::new(&program);
    cmd.arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some(path) = how.search_path {
        cmd.env(env::PATH, path);
    }
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {program}: {e}"))?;
    let stdin = child.stdin.take();
    let answer = async move {
        if let Some(mut stdin) = stdin {
            // A helper that exits without reading closes the pipe; its answer says why.
            let _ = stdin.write_all(registry.as_bytes()).await;
        }
        child.wait_with_output().await
    };
    let out = match tokio::time::timeout(how.timeout, answer).await {
        Ok(out) => out.map_err(|e| format!("{program}: {e}"))?,
        Err(_) => {
            return Err(format!(
                "{program} get did not answer within {} and was stopped; it may be waiting for a locked keychain \
                 or a login prompt: run `echo {registry} | {program} get` by hand, or remove it from \
                 config.json's credHelpers/credsStore",
                humantime::format_duration(how.timeout)
            ));
        }
    };
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
/// `127.0.0.1:5000`; `None` for Docker Hub) in `dir/config.json`, asking a credential helper
/// when the file names one. A missing or unreadable file means no credentials.
///
/// # Errors
/// When a credential helper named in the file fails or does not answer within `timeout` (not
/// when it has no credentials).
pub async fn from_docker_config(
    dir: &Path,
    registry: Option<&str>,
    timeout: Duration,
) -> Result<Option<RegistryAuth>, String> {
    lookup(dir, registry, &Helpers { timeout, search_path: None }).await
}

async fn lookup(dir: &Path, registry: Option<&str>, how: &Helpers<'_>) -> Result<Option<RegistryAuth>, String> {
    let Ok(text) = std::fs::read_to_string(dir.join("config.json")) else { return Ok(None) };
    let Ok(file) = serde_json::from_str::<DockerConfigFile>(&text) else { return Ok(None) };
    let wanted = registry.unwrap_or(DOCKER_HUB);
    let helper = file.cred_helpers.iter().find_map(|(k, v)| (normalise(k) == normalise(wanted)).then_some(v));
    if let Some(helper) = helper.or(file.creds_store.as_ref()) {
        return from_helper(helper, wanted, how).await;
    }
    Ok(from_auths(&file, wanted))
}

fn from_auths(file: &DockerConfigFile, wanted: &str) -> Option<RegistryAuth> {
    let entry = file.auths.iter().find_map(|(k, v)| (normalise(k) == normalise(wanted)).then_some(v))?;
    if let Some(token) = &entry.identitytoken {
        return Some(RegistryAuth {
            username: super::IDENTITY_TOKEN_USER.into(),
            password: Secret::new(token.clone()),
        });
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
/// A credential helper gets `timeout` to answer and is killed when it does not, or when this
/// future is dropped: a helper waiting for a locked keychain cannot freeze a deploy, and SIGINT
/// still stops it.
///
/// # Errors
/// When a credential helper fails or does not answer in time; the pull then goes on without
/// credentials.
pub async fn for_image(
    image: &str,
    configured: Option<&RegistryAuth>,
    timeout: Duration,
) -> Result<Option<(String, RegistryAuth)>, String> {
    if let Some(a) = configured {
        return Ok(Some(("the tiny-forge config".into(), a.clone())));
    }
    let Some(dir) = crate::env::docker_config_dir() else { return Ok(None) };
    let registry = registry_host(image);
    Ok(from_docker_config(&dir, registry, timeout).await?.map(|a| (dir.join("config.json").display().to_string(), a)))
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    const LONG: Duration = Duration::from_secs(30);

    #[test]
    fn registry_host_is_the_first_component_when_it_looks_like_a_host() {
        assert_eq!(registry_host("registry.example.com/team/shop"), Some("registry.example.com"));
        assert_eq!(registry_host("127.0.0.1:5000/shop"), Some("127.0.0.1:5000"));
        assert_eq!(registry_host("team/shop"), None);
        assert_eq!(registry_host("shop"), None);
    }

    #[tokio::test]
    async fn auths_entry_is_decoded_from_base64() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://registry.example.com/v1/":{"auth":"dXNlcjpzM2NyZXQ="}}}"#,
        )
        .unwrap();
        let a = from_docker_config(dir.path(), Some("registry.example.com"), LONG).await.unwrap().unwrap();
        assert_eq!(a.username, "user");
        assert_eq!(a.password.expose(), "s3cret");
        assert!(from_docker_config(dir.path(), Some("other.example.com"), LONG).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_missing_credential_helper_is_reported_not_ignored() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), r#"{"credHelpers":{"r.example.com":"tf-surely-missing"}}"#)
            .unwrap();
        let e = from_docker_config(dir.path(), Some("r.example.com"), LONG).await.unwrap_err();
        assert!(e.contains("docker-credential-tf-surely-missing"), "{e}");
    }

    #[tokio::test]
    async fn missing_file_means_no_credentials() {
        let dir = tempfile::tempdir().unwrap();
        assert!(from_docker_config(dir.path(), Some("r.example.com"), LONG).await.unwrap().is_none());
    }

    /// A Docker config dir naming the helper `tftest` for `r.example.com`, and a bin dir holding
    /// `docker-credential-tftest` with `body` as its shell script. Each test gets its own dirs
    /// and passes the search path to the lookup: `$PATH` itself is never changed.
    struct FakeHelper {
        config: tempfile::TempDir,
        bin: tempfile::TempDir,
        search_path: std::ffi::OsString,
    }

    impl FakeHelper {
        fn new(body: &str) -> Self {
            use std::os::unix::fs::PermissionsExt as _;
            let config = tempfile::tempdir().unwrap();
            std::fs::write(config.path().join("config.json"), r#"{"credHelpers":{"r.example.com":"tftest"}}"#).unwrap();
            let bin = tempfile::tempdir().unwrap();
            let helper = bin.path().join("docker-credential-tftest");
            std::fs::write(&helper, format!("#!/bin/sh\n{body}\n")).unwrap();
            std::fs::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
            let mut search_path = bin.path().as_os_str().to_owned();
            search_path.push(":/usr/bin:/bin");
            Self { config, bin, search_path }
        }

        async fn ask(&self, timeout: Duration) -> Result<Option<RegistryAuth>, String> {
            let how = Helpers { timeout, search_path: Some(&self.search_path) };
            lookup(self.config.path(), Some("r.example.com"), &how).await
        }

        fn pid_file(&self) -> PathBuf {
            self.bin.path().join("pid")
        }
    }

    /// A helper that records its pid and then never answers.
    const HANGS: &str = "echo $$ > \"$(dirname \"$0\")/pid\"\nexec sleep 600";

    /// Waits until process `pid` is gone or a zombie (killed, not yet reaped).
    fn assert_killed(pid: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let dead = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map_or(true, |stat| stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z')));
            if dead {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the helper (pid {pid}) is still running");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[tokio::test]
    async fn a_helper_that_answers_gives_its_credentials() {
        let h = FakeHelper::new(
            r#"read registry
printf '{"ServerURL":"%s","Username":"ci-%s","Secret":"s3cret"}\n' "$registry" "$registry""#,
        );
        let a = h.ask(LONG).await.unwrap().unwrap();
        assert_eq!(a.username, "ci-r.example.com", "the registry was passed on stdin");
        assert_eq!(a.password.expose(), "s3cret");
    }

    #[tokio::test]
    async fn a_helper_without_credentials_means_none_and_a_failing_one_is_an_error() {
        let h = FakeHelper::new("echo 'credentials not found in native keychain'\nexit 1");
        assert!(h.ask(LONG).await.unwrap().is_none());
        let h = FakeHelper::new("echo 'keychain exploded' >&2\nexit 1");
        let e = h.ask(LONG).await.unwrap_err();
        assert_eq!(e, "docker-credential-tftest get failed: keychain exploded");
    }

    #[tokio::test]
    async fn a_helper_that_never_answers_times_out_and_is_killed() {
        let h = FakeHelper::new(HANGS);
        let e = h.ask(Duration::from_secs(1)).await.unwrap_err();
        assert!(e.starts_with("docker-credential-tftest get did not answer within 1s and was stopped"), "{e}");
        assert!(e.contains("credHelpers"), "says what to do: {e}");
        let pid = std::fs::read_to_string(h.pid_file()).expect("the helper started within 1s");
        assert_killed(pid.trim());
    }

    #[tokio::test]
    async fn dropping_the_lookup_kills_the_helper() {
        let h = FakeHelper::new(HANGS);
        let started = async {
            while !h.pid_file().exists() {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::select! {
            r = h.ask(LONG) => panic!("a hung helper answered: {r:?}"),
            () = started => {}
        }
        // The lookup future is dropped here, as when SIGINT or a step bound cancels the pull.
        let pid = std::fs::read_to_string(h.pid_file()).unwrap();
        assert_killed(pid.trim());
    }
}
