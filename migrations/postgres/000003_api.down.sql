DROP TABLE IF EXISTS api_tokens;
DROP INDEX runs_workflow_created_at_id_idx;
DROP INDEX runs_created_at_id_idx;
CREATE INDEX runs_created_at_idx ON runs (created_at DESC);
CREATE INDEX runs_workflow_created_at_idx ON runs (workflow_id, created_at DESC);
