-- A run's parameters: the JSON object of every declared parameter's value (NULL: the workflow
-- declares none).
ALTER TABLE runs ADD COLUMN params JSONB;
