//! The config `serve` runs, kept in step with the file: the config read at start-up is a hint
//! too. Every job (an API deploy, a push the queue released), every API request that names a
//! stage, every webhook and every `SIGHUP` calls [`LiveConfig::refresh`], which reads the file
//! and hashes it, and the receivers' secret files (microseconds for such files); only when a
//! hash changed does it parse and validate the config again and read the receivers' secrets, so
//! a rotated secret file takes effect (and the old secret stops working) without an edit of the
//! config file. A file that is not valid any more is
//! logged once and the revision that was valid stays in use, so an edit saved halfway never
//! takes the server down; the next valid save takes effect with the next job.
//!
//! A revision is the first 12 hex digits of the file's SHA-256: `/healthz` shows the one the
//! server runs (and the last reload error), `tiny-forge check` the one on disk.
//!
//! `[server]` itself (listen address, TLS, timeouts, limits, `trusted_proxies`) is read once, at
//! start-up: a change there needs a restart. Projects, stages, tag rules and receivers follow
//! the file.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use sha2::{Digest as _, Sha256};

use super::receivers::{Authenticator, split_image};
use crate::config::{Config, ConfigError, PushRule, ReceiverKind, ReceiverSettings};

/// Where the server's log lines go (the binary prints them on stderr). Never given a secret.
pub type Log = Arc<dyn Fn(&str) + Send + Sync>;

/// A log that drops everything (tests, embedders that do not care).
#[must_use]
pub fn quiet() -> Log {
    Arc::new(|_: &str| {})
}

/// The revision of a config file's bytes: the first 12 hex digits of their SHA-256.
#[must_use]
pub fn revision(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().take(6).fold(String::with_capacity(12), |mut s, b| {
        use std::fmt::Write as _;
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// Why a receiver cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// Its secret could not be read.
    #[error("receiver `{name}`: {reason}")]
    Secret {
        /// The receiver.
        name: String,
        /// What went wrong (names the key, never the value).
        reason: String,
    },
    /// Its secret is empty.
    #[error("receiver `{name}`: its secret is empty; a receiver without a secret would accept anyone")]
    Empty {
        /// The receiver.
        name: String,
    },
    /// Its events name their registry host, and the config does not say which host to believe.
    #[error(
        "receiver `{name}`: set `registry`: the tag rules name images on several registries ({}), and a {kind} payload's host is whatever the pusher sent",
        .hosts.join(", ")
    )]
    Ambiguous {
        /// The receiver.
        name: String,
        /// Its kind.
        kind: &'static str,
        /// The hosts of the rules' images.
        hosts: Vec<String>,
    },
}

/// The registry host a receiver's events are taken to be about. A configured `registry` wins.
/// GitHub and Docker Hub payloads are about one fixed host each (their parsers set it). The
/// other kinds name the host in the payload, which for distribution is the Host header the
/// pusher sent: without `registry`, such a receiver is bound to the one registry host of the
/// images its tag rules can deploy, and the payload's host is not believed; when those images
/// live on several hosts, `registry` is required.
///
/// # Errors
/// [`ReceiverError::Ambiguous`] in that last case.
pub fn receiver_host(r: &ReceiverSettings, rules: &[PushRule]) -> Result<Option<String>, ReceiverError> {
    if let Some(h) = &r.registry {
        return Ok(Some(h.clone()));
    }
    match r.kind {
        ReceiverKind::Github | ReceiverKind::Dockerhub | ReceiverKind::Gitea => Ok(None),
        ReceiverKind::Distribution | ReceiverKind::Gitlab | ReceiverKind::Harbor | ReceiverKind::Quay => {
            let hosts: BTreeSet<String> = rules.iter().map(|rule| split_image(&rule.image).0).collect();
            match hosts.len() {
                0 => Ok(None),
                1 => Ok(hosts.into_iter().next()),
                _ => Err(ReceiverError::Ambiguous {
                    name: r.name.clone(),
                    kind: r.kind.as_str(),
                    hosts: hosts.into_iter().collect(),
                }),
            }
        }
    }
}

/// A receiver, ready: its secret read.
#[derive(Debug, Clone)]
pub struct Receiver {
    /// `[[receivers]] name`.
    pub name: String,
    /// Its format.
    pub kind: ReceiverKind,
    /// How its requests authenticate.
    pub auth: Authenticator,
    /// The registry host its events are about, when configured.
    pub registry: Option<String>,
}

/// Every receiver of `config`, its secret read now.
///
/// # Errors
/// [`ReceiverError`] for the first receiver that cannot be used.
pub fn receivers(config: &Config) -> Result<Vec<Receiver>, ReceiverError> {
    let mut out = Vec::new();
    for r in config.receivers() {
        let secret = r
            .secret
            .read(&format!("receivers.{}.secret", r.name))
            .map_err(|reason| ReceiverError::Secret { name: r.name.clone(), reason })?;
        if secret.expose().trim().is_empty() {
            return Err(ReceiverError::Empty { name: r.name.clone() });
        }
        out.push(Receiver {
            name: r.name.clone(),
            kind: r.kind,
            auth: Authenticator::for_kind(r.kind, secret),
            registry: receiver_host(r, config.push_rules())?,
        });
    }
    Ok(out)
}

/// Why a config revision could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// The file could not be read.
    #[error("cannot read config file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not UTF-8.
    #[error("config file {} is not UTF-8", .path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
    },
    /// The file does not parse or validate.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A receiver cannot be used.
    #[error(transparent)]
    Receiver(#[from] ReceiverError),
}

/// One valid revision of the config, with its receivers ready.
#[derive(Debug)]
pub struct Loaded {
    /// The config.
    pub config: Arc<Config>,
    /// Its receivers, secrets read.
    pub receivers: Vec<Receiver>,
    /// [`revision`] of the bytes it was parsed from.
    pub revision: String,
    /// The receivers' secret files, and a digest of what they held when read: a rotated secret
    /// takes effect with the next refresh, and the old one stops working, without an edit of
    /// the config file.
    secrets: SecretFiles,
}

/// Secret files and a digest of their content (an unreadable one counts as its error).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SecretFiles {
    paths: Vec<PathBuf>,
    digest: [u8; 32],
}

impl SecretFiles {
    fn of(config: &Config) -> Self {
        let paths: Vec<PathBuf> = config
            .receivers()
            .iter()
            .filter_map(|r| match &r.secret {
                crate::secret::SecretSource::File(p) => Some(p.clone()),
                crate::secret::SecretSource::Env(_) => None,
            })
            .collect();
        Self::read(paths)
    }

    /// The same files, read now.
    fn read(paths: Vec<PathBuf>) -> Self {
        let mut h = Sha256::new();
        for p in &paths {
            match std::fs::read(p) {
                Ok(b) => h.update(Sha256::digest(&b)),
                Err(e) => h.update(format!("unreadable: {}", e.kind())),
            }
        }
        Self { paths, digest: h.finalize().into() }
    }

    /// Whether what the files hold now is what was read.
    fn unchanged(&self) -> bool {
        Self::read(self.paths.clone()).digest == self.digest
    }
}

impl Loaded {
    fn from_bytes(path: &Path, bytes: &[u8]) -> Result<Self, ReloadError> {
        let text = std::str::from_utf8(bytes).map_err(|_| ReloadError::NotUtf8 { path: path.to_path_buf() })?;
        let config = crate::config::from_text(text, path)?;
        // Before the secrets are read: a file rotated meanwhile is seen again next time.
        let secrets = SecretFiles::of(&config);
        let receivers = receivers(&config)?;
        Ok(Self { config: Arc::new(config), receivers, revision: revision(bytes), secrets })
    }
}

/// The last revision that could not be used, and why.
#[derive(Debug, Clone)]
struct Refused {
    revision: String,
    error: String,
    /// It failed on a receiver's secret (a file not there yet, unreadable, empty): that can
    /// change without the config file changing, so the revision is tried again each time.
    retry: bool,
}

/// The config the server runs, re-read as the module doc says.
pub struct LiveConfig {
    path: PathBuf,
    current: Mutex<Arc<Loaded>>,
    refused: Mutex<Option<Refused>>,
    log: Log,
}

impl std::fmt::Debug for LiveConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveConfig")
            .field("path", &self.path)
            .field("revision", &self.current().revision)
            .finish_non_exhaustive()
    }
}

impl LiveConfig {
    /// Reads the config at `path`; every later reload failure goes to `log`.
    ///
    /// # Errors
    /// [`ReloadError`] when the file cannot be used now (the server does not start).
    pub fn load(path: &Path, log: Log) -> Result<Self, ReloadError> {
        let bytes = std::fs::read(path).map_err(|source| ReloadError::Read { path: path.to_path_buf(), source })?;
        let loaded = Loaded::from_bytes(path, &bytes)?;
        Ok(Self { path: path.to_path_buf(), current: Mutex::new(Arc::new(loaded)), refused: Mutex::new(None), log })
    }

    /// The file it follows.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The revision in use, without looking at the file.
    #[must_use]
    pub fn current(&self) -> Arc<Loaded> {
        Arc::clone(&self.current.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Why the file on disk is not in use, when it is not.
    #[must_use]
    pub fn refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(PoisonError::into_inner).as_ref().map(|r| r.error.clone())
    }

    /// The file as it is now, when it is valid; else the revision in use (and the reason is
    /// logged, once per bad revision).
    pub fn refresh(&self) -> Arc<Loaded> {
        let current = self.current();
        let bytes = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(source) => {
                let e = ReloadError::Read { path: self.path.clone(), source };
                self.refuse("unreadable", &current, &e);
                return current;
            }
        };
        let file_rev = revision(&bytes);
        let secrets_rotated = file_rev == current.revision && !current.secrets.unchanged();
        if file_rev == current.revision && !secrets_rotated {
            *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
            return current;
        }
        // A refusal is of the file and the secrets as they were then.
        let rev = if secrets_rotated {
            let now = SecretFiles::read(current.secrets.paths.clone());
            format!("{file_rev}+secrets:{}", revision(&now.digest))
        } else {
            file_rev
        };
        if self
            .refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_some_and(|r| r.revision == rev && !r.retry)
        {
            return current;
        }
        match Loaded::from_bytes(&self.path, &bytes) {
            Ok(loaded) => {
                let loaded = Arc::new(loaded);
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Arc::clone(&loaded);
                *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = None;
                if secrets_rotated {
                    (self.log)(&format!(
                        "config {}: a receiver's secret file changed; its new secret is in use",
                        self.path.display()
                    ));
                } else {
                    (self.log)(&format!(
                        "config {}: now running revision {} (was {})",
                        self.path.display(),
                        loaded.revision,
                        current.revision
                    ));
                }
                loaded
            }
            Err(e) => {
                self.refuse(&rev, &current, &e);
                current
            }
        }
    }

    fn refuse(&self, rev: &str, current: &Loaded, e: &ReloadError) {
        let error = crate::fmt::one_line(e);
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner);
        if refused.as_ref().is_some_and(|r| r.revision == rev && r.error == error) {
            return;
        }
        let retry = matches!(e, ReloadError::Receiver(_));
        *refused = Some(Refused { revision: rev.to_owned(), error: error.clone(), retry });
        drop(refused);
        (self.log)(&format!(
            "config {}: revision {rev} is not valid, still running revision {}: {error}",
            self.path.display(),
            current.revision
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    const VALID: &str = "[projects.shop]\nimage = \"r.example.com/shop\"\nport = 80\n[projects.shop.stages.dev]\n";

    fn logged() -> (Log, Arc<Mutex<Vec<String>>>) {
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&lines);
        (Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_owned())), lines)
    }

    #[test]
    fn an_edit_is_picked_up_and_an_invalid_one_is_logged_once_and_leaves_the_old_revision() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-forge.toml");
        std::fs::write(&path, VALID).unwrap();
        let (log, lines) = logged();
        let live = LiveConfig::load(&path, log).unwrap();
        let first = live.current().revision.clone();
        assert_eq!(first, revision(VALID.as_bytes()));
        assert_eq!(live.refresh().revision, first, "unchanged file, same revision");
        assert!(lines.lock().unwrap().is_empty());

        std::fs::write(&path, format!("{VALID}[projects.shop.stages.prod]\n")).unwrap();
        let second = live.refresh();
        assert_ne!(second.revision, first);
        assert_eq!(second.config.stages().len(), 2, "the new stage is known");

        std::fs::write(&path, format!("{VALID}[projects.shop.stages.prod]\nport = \"x\"\n")).unwrap();
        assert_eq!(live.refresh().revision, second.revision, "an invalid file keeps the valid revision");
        assert_eq!(live.refresh().revision, second.revision);
        let l = lines.lock().unwrap().clone();
        assert_eq!(l.iter().filter(|l| l.contains("is not valid")).count(), 1, "logged once: {l:?}");
        assert!(live.refused().is_some_and(|e| e.contains("port")), "{:?}", live.refused());

        std::fs::write(&path, VALID).unwrap();
        assert_eq!(live.refresh().revision, first);
        assert!(live.refused().is_none());
    }

    /// Adversarial review M5: a receiver's secret file rewritten (a leaked secret rotated)
    /// takes effect with the next refresh, and the old secret stops working, with the config
    /// file untouched.
    #[test]
    fn a_rotated_secret_file_replaces_the_old_secret_without_a_config_edit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-forge.toml");
        let secret = dir.path().join("hook.secret");
        std::fs::write(&secret, "old-secret\n").unwrap();
        std::fs::write(
            &path,
            format!(
                "{VALID}[[projects.shop.stages.dev.on_push]]\ntags = \"*\"\n[[receivers]]\nname = \"reg\"\nkind = \"distribution\"\nsecret_file = \"hook.secret\"\n"
            ),
        )
        .unwrap();
        let (log, lines) = logged();
        let live = LiveConfig::load(&path, log).unwrap();
        let auth = |loaded: &Loaded, token: &str| {
            let mut h = HeaderMap::new();
            h.insert("authorization", token.parse().unwrap());
            loaded.receivers[0].auth.verify(&h, None, b"{}")
        };
        assert!(auth(&live.refresh(), "old-secret"));
        std::fs::write(&secret, "new-secret\n").unwrap();
        let now = live.refresh();
        assert!(auth(&now, "new-secret"), "the rotated secret is in use");
        assert!(!auth(&now, "old-secret"), "the old secret no longer works");
        assert_eq!(now.revision, revision(&std::fs::read(&path).unwrap()), "the file's revision is unchanged");
        assert!(lines.lock().unwrap().iter().any(|l| l.contains("secret file changed")), "{lines:?}");
        // An unreadable secret keeps the last good one (and says so once).
        std::fs::remove_file(&secret).unwrap();
        assert!(auth(&live.refresh(), "new-secret"));
        assert!(auth(&live.refresh(), "new-secret"));
        assert!(live.refused().is_some_and(|e| e.contains("hook.secret")), "{:?}", live.refused());
        std::fs::write(&secret, "third\n").unwrap();
        assert!(auth(&live.refresh(), "third"));
        assert!(live.refused().is_none());
        // Second review F2: a config edit naming a secret file that does not exist yet is
        // refused, and taken once the file appears, without another edit.
        let text = std::fs::read_to_string(&path).unwrap().replace("hook.secret", "next.secret");
        std::fs::write(&path, text).unwrap();
        assert!(auth(&live.refresh(), "third"), "the last good config stays");
        assert!(live.refused().is_some_and(|e| e.contains("next.secret")), "{:?}", live.refused());
        std::fs::write(dir.path().join("next.secret"), "fourth\n").unwrap();
        assert!(auth(&live.refresh(), "fourth"), "the file appeared: the edit takes effect");
        assert!(live.refused().is_none());
    }

    fn rule(image: &str) -> PushRule {
        let c = crate::config::from_text(
            &format!(
                "[projects.a]\nimage = \"{image}\"\nport = 80\n[projects.a.stages.dev]\n[[projects.a.stages.dev.on_push]]\ntags = \"*\"\n"
            ),
            Path::new("/t/tiny-forge.toml"),
        )
        .unwrap();
        c.push_rules()[0].clone()
    }

    fn settings(kind: ReceiverKind, registry: Option<&str>) -> ReceiverSettings {
        ReceiverSettings {
            name: "r".into(),
            kind,
            secret: crate::secret::SecretSource::Env("X".into()),
            registry: registry.map(str::to_owned),
        }
    }

    #[test]
    fn a_receiver_without_registry_is_bound_to_the_one_host_its_rules_deploy_from() {
        let local = [rule("registry.local:5000/team/app"), rule("registry.local:5000/team/api")];
        let host = receiver_host(&settings(ReceiverKind::Distribution, None), &local).unwrap();
        assert_eq!(host.as_deref(), Some("registry.local:5000"));
        let mixed = [rule("registry.local:5000/team/app"), rule("ghcr.io/acme/shop")];
        let e = receiver_host(&settings(ReceiverKind::Distribution, None), &mixed).unwrap_err().to_string();
        assert!(e.contains("set `registry`") && e.contains("ghcr.io, registry.local:5000"), "{e}");
        // A configured registry wins; fixed-host kinds need none.
        let h = receiver_host(&settings(ReceiverKind::Harbor, Some("harbor.example.com")), &mixed).unwrap();
        assert_eq!(h.as_deref(), Some("harbor.example.com"));
        assert_eq!(receiver_host(&settings(ReceiverKind::Github, None), &mixed).unwrap(), None);
    }
}
