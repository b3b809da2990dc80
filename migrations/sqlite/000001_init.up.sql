-- Ork schema for SQLite. Column names are identical to the PostgreSQL schema.
-- Times are TEXT in a fixed-width UTC form (2006-01-02T15:04:05.000000000Z), so they sort as text.
-- JSON values are TEXT. Booleans are INTEGER 0/1.

CREATE TABLE workflows (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL UNIQUE,
    description  TEXT NOT NULL DEFAULT '',
    schedule     TEXT NOT NULL DEFAULT '',
    current_hash TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    updated_at   TEXT NOT NULL
);

CREATE TABLE workflow_versions (
    hash        TEXT PRIMARY KEY,
    workflow_id INTEGER NOT NULL REFERENCES workflows (id),
    plan        TEXT NOT NULL,
    created_at  TEXT NOT NULL
);

-- The compiled DAG of each version.
CREATE TABLE workflow_tasks (
    hash       TEXT NOT NULL REFERENCES workflow_versions (hash),
    name       TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    executor   TEXT NOT NULL,
    depends_on TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (hash, name)
);

CREATE TABLE runs (
    id              TEXT PRIMARY KEY,
    workflow_id     INTEGER NOT NULL REFERENCES workflows (id),
    workflow_hash   TEXT NOT NULL REFERENCES workflow_versions (hash),
    status          TEXT NOT NULL,
    triggered_by    TEXT NOT NULL DEFAULT '',
    idempotency_key TEXT UNIQUE,
    error           TEXT NOT NULL DEFAULT '',
    task_count      INTEGER NOT NULL DEFAULT 0,
    created_at      TEXT NOT NULL,
    started_at      TEXT,
    finished_at     TEXT
);
CREATE INDEX runs_created_at ON runs (created_at DESC);
CREATE INDEX runs_workflow_created_at ON runs (workflow_id, created_at DESC);
CREATE INDEX runs_status ON runs (status);

CREATE TABLE tasks (
    run_id      TEXT NOT NULL REFERENCES runs (id),
    name        TEXT NOT NULL,
    idx         INTEGER NOT NULL,
    executor    TEXT NOT NULL,
    depends_on  TEXT NOT NULL DEFAULT '[]',
    status      TEXT NOT NULL,
    attempt     INTEGER NOT NULL DEFAULT 0,
    max_retries INTEGER NOT NULL DEFAULT 0,
    timeout_s   INTEGER NOT NULL DEFAULT 0,
    output      TEXT,
    error       TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    started_at  TEXT,
    finished_at TEXT,
    PRIMARY KEY (run_id, name)
) WITHOUT ROWID;
CREATE INDEX tasks_run_idx ON tasks (run_id, idx);

CREATE TABLE task_attempts (
    run_id        TEXT NOT NULL,
    task          TEXT NOT NULL,
    attempt       INTEGER NOT NULL,
    status        TEXT NOT NULL,
    instance      TEXT NOT NULL DEFAULT '',
    exit_code     INTEGER,
    error         TEXT NOT NULL DEFAULT '',
    reason        TEXT NOT NULL DEFAULT '',
    duration_ms   INTEGER NOT NULL DEFAULT 0,
    dispatched_at TEXT,
    started_at    TEXT,
    finished_at   TEXT,
    PRIMARY KEY (run_id, task, attempt),
    FOREIGN KEY (run_id, task) REFERENCES tasks (run_id, name)
) WITHOUT ROWID;

-- No foreign key: log lines arrive on their own stream and may be recorded before their run.
CREATE TABLE task_logs (
    run_id  TEXT NOT NULL,
    task    TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    seq     INTEGER NOT NULL,
    stream  TEXT NOT NULL,
    line    TEXT NOT NULL,
    ts      TEXT NOT NULL,
    PRIMARY KEY (run_id, task, attempt, seq)
) WITHOUT ROWID;

CREATE TABLE dead_letters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    stream     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    subject    TEXT NOT NULL DEFAULT '',
    reason     TEXT NOT NULL DEFAULT '',
    data       BLOB,
    created_at TEXT NOT NULL,
    UNIQUE (stream, seq)
);

CREATE TABLE schedules (
    workflow_id  INTEGER PRIMARY KEY REFERENCES workflows (id),
    cron         TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    last_fire_at TEXT,
    next_fire_at TEXT
);
