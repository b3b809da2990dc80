DROP TABLE IF EXISTS api_tokens;
DROP INDEX runs_workflow_created_at_id;
DROP INDEX runs_created_at_id;
CREATE INDEX runs_created_at ON runs (created_at DESC);
CREATE INDEX runs_workflow_created_at ON runs (workflow_id, created_at DESC);
