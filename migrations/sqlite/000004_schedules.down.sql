CREATE TABLE schedules (
    workflow_id  INTEGER PRIMARY KEY REFERENCES workflows (id),
    cron         TEXT NOT NULL,
    enabled      INTEGER NOT NULL DEFAULT 1,
    last_fire_at TEXT,
    next_fire_at TEXT
);
DROP INDEX runs_workflow_scheduled_for;
ALTER TABLE runs DROP COLUMN scheduled_for;
