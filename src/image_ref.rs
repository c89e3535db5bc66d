//! One parsed image reference, used everywhere an image is named: the config's repository, the
//! pull, the digest checks, image GC, the registry paths and the push receivers.
//!
//! The engine and registries speak of one repository in several spellings: Docker Hub's
//! `nginx`, `library/nginx`, `docker.io/library/nginx` and `index.docker.io/library/nginx` are
//! one repository, and the engine reports `RepoDigests` in the *familiar* form (`nginx@…`,
//! `acme/shop@…`) whatever was pulled. So references are compared by their canonical form
//! (`docker.io/library/nginx`), the normalisation of Docker's `distribution/reference`
//! (`ParseNormalizedNamed`): no registry host (a first component without `.` or `:` that is
//! not `localhost`) means `docker.io`; Docker Hub's other host names are `docker.io`; a
//! one-component Docker Hub path is under `library/`.

use std::fmt;

/// Docker Hub's canonical registry host.
pub const DOCKER_HUB: &str = "docker.io";

/// Why a string is not a repository reference.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{reference}` is not an image reference: {reason}")]
pub struct ImageRefError {
    /// What was given.
    pub reference: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// A repository: where images of one project come from, without tag or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ImageRef {
    /// As written (in the config): what is shown, recorded and pulled.
    written: String,
    /// The registry host (with its port), normalised: `docker.io` for Docker Hub.
    domain: String,
    /// The path in the registry, normalised: `library/nginx` for Docker Hub's `nginx`.
    path: String,
}

/// A full reference: a repository with a tag, a digest, or both (`repo:tag@sha256:…`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    /// The repository.
    pub repo: ImageRef,
    /// The tag, if any.
    pub tag: Option<String>,
    /// The digest (`sha256:…`), if any.
    pub digest: Option<String>,
}

impl ImageRef {
    /// Parses a repository without tag or digest (`registry.example.com:5000/team/shop`).
    ///
    /// # Errors
    /// When it is empty, carries a tag or digest, or is not lowercase `[a-z0-9._-]` components.
    pub fn parse(repo: &str) -> Result<Self, ImageRefError> {
        let fail = |reason| Err(ImageRefError { reference: repo.to_owned(), reason });
        if repo.is_empty() {
            return fail("it is empty");
        }
        if repo.contains('@') {
            return fail("a repository carries no digest");
        }
        let (domain, path) = split_domain(repo);
        if path.contains(':') {
            return fail("a repository carries no tag");
        }
        if domain.is_empty() || domain.contains(['/', '@']) || domain.starts_with(':') || domain.ends_with(':') {
            return fail("its registry host is not a host name");
        }
        if path.is_empty()
            || path.split('/').any(|c| {
                c.is_empty()
                    || !c.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
                    || !c.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
                    || !c.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
            })
        {
            return fail("its path must be lowercase components of a-z, 0-9, `.`, `_` and `-`, separated by `/`");
        }
        let domain = match domain.to_ascii_lowercase().as_str() {
            "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => DOCKER_HUB.to_owned(),
            d => d.to_owned(),
        };
        let path =
            if domain == DOCKER_HUB && !path.contains('/') { format!("library/{path}") } else { path.to_owned() };
        Ok(Self { written: repo.to_owned(), domain, path })
    }

    /// As written: what is shown, recorded and pulled.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.written
    }

    /// The registry host (with its port), `docker.io` for Docker Hub.
    #[must_use]
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The path in the registry (`library/nginx`, `team/shop`).
    #[must_use]
    pub fn path(&self) -> &str {
        &self.path
    }

    /// `docker.io/library/nginx`: what two spellings of one repository have in common.
    #[must_use]
    pub fn canonical(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The engine's familiar form, as in `RepoDigests` and `RepoTags` (`nginx`, `acme/shop`,
    /// `127.0.0.1:5000/shop`).
    #[must_use]
    pub fn familiar(&self) -> String {
        if self.domain != DOCKER_HUB {
            return self.canonical();
        }
        self.path.strip_prefix("library/").filter(|p| !p.contains('/')).unwrap_or(&self.path).to_owned()
    }

    /// The registry host when the reference names one (what credentials are looked up by);
    /// `None` for Docker Hub spelled without a host.
    #[must_use]
    pub fn explicit_registry(&self) -> Option<&str> {
        registry_host(&self.written)
    }

    /// Is `other` (in any spelling, with or without tag or digest) this repository?
    #[must_use]
    pub fn is(&self, other: &str) -> bool {
        Reference::parse(other).is_ok_and(|r| r.repo.canonical() == self.canonical())
    }

    /// `repo:tag`, as written.
    #[must_use]
    pub fn tagged(&self, tag: &str) -> String {
        format!("{}:{tag}", self.written)
    }

    /// `repo@sha256:…`, as written.
    #[must_use]
    pub fn at_digest(&self, digest: &str) -> String {
        format!("{}@{digest}", self.written)
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.written)
    }
}

impl Reference {
    /// Parses `repo`, `repo:tag`, `repo@sha256:…` or `repo:tag@sha256:…`.
    ///
    /// # Errors
    /// When the repository is not one, or the tag or digest is malformed.
    pub fn parse(reference: &str) -> Result<Self, ImageRefError> {
        let fail = |reason| Err(ImageRefError { reference: reference.to_owned(), reason });
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => {
                let ok = d.split_once(':').is_some_and(|(alg, hex)| {
                    !alg.is_empty() && !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit())
                });
                if !ok {
                    return fail("its digest is not `algorithm:hex`");
                }
                (r, Some(d.to_owned()))
            }
            None => (reference, None),
        };
        // A tag is after the last `:` of the last component (a `:` before a `/` is a port).
        let (repo, tag) = match rest.rsplit_once(':') {
            Some((r, t)) if !t.contains('/') => (r, Some(t.to_owned())),
            _ => (rest, None),
        };
        if let Some(t) = &tag
            && (t.is_empty()
                || t.len() > 128
                || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                || t.starts_with(['.', '-']))
        {
            return fail("its tag is not `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`");
        }
        Ok(Self { repo: ImageRef::parse(repo)?, tag, digest })
    }
}

/// The registry host `reference` names, as written (what credentials are filed under); `None`
/// for Docker Hub, in any spelling (its credentials are filed under Docker's own key).
#[must_use]
pub fn registry_host(reference: &str) -> Option<&str> {
    let (domain, _) = split_domain(reference);
    let hub = matches!(
        domain.to_ascii_lowercase().as_str(),
        DOCKER_HUB | "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com"
    );
    (!hub).then_some(domain)
}

/// Splits a repository into its registry host and path the way Docker does: the first
/// component is a host when it holds a `.` or a `:`, or is `localhost`; else the host is Docker
/// Hub's.
fn split_domain(repo: &str) -> (&str, &str) {
    match repo.split_once('/') {
        Some((first, rest)) if first.contains(['.', ':']) || first == "localhost" => (first, rest),
        _ => (DOCKER_HUB, repo),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        Reference::parse(s).unwrap().repo.canonical()
    }

    #[test]
    fn docker_hub_spellings_are_one_repository() {
        for s in
            ["nginx", "library/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx", "docker.io/nginx"]
        {
            assert_eq!(canon(s), "docker.io/library/nginx", "{s}");
            assert_eq!(ImageRef::parse(s).unwrap().familiar(), "nginx", "{s}");
        }
        for s in ["acme/shop", "docker.io/acme/shop", "registry-1.docker.io/acme/shop"] {
            assert_eq!(canon(s), "docker.io/acme/shop", "{s}");
            assert_eq!(ImageRef::parse(s).unwrap().familiar(), "acme/shop", "{s}");
        }
    }

    #[test]
    fn a_host_is_a_first_component_with_a_dot_or_a_port_or_localhost() {
        assert_eq!(canon("registry:5000/a/b"), "registry:5000/a/b");
        assert_eq!(canon("127.0.0.1:5000/shop:v1"), "127.0.0.1:5000/shop");
        assert_eq!(canon("localhost/app"), "localhost/app");
        assert_eq!(canon("ghcr.io/acme/app"), "ghcr.io/acme/app");
        assert_eq!(ImageRef::parse("registry:5000/a/b").unwrap().familiar(), "registry:5000/a/b");
    }

    #[test]
    fn tags_and_digests_come_apart_from_the_repository() {
        let r = Reference::parse("a/b:tag@sha256:abc123").unwrap();
        assert_eq!(
            (r.repo.canonical().as_str(), r.tag.as_deref(), r.digest.as_deref()),
            ("docker.io/a/b", Some("tag"), Some("sha256:abc123"))
        );
        let r = Reference::parse("127.0.0.1:5000/shop@sha256:ff").unwrap();
        assert_eq!((r.tag, r.digest.as_deref()), (None, Some("sha256:ff")));
        assert_eq!(Reference::parse("127.0.0.1:5000/shop").unwrap().tag, None, "the port is not a tag");
    }

    #[test]
    fn what_is_not_a_repository_is_refused_with_why() {
        for bad in ["", "Shop", "shop:v1", "a//b", "shop@sha256:x", "-a/b", "a/b-", ":5000/a"] {
            assert!(ImageRef::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert!(Reference::parse("a/b@md5").is_err());
        assert!(Reference::parse("a/b:-x").is_err());
    }

    #[test]
    fn docker_hub_credentials_are_looked_up_under_docker_s_key_in_any_spelling() {
        assert_eq!(registry_host("docker.io/acme/shop"), None);
        assert_eq!(registry_host("index.docker.io/acme/shop:v1"), None);
        assert_eq!(registry_host("acme/shop"), None);
        assert_eq!(registry_host("127.0.0.1:5000/shop"), Some("127.0.0.1:5000"));
        assert_eq!(registry_host("ghcr.io/acme/shop@sha256:ab"), Some("ghcr.io"));
    }

    #[test]
    fn is_compares_any_spelling() {
        let hub = ImageRef::parse("docker.io/library/nginx").unwrap();
        assert!(hub.is("nginx@sha256:ab"));
        assert!(hub.is("library/nginx:1.27"));
        assert!(!hub.is("acme/nginx"));
        assert_eq!(hub.at_digest("sha256:ab"), "docker.io/library/nginx@sha256:ab");
        assert_eq!(hub.tagged("1.27"), "docker.io/library/nginx:1.27");
    }

    proptest::proptest! {
        /// Docker's familiar form and the canonical one name the same repository, and parsing
        /// any of them (with a tag or a digest) gives it back.
        #[test]
        fn familiar_and_canonical_forms_round_trip(
            host in proptest::option::of("(localhost|[a-z][a-z0-9]{0,8}\\.[a-z]{2,4}|[a-z][a-z0-9]{0,8}:[1-9][0-9]{0,4})"),
            parts in proptest::collection::vec("[a-z0-9]([a-z0-9._-]{0,6}[a-z0-9])?", 1..4),
            tag in proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
        ) {
            let path = parts.join("/");
            let written = match &host { Some(h) => format!("{h}/{path}"), None => path.clone() };
            let repo = ImageRef::parse(&written).unwrap();
            for spelling in [repo.canonical(), repo.familiar(), written.clone()] {
                proptest::prop_assert_eq!(ImageRef::parse(&spelling).unwrap().canonical(), repo.canonical());
            }
            if let Some(t) = tag {
                let r = Reference::parse(&format!("{}:{t}", repo.familiar())).unwrap();
                proptest::prop_assert_eq!(r.repo.canonical(), repo.canonical());
                proptest::prop_assert_eq!(r.tag.as_deref(), Some(t.as_str()));
            }
            if host.is_none() && !parts[0].contains('.') {
                proptest::prop_assert!(repo.canonical().starts_with("docker.io/"));
            }
        }
    }
}
