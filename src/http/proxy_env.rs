//! The outbound proxy the environment asks for (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`,
//! `NO_PROXY`), read once, checked, and shown with its credentials masked.

use std::fmt;

use super::HttpError;
use crate::env;

/// The proxy settings of the environment, read as docker (and Go) and reqwest read them: the
/// upper-case variable first, then the lower-case one; `HTTPS_PROXY` for `https://` URLs,
/// `HTTP_PROXY` for `http://` URLs, `ALL_PROXY` for either when its own is unset; an empty value
/// counts as unset. `NO_PROXY` is a comma-separated list of hosts and domains (each with its
/// subdomains), IP addresses, CIDR ranges, or `*`, reached directly; so is loopback, always
/// (`localhost`, `127.0.0.0/8`, `::1`), as docker does.
///
/// `Debug` and [`ProxyEnv::describe`] never show a password or user name from a proxy URL.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ProxyEnv {
    https: Option<ProxyVar>,
    http: Option<ProxyVar>,
    no_proxy: Option<ProxyVar>,
}

/// One variable's value and its name, for messages.
#[derive(Clone, PartialEq, Eq)]
pub(super) struct ProxyVar {
    pub(super) name: &'static str,
    pub(super) value: String,
}

impl fmt::Debug for ProxyEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProxyEnv({})", self.describe())
    }
}

impl ProxyEnv {
    /// This process's proxy variables.
    #[must_use]
    pub fn from_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// No proxy at all: every request goes direct.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// Reads the variables through `var` (the environment, or a test's table).
    pub fn from_lookup(var: impl Fn(&str) -> Option<String>) -> Self {
        let first = |names: [&'static str; 2]| {
            names.into_iter().find_map(|name| {
                let value = var(name)?.trim().to_owned();
                (!value.is_empty()).then_some(ProxyVar { name, value })
            })
        };
        let all = first([env::ALL_PROXY, env::ALL_PROXY_LOWER]);
        Self {
            https: first([env::HTTPS_PROXY, env::HTTPS_PROXY_LOWER]).or_else(|| all.clone()),
            http: first([env::HTTP_PROXY, env::HTTP_PROXY_LOWER]).or(all),
            no_proxy: first([env::NO_PROXY, env::NO_PROXY_LOWER]),
        }
    }

    pub(super) fn https(&self) -> Option<&ProxyVar> {
        self.https.as_ref()
    }

    pub(super) fn http(&self) -> Option<&ProxyVar> {
        self.http.as_ref()
    }

    /// `NO_PROXY`, if set.
    pub(super) fn no_proxy(&self) -> Option<&str> {
        self.no_proxy.as_ref().map(|v| v.value.as_str())
    }

    /// What reaches a host directly: `NO_PROXY` plus loopback, which docker (and Go) never
    /// send through a proxy either: an NPM or Caddy on this host must not depend on the
    /// corporate proxy knowing about it.
    pub(super) fn bypass(&self) -> String {
        let loopback = "localhost,127.0.0.0/8,::1";
        match self.no_proxy() {
            Some(no) => format!("{no},{loopback}"),
            None => loopback.to_owned(),
        }
    }

    /// One line for `check`, credentials masked: `https via http://***@proxy:3128 (HTTPS_PROXY),
    /// http direct; not for .internal (NO_PROXY) or loopback`, or `direct (no HTTPS_PROXY,
    /// HTTP_PROXY or ALL_PROXY set)`.
    #[must_use]
    pub fn describe(&self) -> String {
        if self.https.is_none() && self.http.is_none() {
            return "direct (no HTTPS_PROXY, HTTP_PROXY or ALL_PROXY set)".to_owned();
        }
        let route = |scheme: &str, v: Option<&ProxyVar>| match v {
            Some(v) => format!("{scheme} via {} ({})", crate::fmt::redact_url(&v.value), v.name),
            None => format!("{scheme} direct"),
        };
        let line = format!("{}, {}", route("https", self.https.as_ref()), route("http", self.http.as_ref()));
        match &self.no_proxy {
            Some(no) => format!("{line}; not for {} ({}) or loopback", no.value, no.name),
            None => format!("{line}; not for loopback"),
        }
    }

    /// `var`'s value as a URL reqwest can use: `http` or `https`, a host, `http://` assumed when
    /// the scheme is missing (as curl does).
    pub(super) fn url(var: &ProxyVar) -> Result<reqwest::Url, HttpError> {
        let bad = || HttpError::ProxyUrl { var: var.name, shown: crate::fmt::redact_url(&var.value) };
        let text = if var.value.contains("://") { var.value.clone() } else { format!("http://{}", var.value) };
        let url = reqwest::Url::parse(&text).map_err(|_| bad())?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(bad());
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(vars: &[(&str, &str)]) -> ProxyEnv {
        ProxyEnv::from_lookup(|name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| (*v).to_owned()))
    }

    #[test]
    fn upper_case_wins_then_lower_case_and_all_proxy_fills_in() {
        let e = from(&[("HTTPS_PROXY", "http://a:1"), ("https_proxy", "http://b:1"), ("http_proxy", "http://c:1")]);
        assert_eq!(e.https().map(|v| (v.name, v.value.as_str())), Some(("HTTPS_PROXY", "http://a:1")));
        assert_eq!(e.http().map(|v| (v.name, v.value.as_str())), Some(("http_proxy", "http://c:1")));
        assert_eq!(e.no_proxy(), None);

        let e = from(&[("all_proxy", "http://d:1"), ("HTTP_PROXY", " "), ("no_proxy", "localhost,.internal")]);
        assert_eq!(e.https().map(|v| v.name), Some("all_proxy"));
        assert_eq!(e.http().map(|v| v.name), Some("all_proxy"), "an empty value counts as unset");
        assert_eq!(e.no_proxy(), Some("localhost,.internal"));
        assert_eq!(from(&[]), ProxyEnv::none());
    }

    #[test]
    fn credentials_never_show_in_describe_debug_or_errors() {
        let e = from(&[("HTTPS_PROXY", "http://alice:s3cret@proxy.corp:3128"), ("NO_PROXY", "localhost")]);
        let shown = format!("{} {e:?}", e.describe());
        assert!(!shown.contains("s3cret") && !shown.contains("alice"), "{shown}");
        assert!(shown.contains("https via http://proxy.corp:3128 (HTTPS_PROXY), http direct"), "{shown}");
        assert!(shown.contains("not for localhost (NO_PROXY) or loopback"), "{shown}");

        for bad in ["ftp://alice:s3cret@proxy:21", "http://alice:s3cret@", "alice:s3cret@[::1"] {
            let var = ProxyVar { name: "HTTPS_PROXY", value: bad.to_owned() };
            let err = ProxyEnv::url(&var).unwrap_err().to_string();
            assert!(err.contains("HTTPS_PROXY") && !err.contains("s3cret") && !err.contains("alice"), "{err}");
        }
    }

    #[test]
    fn a_scheme_less_value_means_http_and_other_schemes_are_refused() {
        let url = |v: &str| ProxyEnv::url(&ProxyVar { name: "HTTP_PROXY", value: v.to_owned() });
        assert_eq!(url("proxy:3128").unwrap().as_str(), "http://proxy:3128/");
        assert_eq!(url("https://proxy:443").unwrap().scheme(), "https");
        assert!(url("socks5://proxy:1080").is_err(), "socks is not built in");
    }
}
