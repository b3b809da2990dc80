-- What the HTTP API needs from the database.

-- Runs are listed newest first and paged by (created_at, id), over all runs or one workflow's: these
-- indexes serve that order, and the cursor's row comparison, without a sort. created_at is
-- fixed-width UTC text, so it sorts as time.
DROP INDEX runs_created_at;
DROP INDEX runs_workflow_created_at;
CREATE INDEX runs_created_at_id ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created_at_id ON runs (workflow_id, created_at DESC, id DESC);

-- The run a run reruns (run.submitted's rerun_of), '' for a run that is no rerun. No foreign key:
-- the recorder records what the submission says, whatever it knows of the run it names.
ALTER TABLE runs ADD COLUMN rerun_of TEXT NOT NULL DEFAULT '';

-- The API's bearer tokens, written by the admin CLI. Only a hash of each secret is kept.
CREATE TABLE api_tokens (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL DEFAULT '',
    scope        TEXT NOT NULL DEFAULT '',
    secret_hash  BLOB NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT,
    revoked_at   TEXT,
    last_used_at TEXT
);

-- The mirror of the workflow registry (the ork_workflows KV bucket): whether the registry holds the
-- workflow now (0/1), and the KV revision, time and author of the last change applied. A change
-- applies only when its revision is greater than registered_rev (see pkg/store).
ALTER TABLE workflows ADD COLUMN registered     INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN registered_rev INTEGER NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN registered_at  TEXT;
ALTER TABLE workflows ADD COLUMN registered_by  TEXT    NOT NULL DEFAULT '';

-- A workflow's versions are listed newest first.
CREATE INDEX workflow_versions_workflow_created_at ON workflow_versions (workflow_id, created_at DESC, hash);
