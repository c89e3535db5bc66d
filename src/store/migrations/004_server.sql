-- tiny-forge serve (issue 13).

-- Who asked for a deploy: `token:NAME`, `webhook:RECEIVER:DELIVERY`, `poll:IMAGE`; NULL for the
-- CLI on the host (the host user is the actor there).
ALTER TABLE deploys ADD COLUMN actor TEXT;

-- The typed event (JSON of `report::Event`) beside its one-line message, so that a deploy's
-- stream (`GET /v1/deploys/{id}/events`) can be rendered by the same renderers as a local run.
-- NULL in rows written before this version.
ALTER TABLE deploy_logs ADD COLUMN event TEXT;

-- API tokens: only the SHA-256 of each token is kept. Scopes are JSON arrays; an empty array
-- means "any". A revoked token keeps its row (deploys name it as their actor).
CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    name         TEXT NOT NULL,
    hash         TEXT NOT NULL UNIQUE,
    projects     TEXT NOT NULL,
    stages       TEXT NOT NULL,
    actions      TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);
CREATE UNIQUE INDEX tokens_live_name ON tokens (name) WHERE revoked_at IS NULL;
