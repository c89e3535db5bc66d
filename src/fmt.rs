//! How tiny-forge writes things for people: an error with its causes on one line, durations and
//! sizes the way they are configured and shown, timestamps, and URLs with nothing secret in
//! them. Leaf module: it imports nothing of the crate, so every module may use it.

/// An error and its causes on one line, joined by `: ` (causes already in the message are not
/// repeated).
#[must_use]
pub fn one_line(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        src = s.source();
    }
    out
}

/// A configured duration the way people write it: `90d`, `7d`, `36h`, `15m`, `30s`.
#[must_use]
pub fn span(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{}d", s / 86_400),
        _ if s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{s}s"),
    }
}

/// `512 B`, `3.4 MB`, `1.2 GB` (decimal units, as `docker images` shows them).
#[must_use]
#[allow(clippy::cast_precision_loss, reason = "a size shown to a person")]
pub fn bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match bytes {
        0..1_000 => format!("{bytes} B"),
        1_000..1_000_000 => format!("{:.1} kB", b / 1e3),
        1_000_000..1_000_000_000 => format!("{:.1} MB", b / 1e6),
        _ => format!("{:.2} GB", b / 1e9),
    }
}

/// `812ms`, `2.4s`, `1m 3s`.
#[must_use]
#[allow(clippy::cast_precision_loss, reason = "a duration shown to a person")]
pub fn millis(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        _ => format!("{}m {}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// RFC 3339 with milliseconds, UTC, of Unix milliseconds.
#[must_use]
pub fn rfc3339(ts_ms: i64) -> String {
    let t = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(ts_ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// A URL as messages show it: its scheme, host and port, and nothing else. A user name and
/// password, a path (a chat webhook's token is in its path) and a query never reach a message.
/// A value that is not a URL with a host (a proxy variable written `user:pw@host:3128`) shows
/// what follows its last `@`, up to a `/`: over-masks rather than leaks.
#[must_use]
pub fn redact_url(value: &str) -> String {
    if let Ok(u) = reqwest::Url::parse(value)
        && let Some(host) = u.host_str()
    {
        let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
        return format!("{}://{host}{port}", u.scheme());
    }
    let rest = value.rsplit_once('@').map_or(value, |(_, h)| h);
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or_default().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_shows_only_its_scheme_host_and_port() {
        for (given, shown) in [
            ("http://admin:hunter2@127.0.0.1:81", "http://127.0.0.1:81"),
            ("http://127.0.0.1:81", "http://127.0.0.1:81"),
            ("https://u:pw@npm.example.com/x", "https://npm.example.com"),
            ("https://hooks.slack.com/services/T000/B000/XXXX", "https://hooks.slack.com"),
            ("http://u:p@h:3128", "http://h:3128"),
            ("u:p@h:3128", "h:3128"),
            ("http://u:p/w@rd@h:3128/", "h:3128"),
            ("http://h:3128", "http://h:3128"),
        ] {
            assert_eq!(redact_url(given), shown, "{given}");
            for secret in ["hunter2", "pw", "XXXX", "u:p"] {
                assert!(!redact_url(given).contains(secret), "{given}");
            }
        }
    }

    #[test]
    fn sizes_and_spans_read_as_people_write_them() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(3_400_000), "3.4 MB");
        assert_eq!(span(std::time::Duration::from_secs(7 * 86_400)), "7d");
        assert_eq!(millis(812), "812ms");
        assert_eq!(millis(2_400), "2.4s");
        assert_eq!(millis(63_000), "1m 3s");
    }
}
