-- tiny-forge serve (issue 22): webhook bodies already received, per receiver, so that a replayed
-- notification is still a replay after the server restarts. Only the SHA-256 of the body is
-- kept (never the body, which may name private repositories and is chosen by the sender).
CREATE TABLE webhook_deliveries (
    receiver    TEXT NOT NULL,
    body_sha256 TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (receiver, body_sha256)
);
CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (received_at);
