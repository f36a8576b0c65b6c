-- Schedules: tasks run on a cron expression in a time zone, and the runs they started.
--
-- schedules.next_run_at: the next tick; NULL while paused. Replicas claim a due run by moving it
-- forward from the value they read (compare and set), so each tick fires once.
-- schedule_runs: one row per task a schedule started; a tick's row is unique per
-- (schedule_id, scheduled_for), a manual trigger's is not (manual). The run's status, result and
-- usage are its task's.

CREATE TABLE schedules (
    id                     text PRIMARY KEY,
    user_id                text NOT NULL,
    tenant_id              text NOT NULL,
    name                   text NOT NULL,
    description            text NOT NULL DEFAULT '',
    cron_expression        text NOT NULL,
    timezone               text NOT NULL DEFAULT 'UTC',
    task_query             text NOT NULL,
    task_context_json      text NOT NULL DEFAULT '{}',
    max_budget_per_run_usd double precision,
    timeout_seconds        integer,
    status                 text NOT NULL CHECK (status IN ('ACTIVE', 'PAUSED')),
    created_at             timestamptz NOT NULL,
    updated_at             timestamptz NOT NULL,
    next_run_at            timestamptz,
    last_run_at            timestamptz,
    paused_at              timestamptz,
    pause_reason           text NOT NULL DEFAULT ''
);

CREATE INDEX schedules_user_created ON schedules (user_id, created_at);
CREATE INDEX schedules_due ON schedules (next_run_at) WHERE status = 'ACTIVE';

CREATE TABLE schedule_runs (
    position      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    schedule_id   text NOT NULL,
    task_id       text NOT NULL UNIQUE,
    scheduled_for timestamptz NOT NULL,
    triggered_at  timestamptz NOT NULL,
    manual        boolean NOT NULL DEFAULT false
);

CREATE UNIQUE INDEX schedule_runs_tick ON schedule_runs (schedule_id, scheduled_for) WHERE NOT manual;
CREATE INDEX schedule_runs_schedule ON schedule_runs (schedule_id, position);
