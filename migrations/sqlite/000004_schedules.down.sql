DROP INDEX runs_workflow_scheduled_for;
ALTER TABLE runs DROP COLUMN scheduled_for;
