CREATE TABLE deploys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    project     TEXT NOT NULL,
    stage       TEXT NOT NULL,
    tag         TEXT NOT NULL,
    slot        TEXT NOT NULL,
    image       TEXT NOT NULL,
    digest      TEXT,
    status      TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    error       TEXT,
    trigger     TEXT NOT NULL,
    url         TEXT,
    leftovers   TEXT
);
CREATE INDEX deploys_by_stage ON deploys (project, stage, id);
CREATE INDEX deploys_by_status ON deploys (status) WHERE status = 'running';

CREATE TABLE deploy_logs (
    deploy_id INTEGER NOT NULL REFERENCES deploys (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    ts        INTEGER NOT NULL,
    level     TEXT NOT NULL,
    step      TEXT NOT NULL,
    message   TEXT NOT NULL,
    PRIMARY KEY (deploy_id, seq)
) WITHOUT ROWID;

CREATE TABLE instances (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    deploy_id      INTEGER NOT NULL,
    project        TEXT NOT NULL,
    stage          TEXT NOT NULL,
    tag            TEXT NOT NULL,
    slot           TEXT NOT NULL,
    container_name TEXT NOT NULL UNIQUE,
    container_id   TEXT,
    proxy_host_id  TEXT,
    digest         TEXT NOT NULL,
    url            TEXT,
    status         TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX instances_by_slot ON instances (project, stage, tag);
