//! Webhook bodies `tiny-forge serve` has received, per receiver, by SHA-256: what makes a
//! replayed notification a replay, also after a restart. Rows older than
//! [`DELIVERY_RETENTION`] are forgotten as new ones arrive (an index on the time keeps that
//! cheap).

use std::time::Duration;

use rusqlite::params;

use super::sqlite::q;
use super::{SqliteStore, StoreError, now_ms};

/// How long a received body is remembered.
pub const DELIVERY_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

impl SqliteStore {
    /// Records that `receiver` received a body whose SHA-256 is `body_sha256` (hex); `false`
    /// when it had received that body before (within [`DELIVERY_RETENTION`]).
    ///
    /// # Errors
    /// On any `SQLite` failure (the caller must not take the body as new then).
    pub fn first_delivery(&self, receiver: &str, body_sha256: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let horizon = now.saturating_sub(i64::try_from(DELIVERY_RETENTION.as_millis()).unwrap_or(i64::MAX));
        self.conn
            .execute("DELETE FROM webhook_deliveries WHERE received_at < ?1", [horizon])
            .map_err(q("forget old webhook deliveries"))?;
        let n = self
            .conn
            .execute(
                "INSERT OR IGNORE INTO webhook_deliveries (receiver, body_sha256, received_at) VALUES (?1, ?2, ?3)",
                params![receiver, body_sha256, now],
            )
            .map_err(q("record a webhook delivery"))?;
        Ok(n == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_new_once_per_receiver_and_the_record_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let s = SqliteStore::open(&path).unwrap();
        assert!(s.first_delivery("registry", "aa").unwrap());
        assert!(!s.first_delivery("registry", "aa").unwrap(), "a replay");
        assert!(s.first_delivery("other", "aa").unwrap(), "per receiver");
        drop(s);
        let s = SqliteStore::open(&path).unwrap();
        assert!(!s.first_delivery("registry", "aa").unwrap(), "still a replay after a restart");
    }
}
