//! Which certificate authorities our HTTPS clients trust: the union of every source a user may
//! reasonably expect, so that tiny-forge works in a FROM-scratch image (no system store) as well
//! as on a host, and behind a private CA.

use std::collections::HashSet;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;

use super::HttpError;
use crate::env;

/// The roots every client built by [`crate::http`] trusts, loaded once per command. The union of:
///
/// 1. Mozilla's roots, compiled into the binary (`webpki-root-certs`), so public CAs work where
///    no system store exists (a `FROM scratch` image);
/// 2. the system store, when there is one: the directories OpenSSL searches (`/etc/ssl/certs`,
///    `/etc/pki/tls/certs`, …), so CAs an administrator installed count;
/// 3. `$SSL_CERT_FILE` (a PEM bundle) and each directory in `$SSL_CERT_DIR` (`:`-separated), as
///    OpenSSL and curl read them, except that they add to the system store instead of replacing it;
/// 4. `settings.ca_file` (a PEM bundle).
///
/// Sources 3 and 4 are the user's explicit word: a file that cannot be read, or holds no
/// certificate, or a certificate that is not a usable CA, is an error. Sources 1 and 2 are best
/// effort: an unreadable or odd system file is skipped.
#[derive(Clone)]
pub struct Trust {
    roots: Vec<CertificateDer<'static>>,
    sources: Vec<(String, usize)>,
}

impl fmt::Debug for Trust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// A place certificates come from, for counting and for messages.
struct Source<'a> {
    /// `SSL_CERT_FILE`, `settings.ca_file`, …
    origin: &'static str,
    path: &'a Path,
}

impl Trust {
    /// Loads every source above; `ca_file` is `settings.ca_file`, already made absolute.
    ///
    /// # Errors
    /// [`HttpError::CaUnreadable`], [`HttpError::CaEmpty`] or [`HttpError::CaInvalid`] for
    /// `$SSL_CERT_FILE`, `$SSL_CERT_DIR` or `ca_file`.
    pub fn load(ca_file: Option<&Path>) -> Result<Self, HttpError> {
        let system: Vec<&Path> = openssl_probe::candidate_cert_dirs().collect();
        Self::load_from(ca_file, &|name| std::env::var_os(name), &system)
    }

    /// [`Trust::load`] with the environment and the system's directories given.
    pub(super) fn load_from(
        ca_file: Option<&Path>,
        var: &dyn Fn(&str) -> Option<OsString>,
        system_dirs: &[&Path],
    ) -> Result<Self, HttpError> {
        let mut t = Collector::default();
        t.add("bundled (Mozilla)", webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().cloned(), None)?;
        let system = system_dirs
            .iter()
            .flat_map(|dir| rustls_native_certs::load_certs_from_paths(None, Some(dir)).certs)
            .collect::<Vec<_>>();
        t.add("system", system, None)?;
        if let Some(file) = var(env::SSL_CERT_FILE).filter(|v| !v.is_empty()) {
            let path = PathBuf::from(file);
            t.add_file(&Source { origin: env::SSL_CERT_FILE, path: &path }, true)?;
        }
        if let Some(dirs) = var(env::SSL_CERT_DIR) {
            for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
                t.add_file(&Source { origin: env::SSL_CERT_DIR, path: &dir }, false)?;
            }
        }
        if let Some(path) = ca_file {
            t.add_file(&Source { origin: "settings.ca_file", path }, true)?;
        }
        Ok(Self { roots: t.roots, sources: t.sources })
    }

    /// How many distinct roots are trusted.
    #[must_use]
    pub fn len(&self) -> usize {
        self.roots.len()
    }

    /// Never true: the bundled roots are always there.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.roots.is_empty()
    }

    /// One line for `check`: `150 roots: 146 bundled (Mozilla), 140 system, 1 SSL_CERT_FILE (/ca.pem)`
    /// (a root found in several sources is counted in each, once in the total).
    #[must_use]
    pub fn summary(&self) -> String {
        let parts: Vec<String> = self.sources.iter().map(|(what, n)| format!("{n} {what}")).collect();
        format!("{} roots: {}", self.roots.len(), parts.join(", "))
    }

    pub(super) fn certificates(&self) -> impl Iterator<Item = &CertificateDer<'static>> {
        self.roots.iter()
    }
}

struct Collector {
    store: RootCertStore,
    seen: HashSet<CertificateDer<'static>>,
    roots: Vec<CertificateDer<'static>>,
    sources: Vec<(String, usize)>,
}

impl Default for Collector {
    fn default() -> Self {
        Self { store: RootCertStore::empty(), seen: HashSet::new(), roots: Vec::new(), sources: Vec::new() }
    }
}

impl Collector {
    /// Adds `certs`; with `strict` (a user's file), a certificate that is not a usable trust
    /// anchor is an error, else it is skipped.
    fn add(
        &mut self,
        what: &str,
        certs: impl IntoIterator<Item = CertificateDer<'static>>,
        strict: Option<&Source<'_>>,
    ) -> Result<usize, HttpError> {
        let mut mine = HashSet::new();
        for cert in certs {
            if self.seen.contains(&cert) {
                mine.insert(cert);
                continue;
            }
            match self.store.add(cert.clone()) {
                Ok(()) => {
                    self.seen.insert(cert.clone());
                    self.roots.push(cert.clone());
                    mine.insert(cert);
                }
                Err(e) => {
                    if let Some(s) = strict {
                        return Err(HttpError::CaInvalid { origin: s.origin, path: s.path.to_path_buf(), source: e });
                    }
                }
            }
        }
        self.sources.push((what.to_owned(), mine.len()));
        Ok(mine.len())
    }

    /// A PEM bundle (`file`) or a directory of PEM files.
    fn add_file(&mut self, s: &Source<'_>, file: bool) -> Result<(), HttpError> {
        let unreadable = |e| HttpError::CaUnreadable { origin: s.origin, path: s.path.to_path_buf(), source: e };
        let loaded = if file {
            rustls_native_certs::load_certs_from_paths(Some(s.path), None)
        } else {
            rustls_native_certs::load_certs_from_paths(None, Some(s.path))
        };
        if let Some(e) = loaded.errors.into_iter().next() {
            return Err(unreadable(e));
        }
        let n = self.add(&format!("{} ({})", s.origin, s.path.display()), loaded.certs, Some(s))?;
        if file && n == 0 {
            return Err(HttpError::CaEmpty { origin: s.origin, path: s.path.to_path_buf() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::tests::TestCa;

    fn no_env(_: &str) -> Option<OsString> {
        None
    }

    #[test]
    fn issue_16_without_a_system_store_the_bundled_roots_are_trusted() {
        let t = Trust::load_from(None, &no_env, &[]).unwrap();
        assert!(t.len() > 100, "{}", t.summary());
        assert!(t.summary().contains("bundled (Mozilla)") && t.summary().contains("0 system"), "{}", t.summary());
        crate::http::direct(&t).expect("a client builds with no system store");
    }

    #[test]
    fn ssl_cert_file_ssl_cert_dir_and_ca_file_all_add_to_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (TestCa::new("a"), TestCa::new("b"), TestCa::new("c"));
        let file = dir.path().join("a.pem");
        std::fs::write(&file, a.pem()).unwrap();
        let certs = dir.path().join("certs");
        std::fs::create_dir(&certs).unwrap();
        std::fs::write(certs.join("b.pem"), b.pem()).unwrap();
        let ca_file = dir.path().join("c.pem");
        std::fs::write(&ca_file, c.pem()).unwrap();
        let bundled = Trust::load_from(None, &no_env, &[]).unwrap().len();

        let var = |name: &str| match name {
            env::SSL_CERT_FILE => Some(file.clone().into_os_string()),
            env::SSL_CERT_DIR => Some(OsString::from(format!("/nonexistent-dir::{}", certs.display()))),
            _ => None,
        };
        // An empty entry is skipped; a missing directory is the user's mistake, and named.
        let err = Trust::load_from(Some(&ca_file), &var, &[]).unwrap_err().to_string();
        assert!(err.contains("SSL_CERT_DIR") && err.contains("/nonexistent-dir"), "{err}");

        let var = |name: &str| match name {
            env::SSL_CERT_FILE => Some(file.clone().into_os_string()),
            env::SSL_CERT_DIR => Some(certs.clone().into_os_string()),
            _ => None,
        };
        let t = Trust::load_from(Some(&ca_file), &var, &[]).unwrap();
        assert_eq!(t.len(), bundled + 3, "{}", t.summary());
        for what in ["1 SSL_CERT_FILE", "1 SSL_CERT_DIR", "1 settings.ca_file"] {
            assert!(t.summary().contains(what), "{what}: {}", t.summary());
        }
        // The system store counts too, and a root found twice is trusted once.
        let t = Trust::load_from(Some(&ca_file), &var, &[&certs]).unwrap();
        assert_eq!(t.len(), bundled + 3, "{}", t.summary());
        assert!(t.summary().contains("1 system"), "{}", t.summary());
    }

    #[test]
    fn a_ca_file_that_is_missing_or_holds_no_certificate_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = Trust::load_from(Some(&missing), &no_env, &[]).unwrap_err();
        assert!(matches!(err, HttpError::CaUnreadable { origin: "settings.ca_file", .. }), "{err:?}");
        assert!(err.to_string().contains("missing.pem"), "{err}");

        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = Trust::load_from(Some(&empty), &no_env, &[]).unwrap_err();
        assert!(matches!(err, HttpError::CaEmpty { origin: "settings.ca_file", .. }), "{err:?}");

        let var = |name: &str| (name == env::SSL_CERT_FILE).then(|| missing.clone().into_os_string());
        let err = Trust::load_from(None, &var, &[]).unwrap_err();
        assert!(matches!(err, HttpError::CaUnreadable { origin: "SSL_CERT_FILE", .. }), "{err:?}");
    }

    #[test]
    fn an_unreadable_system_directory_is_skipped() {
        let t = Trust::load_from(None, &no_env, &[Path::new("/nonexistent/certs")]).unwrap();
        assert!(t.summary().contains("0 system"), "{}", t.summary());
    }
}
