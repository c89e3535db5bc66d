-- The web page of `tiny-forge serve` (issue 25).

-- Sign-in sessions: the browser holds a random session id in a cookie; only its SHA-256 is kept
-- here, with the token it was opened with (its scope is the session's) and when it ends.
-- Revoking the token deletes its sessions (`token revoke`), and a lookup joins the token, so a
-- session never outlives its token.
CREATE TABLE ui_sessions (
    hash       TEXT PRIMARY KEY,
    token_id   INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ui_sessions_by_token ON ui_sessions (token_id);
CREATE INDEX ui_sessions_by_expiry ON ui_sessions (expires_at);

-- The previews page shows each slot's last deploy: one index seek per slot instead of a scan of
-- the whole history (100k deploys and more).
CREATE INDEX deploys_by_slot ON deploys (project, stage, tag, id);
