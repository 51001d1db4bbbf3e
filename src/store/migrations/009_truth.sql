-- Knowing what is true before and after: a package's detection rules
-- (one per line, in their canonical spelling, all must hold), tasks run
-- despite them (`--force`), what detection said of each destination's
-- attempt, and the end of its installer's own log (at most 64 KiB).
ALTER TABLE packages ADD COLUMN detect TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN force INTEGER NOT NULL DEFAULT 0;
ALTER TABLE task_destinations ADD COLUMN detection TEXT
    CHECK (detection IN ('already_done', 'verified', 'not_done', 'done_despite_exit'));
ALTER TABLE task_destinations ADD COLUMN log TEXT;

-- Stuck work: when each destination's state began (its age), and the
-- command timeout its agent runs installs with.
ALTER TABLE task_destinations ADD COLUMN state_since INTEGER;
ALTER TABLE destinations ADD COLUMN command_timeout INTEGER;

-- The pre-flight: free space by volume as the agent last reported it
-- (JSON, `proto::Disk`).
ALTER TABLE destinations ADD COLUMN disks TEXT;

-- Rollouts in rings: the ring spec (`5,25%,100%`) and gate
-- (`failures=10%`) a task was created with, the highest ring started,
-- why it is paused (a tripped gate, an administrator), and each
-- destination's ring. Waiting work is handed out only in started rings of
-- a task that is not paused.
ALTER TABLE tasks ADD COLUMN rings TEXT;
ALTER TABLE tasks ADD COLUMN gate TEXT;
ALTER TABLE tasks ADD COLUMN ring_open INTEGER NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN paused_reason TEXT;
ALTER TABLE task_destinations ADD COLUMN ring INTEGER NOT NULL DEFAULT 0;
