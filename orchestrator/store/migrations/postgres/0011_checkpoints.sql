-- Durable execution: runners' checkpoints, and which attempt runs a task.
-- A checkpoint is stored in the row of the event that ends its step (checkpoint_json: the runner's
-- state then and the running time used, NULL for events that end no step), so the event and its
-- checkpoint are one write; a task resumed after its replica stopped continues after the last one.
-- attempt counts the runs of a task that began after an interruption; lost_attempts counts those
-- whose replica died (the ones TASKGATE_MAX_ATTEMPTS caps).
ALTER TABLE events ADD COLUMN checkpoint_json json;
ALTER TABLE tasks ADD COLUMN attempt integer NOT NULL DEFAULT 1;
ALTER TABLE tasks ADD COLUMN lost_attempts integer NOT NULL DEFAULT 0;
