-- Task control: the pause and cancellation a task's owner asked for, and the running time its
-- timeout has used. A pause request stays set while the task is paused and is cleared by a resume.

ALTER TABLE tasks ADD COLUMN pause_requested INTEGER NOT NULL DEFAULT 0 CHECK (pause_requested IN (0, 1));
ALTER TABLE tasks ADD COLUMN paused_at TEXT;
ALTER TABLE tasks ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN paused_by TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1));
ALTER TABLE tasks ADD COLUMN cancel_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN cancelled_by TEXT NOT NULL DEFAULT '';
-- Seconds the task ran before its current run, paused time excluded.
ALTER TABLE tasks ADD COLUMN run_seconds REAL NOT NULL DEFAULT 0;

-- Recovery at start-up looks for the tasks a worker still holds: running, or paused by their runner.
CREATE INDEX tasks_claimed ON tasks (status) WHERE status IN ('RUNNING', 'PAUSED');
