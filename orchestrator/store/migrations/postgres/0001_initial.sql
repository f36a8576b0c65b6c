-- The walking skeleton's schema on PostgreSQL: tenants, users, API keys, sessions, tasks, events.
-- The same tables as the SQLite store's, with native types: timestamptz, json, bigint.

CREATE TABLE tenants (
    id         text PRIMARY KEY,
    name       text NOT NULL,
    created_at timestamptz NOT NULL
);

CREATE TABLE users (
    id         text PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    email      text NOT NULL,
    username   text NOT NULL,
    role       text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'owner')),
    tier       text NOT NULL DEFAULT 'free',
    created_at timestamptz NOT NULL
);

-- Emails are unique and looked up case-insensitively.
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE api_keys (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id),
    tenant_id    text NOT NULL REFERENCES tenants (id),
    name         text NOT NULL,
    key_prefix   text NOT NULL,
    key_hash     text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL,
    last_used_at timestamptz,
    expires_at   timestamptz,
    revoked_at   timestamptz
);

CREATE INDEX api_keys_prefix ON api_keys (key_prefix);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- Sessions and tasks name their user without a foreign key: a caller forwarded by the gateway
-- (a JWT user, or the development bypass) owns rows even if no users row describes it.
CREATE TABLE sessions (
    id          text PRIMARY KEY,
    user_id     text NOT NULL,
    tenant_id   text NOT NULL,
    title       text NOT NULL DEFAULT '',
    tokens_used bigint NOT NULL DEFAULT 0,
    cost_usd    double precision NOT NULL DEFAULT 0,
    task_count  integer NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);

CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at);

CREATE TABLE tasks (
    task_id           text PRIMARY KEY,
    -- Insertion order: breaks ties between tasks created in the same microsecond.
    position          bigint GENERATED ALWAYS AS IDENTITY,
    user_id           text NOT NULL,
    tenant_id         text NOT NULL,
    session_id        text NOT NULL REFERENCES sessions (id),
    query             text NOT NULL,
    status            text NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')),
    progress          double precision NOT NULL DEFAULT 0,
    result            text NOT NULL DEFAULT '',
    error             text NOT NULL DEFAULT '',
    mode              text NOT NULL,
    context_json      json NOT NULL DEFAULT '{}',
    options_json      json NOT NULL DEFAULT '{}',
    model_used        text NOT NULL DEFAULT '',
    provider          text NOT NULL DEFAULT '',
    prompt_tokens     bigint NOT NULL DEFAULT 0,
    completion_tokens bigint NOT NULL DEFAULT 0,
    total_tokens      bigint NOT NULL DEFAULT 0,
    cost_usd          double precision NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    completed_at      timestamptz,
    claimed_by        text,
    lease_expires_at  timestamptz
);

-- A user's tasks newest first (also a window of time, for stats), optionally of one status or
-- session; a session's tasks in order.
CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, position DESC);
CREATE INDEX tasks_user_status_created ON tasks (user_id, status, created_at DESC, position DESC);
CREATE INDEX tasks_user_session_created ON tasks (user_id, session_id, created_at DESC, position DESC);
CREATE INDEX tasks_session_created ON tasks (session_id, created_at);
-- The claim order: oldest queued task first.
CREATE INDEX tasks_queued ON tasks (created_at, position) WHERE status = 'QUEUED';
-- Held tasks by lease expiry (recovery of a replica's tasks) and by holder (lease renewal).
CREATE INDEX tasks_held_lease ON tasks (lease_expires_at) WHERE status IN ('RUNNING', 'PAUSED');
CREATE INDEX tasks_held_by ON tasks (claimed_by) WHERE status IN ('RUNNING', 'PAUSED');

CREATE TABLE events (
    workflow_id  text NOT NULL REFERENCES tasks (task_id),
    seq          bigint NOT NULL CHECK (seq > 0),
    type         text NOT NULL,
    agent_id     text NOT NULL DEFAULT '',
    message      text NOT NULL DEFAULT '',
    payload_json json NOT NULL DEFAULT '{}',
    timestamp    timestamptz NOT NULL,
    PRIMARY KEY (workflow_id, seq)
);

-- The last event of one type (has the stream ended?).
CREATE INDEX events_workflow_type ON events (workflow_id, type, seq);
