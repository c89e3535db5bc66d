-- State identity: a random id, made once, carried by every container (label
-- dev.tiny-forge.state) and proxy host (marker) this state file makes.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(8))));

-- Each instance keeps its own host name and port: a switch-back after a release that changed
-- `port` must use the old instance's port.
ALTER TABLE instances ADD COLUMN domain TEXT;
ALTER TABLE instances ADD COLUMN port INTEGER;
UPDATE instances SET status = 'retiring' WHERE status = 'leftover';

-- What an undo could not take away, typed (JSON of `Leftover`); shown by `list`, finished by
-- `prune`, which replaces a stage's rows with what it still could not finish.
CREATE TABLE leftovers (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    project    TEXT NOT NULL,
    stage      TEXT NOT NULL,
    deploy_id  INTEGER,
    item       TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX leftovers_by_stage ON leftovers (project, stage);
