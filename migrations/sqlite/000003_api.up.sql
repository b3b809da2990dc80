-- What the HTTP API needs from the database.

-- Runs are listed newest first and paged by (created_at, id), over all runs or one workflow's: these
-- indexes serve that order, and the cursor's row comparison, without a sort. created_at is
-- fixed-width UTC text, so it sorts as time.
DROP INDEX runs_created_at;
DROP INDEX runs_workflow_created_at;
CREATE INDEX runs_created_at_id ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created_at_id ON runs (workflow_id, created_at DESC, id DESC);
