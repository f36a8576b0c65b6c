-- Durable execution: a running task's last checkpoint and which attempt runs it.
-- checkpoint_json is the runner's own state after its last finished step (NULL: none yet), and
-- checkpoint_seq the seq of the last event that step recorded; a task resumed after its replica
-- stopped continues from there. attempt counts the runs of the task that began after an
-- interruption; lost_attempts counts those whose replica died (the ones TASKGATE_MAX_ATTEMPTS caps).
ALTER TABLE tasks ADD COLUMN checkpoint_json json;
ALTER TABLE tasks ADD COLUMN checkpoint_seq integer NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN attempt integer NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN lost_attempts integer NOT NULL DEFAULT 0;
