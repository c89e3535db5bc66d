//! API tokens of `tiny-forge serve`, in the state file: a name, a scope and the SHA-256 of the
//! token. The token itself is never stored; `server::auth` makes and checks tokens, this only
//! keeps rows. The web page's sign-in sessions live here too: a session is the SHA-256 of a
//! random id, the token it was opened with, and when it ends; it never outlives its token.

use rusqlite::{OptionalExtension as _, params};

use super::sqlite::q;
use super::{SqliteStore, StoreError, now_ms};

/// A stored token (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct TokenRecord {
    /// Row id.
    pub id: i64,
    /// Its unique name (among live tokens); deploys record it as their actor.
    pub name: String,
    /// Lowercase hex SHA-256 of the token.
    #[serde(skip)]
    pub hash: String,
    /// Projects it may act on; empty: any.
    pub projects: Vec<String>,
    /// Stages it may act on; empty: any.
    pub stages: Vec<String>,
    /// Actions it may take (`deploy`, `rollback`, `remove`, `read`).
    pub actions: Vec<String>,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Unix milliseconds of its last successful use.
    pub last_used_at: Option<i64>,
    /// Unix milliseconds; `None` while it is valid.
    pub revoked_at: Option<i64>,
}

/// A token about to be stored.
#[derive(Debug, Clone)]
pub struct NewToken<'a> {
    /// Its name.
    pub name: &'a str,
    /// Lowercase hex SHA-256 of the token.
    pub hash: &'a str,
    /// Projects; empty: any.
    pub projects: &'a [String],
    /// Stages; empty: any.
    pub stages: &'a [String],
    /// Actions.
    pub actions: &'a [String],
}

fn list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A list column: a JSON array of names. One that does not parse is an error, never "none":
/// an empty list means "any", so a corrupted scope must not read as full access.
fn unlist(r: &rusqlite::Row<'_>, column: &'static str) -> rusqlite::Result<Vec<String>> {
    super::sqlite::rows::parsed(r, "tokens", column, |s| serde_json::from_str(s).ok())
}

const COLS: &str = "id, name, hash, projects, stages, actions, created_at, last_used_at, revoked_at";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        hash: r.get(2)?,
        projects: unlist(r, "projects")?,
        stages: unlist(r, "stages")?,
        actions: unlist(r, "actions")?,
        created_at: r.get(6)?,
        last_used_at: r.get(7)?,
        revoked_at: r.get(8)?,
    })
}

impl SqliteStore {
    /// Stores a new token. `Ok(false)` when a live token already has that name.
    ///
    /// # Errors
    /// On any other `SQLite` failure.
    pub fn create_token(&self, t: &NewToken<'_>) -> Result<bool, StoreError> {
        let taken: Option<i64> = self
            .conn
            .query_row("SELECT id FROM tokens WHERE name = ?1 AND revoked_at IS NULL", [t.name], |r| r.get(0))
            .optional()
            .map_err(q("look up token name"))?;
        if taken.is_some() {
            return Ok(false);
        }
        self.conn
            .execute(
                "INSERT INTO tokens (name, hash, projects, stages, actions, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![t.name, t.hash, list(t.projects), list(t.stages), list(t.actions), now_ms()],
            )
            .map_err(q("store token"))?;
        Ok(true)
    }

    /// Every token, live and revoked, oldest first.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut stmt =
            self.conn.prepare_cached(&format!("SELECT {COLS} FROM tokens ORDER BY id")).map_err(q("list tokens"))?;
        let rows = stmt.query_map([], row).map_err(q("list tokens"))?;
        rows.collect::<Result<_, _>>().map_err(q("list tokens"))
    }

    /// The live tokens (the server compares a presented token's hash with each, in constant time).
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn live_tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!("SELECT {COLS} FROM tokens WHERE revoked_at IS NULL ORDER BY id"))
            .map_err(q("list tokens"))?;
        let rows = stmt.query_map([], row).map_err(q("list tokens"))?;
        rows.collect::<Result<_, _>>().map_err(q("list tokens"))
    }

    /// Revokes the live token named `name` and ends its web sessions, in one transaction;
    /// `false` when there is none.
    ///
    /// # Errors
    /// On any `SQLite` failure; nothing is changed then.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let tx = self.conn.unchecked_transaction().map_err(q("revoke token"))?;
        tx.execute(
            "DELETE FROM ui_sessions WHERE token_id IN (SELECT id FROM tokens WHERE name = ?1 AND revoked_at IS NULL)",
            [name],
        )
        .map_err(q("end the token's sessions"))?;
        let n = tx
            .execute(
                "UPDATE tokens SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
                params![now_ms(), name],
            )
            .map_err(q("revoke token"))?;
        tx.commit().map_err(q("revoke token"))?;
        Ok(n > 0)
    }

    /// Opens a web session: `hash` (the SHA-256 of its random id) for token `token_id`, until
    /// `expires_at` (Unix milliseconds). Sessions that have ended are deleted on the way.
    ///
    /// # Errors
    /// On any `SQLite` failure (a `hash` already stored included).
    pub fn create_session(&self, hash: &str, token_id: i64, expires_at: i64) -> Result<(), StoreError> {
        let now = now_ms();
        let tx = self.conn.unchecked_transaction().map_err(q("open session"))?;
        tx.execute("DELETE FROM ui_sessions WHERE expires_at <= ?1", [now]).map_err(q("end expired sessions"))?;
        tx.execute(
            "INSERT INTO ui_sessions (hash, token_id, created_at, expires_at) VALUES (?1, ?2, ?3, ?4)",
            params![hash, token_id, now, expires_at],
        )
        .map_err(q("open session"))?;
        tx.commit().map_err(q("open session"))
    }

    /// The live token of the session whose id hashes to `hash`, if that session has not ended
    /// at `now_ms` and its token is not revoked. (A lookup by the hash of a 256-bit random id:
    /// how long it takes tells nothing about another session's id.)
    ///
    /// # Errors
    /// On any `SQLite` failure; [`StoreError::Corrupt`] when the token's scope does not parse.
    pub fn session_token(&self, hash: &str, now_ms: i64) -> Result<Option<TokenRecord>, StoreError> {
        let cols = COLS.split(", ").map(|c| format!("t.{c}")).collect::<Vec<_>>().join(", ");
        self.conn
            .query_row(
                &format!(
                    "SELECT {cols} FROM ui_sessions s JOIN tokens t ON t.id = s.token_id
                     WHERE s.hash = ?1 AND s.expires_at > ?2 AND t.revoked_at IS NULL"
                ),
                params![hash, now_ms],
                row,
            )
            .optional()
            .map_err(q("read session"))
    }

    /// Ends the session whose id hashes to `hash`; `false` when there was none.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn delete_session(&self, hash: &str) -> Result<bool, StoreError> {
        let n = self.conn.execute("DELETE FROM ui_sessions WHERE hash = ?1", [hash]).map_err(q("end session"))?;
        Ok(n > 0)
    }

    /// Records a successful use of token `id`.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn touch_token(&self, id: i64) -> Result<(), StoreError> {
        self.conn
            .execute("UPDATE tokens SET last_used_at = ?1 WHERE id = ?2", params![now_ms(), id])
            .map_err(q("record token use"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scope the state file cannot read must not read as "any project": the token is refused
    /// (the request fails), never widened.
    #[test]
    fn a_token_scope_that_does_not_parse_is_an_error_never_full_access() {
        let s = SqliteStore::in_memory().unwrap();
        let read = ["read".to_owned()];
        let only = ["shop".to_owned()];
        let t = NewToken { name: "ci", hash: "aa", projects: &only, stages: &[], actions: &read };
        assert!(s.create_token(&t).unwrap());
        s.conn.execute("UPDATE tokens SET projects = 'shop' WHERE name = 'ci'", []).unwrap();
        let e = s.live_tokens().unwrap_err();
        assert!(matches!(e, StoreError::Corrupt { table: "tokens", column: "projects", .. }), "{e}");
    }

    #[test]
    fn a_session_ends_with_its_expiry_its_deletion_or_its_token() {
        let s = SqliteStore::in_memory().unwrap();
        let any: &[String] = &[];
        let read = ["read".to_owned()];
        assert!(
            s.create_token(&NewToken { name: "qa", hash: "aa", projects: any, stages: any, actions: &read }).unwrap()
        );
        let id = s.live_tokens().unwrap()[0].id;
        let now = now_ms();
        s.create_session("s1", id, now + 60_000).unwrap();
        s.create_session("s2", id, now + 60_000).unwrap();
        s.create_session("old", id, now + 1).unwrap();
        assert_eq!(s.session_token("s1", now).unwrap().map(|t| t.name), Some("qa".to_owned()));
        assert!(s.session_token("nope", now).unwrap().is_none());
        assert!(s.session_token("old", now + 2).unwrap().is_none(), "expired");
        assert!(s.create_session("s1", id, now + 60_000).is_err(), "one row per session id");
        assert!(s.delete_session("s2").unwrap());
        assert!(!s.delete_session("s2").unwrap());
        assert!(s.session_token("s2", now).unwrap().is_none(), "logged out");
        assert!(s.revoke_token("qa").unwrap());
        assert!(s.session_token("s1", now).unwrap().is_none(), "its token was revoked");
        let left: i64 =
            s.conn.query_row("SELECT COUNT(*) FROM ui_sessions WHERE hash = 's1'", [], |r| r.get(0)).unwrap();
        assert_eq!(left, 0, "revoking deletes the token's sessions");
    }

    #[test]
    fn a_token_name_is_unique_among_live_tokens_and_free_again_once_revoked() {
        let s = SqliteStore::in_memory().unwrap();
        let any: &[String] = &[];
        let read = ["read".to_owned()];
        let t = |hash| NewToken { name: "ci", hash, projects: any, stages: any, actions: &read };
        assert!(s.create_token(&t("aa")).unwrap());
        assert!(!s.create_token(&t("bb")).unwrap(), "a second live `ci`");
        assert!(s.revoke_token("ci").unwrap());
        assert!(!s.revoke_token("ci").unwrap(), "already revoked");
        assert!(s.live_tokens().unwrap().is_empty());
        assert!(s.create_token(&t("cc")).unwrap());
        let all = s.tokens().unwrap();
        assert_eq!(all.len(), 2);
        assert_eq!(all[1].actions, ["read"]);
        assert!(all[0].revoked_at.is_some());
    }
}
