-- A change cursor over task-destination rows. Every insert or update of a
-- row takes the next number of one counter as the row's `rev`, so a reader
-- holding revision R asks for the rows of a task with rev > R (the
-- console's live task view) and gets what changed, not the whole task. A
-- removed row leaves no trace: readers notice it by the task's row count.
-- Rows written before this migration keep rev 0.
CREATE TABLE revision (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    rev INTEGER NOT NULL
);
INSERT INTO revision (one, rev) VALUES (1, 0);

ALTER TABLE task_destinations ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;
CREATE INDEX task_destinations_by_rev ON task_destinations (task_id, rev);

CREATE TRIGGER task_destinations_rev_insert AFTER INSERT ON task_destinations
BEGIN
    UPDATE revision SET rev = rev + 1 WHERE one = 1;
    UPDATE task_destinations SET rev = (SELECT rev FROM revision WHERE one = 1)
     WHERE task_id = NEW.task_id AND destination_id = NEW.destination_id;
END;

-- Every column but `rev` itself, so the trigger's own write does not
-- count as a change.
CREATE TRIGGER task_destinations_rev_update
AFTER UPDATE OF status, attempt, exit_code, message, output, transferred, reboot_required,
                retries, not_before, updated_at, meaning, started_at
ON task_destinations
BEGIN
    UPDATE revision SET rev = rev + 1 WHERE one = 1;
    UPDATE task_destinations SET rev = (SELECT rev FROM revision WHERE one = 1)
     WHERE task_id = NEW.task_id AND destination_id = NEW.destination_id;
END;
