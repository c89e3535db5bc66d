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

-- The previews page shows each slot's last deploy, and retire, `remove` and `prune` read each live
-- slot's deploys to know which images it keeps (issue 26): one index seek per slot instead of a
-- walk of the stage's whole history (with (project, stage, id) alone, that walk made those
-- commands grow with the square of a stage's previews).
CREATE INDEX deploys_by_slot ON deploys (project, stage, tag, id);
