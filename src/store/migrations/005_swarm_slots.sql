-- A swarm slot is one service that every deploy of the slot updates in place, so its rows share
-- the service's name: container names are unique per deploy, not across the table.
CREATE TABLE instances_new (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    deploy_id      INTEGER NOT NULL,
    project        TEXT NOT NULL,
    stage          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    slot           TEXT NOT NULL,
    container_name TEXT NOT NULL,
    container_id   TEXT,
    proxy_host_id  TEXT,
    digest         TEXT NOT NULL,
    url            TEXT,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    domain         TEXT,
    port           INTEGER,
    spec_hash      TEXT,
    UNIQUE (container_name, deploy_id)
);
INSERT INTO instances_new (id, deploy_id, project, stage, tag, slot, container_name, container_id, proxy_host_id,
                           digest, url, status, created_at, updated_at, domain, port, spec_hash)
    SELECT id, deploy_id, project, stage, tag, slot, container_name, container_id, proxy_host_id,
           digest, url, status, created_at, updated_at, domain, port, spec_hash FROM instances;
-- Keep the id counter's high-water mark: ids of deleted rows are never handed out again (leftovers
-- and logs name rows by id).
DELETE FROM sqlite_sequence WHERE name = 'instances_new';
INSERT INTO sqlite_sequence (name, seq) SELECT 'instances_new', seq FROM sqlite_sequence WHERE name = 'instances';
DROP TABLE instances;
ALTER TABLE instances_new RENAME TO instances;
CREATE INDEX instances_by_slot ON instances (project, stage, tag);
