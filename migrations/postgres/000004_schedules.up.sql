-- What scheduled runs need from the database.

-- The nominal time of a run a schedule fired (run.submitted's scheduled_for: the cron tick it stands
-- for, whatever its jitter or lateness), NULL for every other run. A workflow has at most one run
-- per nominal time: the unique index is the guarantee, and the recorder ignores a second submission
-- of a tick under another run id (see pkg/store).
ALTER TABLE runs ADD COLUMN scheduled_for TIMESTAMPTZ;
CREATE UNIQUE INDEX runs_workflow_scheduled_for_idx ON runs (workflow_id, scheduled_for) WHERE scheduled_for IS NOT NULL;

-- The schedules table of the first schema was never written: a schedule's state lives in the
-- ork_schedules KV bucket, beside the registry it follows, written by the scheduler that fires it
-- (docs/architecture.md). Fired runs are here, with their nominal time.
DROP TABLE schedules;
