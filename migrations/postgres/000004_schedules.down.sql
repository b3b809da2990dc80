DROP INDEX runs_workflow_scheduled_for_idx;
ALTER TABLE runs DROP COLUMN scheduled_for;
