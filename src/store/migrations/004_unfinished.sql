-- Whether a task has unfinished destinations is asked at every final
-- report: answered from this index instead of counting every row.
CREATE INDEX task_destinations_by_task_status ON task_destinations (task_id, status);
