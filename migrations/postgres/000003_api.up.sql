-- What the HTTP API needs from the database.

-- Runs are listed newest first and paged by (created_at, id), over all runs or one workflow's: these
-- indexes serve that order, and the cursor's row comparison, without a sort. Ids compare byte for
-- byte (COLLATE "C") in every store, whatever the database's collation.
DROP INDEX runs_created_at_idx;
DROP INDEX runs_workflow_created_at_idx;
CREATE INDEX runs_created_at_id_idx ON runs (created_at DESC, id COLLATE "C" DESC);
CREATE INDEX runs_workflow_created_at_id_idx ON runs (workflow_id, created_at DESC, id COLLATE "C" DESC);

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
