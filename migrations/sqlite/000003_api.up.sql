-- What the HTTP API needs from the database.

-- Runs are listed newest first and paged by (created_at, id), over all runs or one workflow's: these
-- indexes serve that order, and the cursor's row comparison, without a sort. created_at is
-- fixed-width UTC text, so it sorts as time.
DROP INDEX runs_created_at;
DROP INDEX runs_workflow_created_at;
CREATE INDEX runs_created_at_id ON runs (created_at DESC, id DESC);
CREATE INDEX runs_workflow_created_at_id ON runs (workflow_id, created_at DESC, id DESC);

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
