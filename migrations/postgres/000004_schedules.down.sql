CREATE TABLE schedules (
    workflow_id  BIGINT      PRIMARY KEY REFERENCES workflows (id) ON DELETE CASCADE,
    cron         TEXT        NOT NULL,
    enabled      BOOLEAN     NOT NULL DEFAULT TRUE,
    last_fire_at TIMESTAMPTZ,
    next_fire_at TIMESTAMPTZ
);
CREATE INDEX schedules_next_fire_at_idx ON schedules (next_fire_at) WHERE enabled;
DROP INDEX runs_workflow_scheduled_for_idx;
ALTER TABLE runs DROP COLUMN scheduled_for;
