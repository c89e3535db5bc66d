//! The one HTTP client: proxies' APIs, webhooks and the health prober share its connection pool.

use std::time::Duration;

/// Builds the shared client. Requests set their own timeouts; this one bounds connecting.
///
/// # Errors
/// When the TLS backend cannot initialise.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .user_agent(concat!("tiny-forge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
}
