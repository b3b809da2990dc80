-- What the HTTP API needs from the database.

-- Runs are listed newest first and paged by (created_at, id), over all runs or one workflow's: these
-- indexes serve that order, and the cursor's row comparison, without a sort. Ids compare byte for
-- byte (COLLATE "C") in every store, whatever the database's collation.
DROP INDEX runs_created_at_idx;
DROP INDEX runs_workflow_created_at_idx;
CREATE INDEX runs_created_at_id_idx ON runs (created_at DESC, id COLLATE "C" DESC);
CREATE INDEX runs_workflow_created_at_id_idx ON runs (workflow_id, created_at DESC, id COLLATE "C" DESC);

-- The run a run reruns (run.submitted's rerun_of), '' for a run that is no rerun. No foreign key:
-- the recorder records what the submission says, whatever it knows of the run it names.
ALTER TABLE runs ADD COLUMN rerun_of TEXT NOT NULL DEFAULT '';

-- The API's bearer tokens, written by the admin CLI. Only a hash of each secret is kept.
CREATE TABLE api_tokens (
    id           TEXT        PRIMARY KEY,
    name         TEXT        NOT NULL DEFAULT '',
    scope        TEXT        NOT NULL DEFAULT '',
    secret_hash  BYTEA       NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ,
    revoked_at   TIMESTAMPTZ,
    last_used_at TIMESTAMPTZ
);

-- The mirror of the workflow registry (the ork_workflows KV bucket): whether the registry holds the
-- workflow now, and the KV revision, time and author of the last change applied. A change applies
-- only when its revision is greater than registered_rev (see pkg/store).
ALTER TABLE workflows ADD COLUMN registered     BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE workflows ADD COLUMN registered_rev BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE workflows ADD COLUMN registered_at  TIMESTAMPTZ;
ALTER TABLE workflows ADD COLUMN registered_by  TEXT    NOT NULL DEFAULT '';

-- A workflow's versions are listed newest first.
DROP INDEX workflow_versions_workflow_idx;
CREATE INDEX workflow_versions_workflow_created_at_idx ON workflow_versions (workflow_id, created_at DESC, hash COLLATE "C");
