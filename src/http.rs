//! The one HTTP client: proxies' APIs, webhooks and the health prober share its connection pool.
//! TLS is rustls with the `ring` provider (no C toolchain beyond what `ring` needs) and the
//! platform's certificate store.

use std::time::Duration;

/// Builds the shared client. Requests set their own timeouts; this one bounds connecting.
///
/// # Errors
/// When the TLS backend cannot initialise.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    // Installing twice is harmless: the second call reports the provider already set.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent(concat!("tiny-forge/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(5))
        .pool_idle_timeout(Duration::from_secs(30))
        .no_proxy()
        .build()
}
