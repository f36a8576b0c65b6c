-- Task control (mirrors sqlite/0002): the pause and cancellation a task's owner asked for, and the
-- running time its timeout has used. A pause request stays set while the task is paused and is
-- cleared by a resume.

ALTER TABLE tasks
    ADD COLUMN pause_requested  boolean NOT NULL DEFAULT false,
    ADD COLUMN paused_at        timestamptz,
    ADD COLUMN pause_reason     text NOT NULL DEFAULT '',
    ADD COLUMN paused_by        text NOT NULL DEFAULT '',
    ADD COLUMN cancel_requested boolean NOT NULL DEFAULT false,
    ADD COLUMN cancel_reason    text NOT NULL DEFAULT '',
    ADD COLUMN cancelled_by     text NOT NULL DEFAULT '',
    -- Seconds the task ran before its current run, paused time excluded.
    ADD COLUMN run_seconds      double precision NOT NULL DEFAULT 0;

-- Recovery looks for the tasks a worker still holds: running, or paused by their runner.
CREATE INDEX tasks_claimed ON tasks (status, created_at, position) WHERE status IN ('RUNNING', 'PAUSED');
