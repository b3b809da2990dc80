-- Ork's schema for PostgreSQL. Column names are the same in every dialect (see ../sqlite).
-- Statuses are plain text without CHECK constraints on purpose: the recorder must never be blocked
-- by a value an older or newer producer sends; pkg/store defines and orders them.

CREATE TABLE workflows (
    id           BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name         TEXT        NOT NULL UNIQUE,
    description  TEXT        NOT NULL DEFAULT '',
    schedule     TEXT        NOT NULL DEFAULT '',
    current_hash TEXT        NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at   TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per content hash: the compiled plan, as submitted.
CREATE TABLE workflow_versions (
    hash        TEXT        PRIMARY KEY,
    workflow_id BIGINT      NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    plan        JSONB       NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX workflow_versions_workflow_idx ON workflow_versions (workflow_id);

-- The compiled DAG of each version, queryable without decoding the plan.
CREATE TABLE workflow_tasks (
    hash       TEXT    NOT NULL REFERENCES workflow_versions (hash) ON DELETE CASCADE,
    name       TEXT    NOT NULL,
    idx        INTEGER NOT NULL,
    executor   TEXT    NOT NULL,
    depends_on JSONB   NOT NULL DEFAULT '[]',
    PRIMARY KEY (hash, name)
);

CREATE TABLE runs (
    id              TEXT        PRIMARY KEY,
    workflow_id     BIGINT      NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    workflow_hash   TEXT        NOT NULL REFERENCES workflow_versions (hash),
    status          TEXT        NOT NULL,
    triggered_by    TEXT        NOT NULL DEFAULT '',
    -- NULL when the submission had no key; UNIQUE allows any number of NULLs.
    idempotency_key TEXT        UNIQUE,
    error           TEXT        NOT NULL DEFAULT '',
    task_count      INTEGER     NOT NULL DEFAULT 0,
    created_at      TIMESTAMPTZ NOT NULL,
    started_at      TIMESTAMPTZ,
    finished_at     TIMESTAMPTZ
);
CREATE INDEX runs_created_at_idx ON runs (created_at DESC);
CREATE INDEX runs_workflow_created_at_idx ON runs (workflow_id, created_at DESC);
CREATE INDEX runs_status_idx ON runs (status);

CREATE TABLE tasks (
    run_id      TEXT        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    name        TEXT        NOT NULL,
    idx         INTEGER     NOT NULL,
    executor    TEXT        NOT NULL,
    depends_on  JSONB       NOT NULL DEFAULT '[]',
    status      TEXT        NOT NULL,
    attempt     INTEGER     NOT NULL DEFAULT 0,
    max_retries INTEGER     NOT NULL DEFAULT 0,
    timeout_s   INTEGER     NOT NULL DEFAULT 0,
    output      JSONB,
    error       TEXT        NOT NULL DEFAULT '',
    reason      TEXT        NOT NULL DEFAULT '',
    started_at  TIMESTAMPTZ,
    finished_at TIMESTAMPTZ,
    PRIMARY KEY (run_id, name)
);
CREATE INDEX tasks_run_idx_idx ON tasks (run_id, idx);

CREATE TABLE task_attempts (
    run_id        TEXT        NOT NULL,
    task          TEXT        NOT NULL,
    attempt       INTEGER     NOT NULL,
    status        TEXT        NOT NULL,
    instance      TEXT        NOT NULL DEFAULT '',
    exit_code     INTEGER,
    error         TEXT        NOT NULL DEFAULT '',
    reason        TEXT        NOT NULL DEFAULT '',
    duration_ms   BIGINT      NOT NULL DEFAULT 0,
    dispatched_at TIMESTAMPTZ,
    started_at    TIMESTAMPTZ,
    finished_at   TIMESTAMPTZ,
    PRIMARY KEY (run_id, task, attempt),
    FOREIGN KEY (run_id, task) REFERENCES tasks (run_id, name) ON DELETE CASCADE
);

-- No foreign key: log lines arrive on their own stream and may be recorded before their run.
CREATE TABLE task_logs (
    run_id  TEXT        NOT NULL,
    task    TEXT        NOT NULL,
    attempt INTEGER     NOT NULL,
    seq     BIGINT      NOT NULL,
    stream  TEXT        NOT NULL,
    line    TEXT        NOT NULL,
    ts      TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (run_id, task, attempt, seq)
);

CREATE TABLE dead_letters (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream     TEXT        NOT NULL,
    seq        BIGINT      NOT NULL,
    subject    TEXT        NOT NULL DEFAULT '',
    reason     TEXT        NOT NULL DEFAULT '',
    data       BYTEA,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (stream, seq)
);

CREATE TABLE schedules (
    workflow_id  BIGINT      PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    cron         TEXT        NOT NULL,
    enabled      BOOLEAN     NOT NULL DEFAULT TRUE,
    last_fire_at TIMESTAMPTZ,
    next_fire_at TIMESTAMPTZ
);
CREATE INDEX schedules_next_fire_at_idx ON schedules (next_fire_at) WHERE enabled;
