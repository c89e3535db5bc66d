//! API tokens of `tiny-forge serve`, in the state file: a name, a scope and the SHA-256 of the
//! token. The token itself is never stored; `server::auth` makes and checks tokens, this only
//! keeps rows.

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

    /// Revokes the live token named `name`; `false` when there is none.
    ///
    /// # Errors
    /// On any `SQLite` failure.
    pub fn revoke_token(&self, name: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE tokens SET revoked_at = ?1 WHERE name = ?2 AND revoked_at IS NULL",
                params![now_ms(), name],
            )
            .map_err(q("revoke token"))?;
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
