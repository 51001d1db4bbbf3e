-- When the current attempt of a destination started (its first progress
-- report), so a running installation shows how long it has been going.
-- While a command runs, `output` holds the tail the agent last sent; the
-- attempt's final output replaces it.
ALTER TABLE task_destinations ADD COLUMN started_at INTEGER;
