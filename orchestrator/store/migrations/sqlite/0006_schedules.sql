-- Schedules: tasks run on a cron expression in a time zone, and the runs they started.
--
-- schedules.next_run_at: the next tick, UTC; NULL while paused. Replicas claim a due run by
-- moving it forward from the value they read (compare and set), so each tick fires once.
-- schedule_runs: one row per task a schedule started; a tick's row is unique per
-- (schedule_id, scheduled_for), a manual trigger's is not (manual = 1). The run's status, result
-- and usage are its task's.

CREATE TABLE schedules (
    id                     TEXT PRIMARY KEY,
    user_id                TEXT NOT NULL,
    tenant_id              TEXT NOT NULL,
    name                   TEXT NOT NULL,
    description            TEXT NOT NULL DEFAULT '',
    cron_expression        TEXT NOT NULL,
    timezone               TEXT NOT NULL DEFAULT 'UTC',
    task_query             TEXT NOT NULL,
    task_context_json      TEXT NOT NULL DEFAULT '{}',
    max_budget_per_run_usd REAL,
    timeout_seconds        INTEGER,
    status                 TEXT NOT NULL CHECK (status IN ('ACTIVE', 'PAUSED')),
    created_at             TEXT NOT NULL,
    updated_at             TEXT NOT NULL,
    next_run_at            TEXT,
    last_run_at            TEXT,
    paused_at              TEXT,
    pause_reason           TEXT NOT NULL DEFAULT ''
);

CREATE INDEX schedules_user_created ON schedules (user_id, created_at);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'ACTIVE';

CREATE TABLE schedule_runs (
    position      INTEGER PRIMARY KEY AUTOINCREMENT,
    schedule_id   TEXT NOT NULL,
    task_id       TEXT NOT NULL UNIQUE,
    scheduled_for TEXT NOT NULL,
    triggered_at  TEXT NOT NULL,
    manual        INTEGER NOT NULL DEFAULT 0
);

CREATE UNIQUE INDEX schedule_runs_tick ON schedule_runs (schedule_id, scheduled_for) WHERE manual = 0;
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, position);
