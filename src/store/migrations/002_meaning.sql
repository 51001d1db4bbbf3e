-- What an attempt's exit code meant, recorded when the attempt ended (the
-- meaning of a code can depend on the destination's system), instead of
-- being derived again on every read.
ALTER TABLE task_destinations ADD COLUMN meaning TEXT;
