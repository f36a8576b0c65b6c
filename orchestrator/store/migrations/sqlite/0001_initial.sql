-- The walking skeleton's schema: tenants, users, API keys, sessions, tasks and their events.
-- Times are UTC text of one fixed width (2026-01-02T03:04:05.678901Z), so text order is time order.

CREATE TABLE tenants (
    id         TEXT PRIMARY KEY,
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE users (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL REFERENCES tenants (id),
    email      TEXT NOT NULL UNIQUE COLLATE NOCASE,
    username   TEXT NOT NULL,
    role       TEXT NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin', 'owner')),
    tier       TEXT NOT NULL DEFAULT 'free',
    created_at TEXT NOT NULL
);

CREATE INDEX users_tenant ON users (tenant_id);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL REFERENCES users (id),
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    key_prefix   TEXT NOT NULL,
    key_hash     TEXT NOT NULL UNIQUE,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    expires_at   TEXT,
    revoked_at   TEXT
);

CREATE INDEX api_keys_prefix ON api_keys (key_prefix);
CREATE INDEX api_keys_user ON api_keys (user_id, created_at);

-- Sessions and tasks name their user without a foreign key: a caller forwarded by the gateway
-- (a JWT user, or the development bypass) owns rows even if no users row describes it.
CREATE TABLE sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT NOT NULL,
    tenant_id   TEXT NOT NULL,
    title       TEXT NOT NULL DEFAULT '',
    tokens_used INTEGER NOT NULL DEFAULT 0,
    cost_usd    REAL NOT NULL DEFAULT 0,
    task_count  INTEGER NOT NULL DEFAULT 0,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    deleted_at  TEXT
);

CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at);

CREATE TABLE tasks (
    task_id           TEXT PRIMARY KEY,
    user_id           TEXT NOT NULL,
    tenant_id         TEXT NOT NULL,
    session_id        TEXT NOT NULL REFERENCES sessions (id),
    query             TEXT NOT NULL,
    status            TEXT NOT NULL
        CHECK (status IN ('QUEUED', 'RUNNING', 'PAUSED', 'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT')),
    progress          REAL NOT NULL DEFAULT 0,
    result            TEXT NOT NULL DEFAULT '',
    error             TEXT NOT NULL DEFAULT '',
    mode              TEXT NOT NULL,
    context_json      TEXT NOT NULL DEFAULT '{}',
    options_json      TEXT NOT NULL DEFAULT '{}',
    model_used        TEXT NOT NULL DEFAULT '',
    provider          TEXT NOT NULL DEFAULT '',
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    total_tokens      INTEGER NOT NULL DEFAULT 0,
    cost_usd          REAL NOT NULL DEFAULT 0,
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    started_at        TEXT,
    completed_at      TEXT,
    claimed_by        TEXT,
    lease_expires_at  TEXT
);

-- A user's tasks newest first (scanned backwards), optionally of one status; a session's tasks in order.
CREATE INDEX tasks_user_created ON tasks (user_id, created_at);
CREATE INDEX tasks_user_status_created ON tasks (user_id, status, created_at);
CREATE INDEX tasks_session_created ON tasks (session_id, created_at);
-- The claim order: oldest queued task first.
CREATE INDEX tasks_queued ON tasks (created_at) WHERE status = 'QUEUED';

CREATE TABLE events (
    workflow_id  TEXT NOT NULL REFERENCES tasks (task_id),
    seq          INTEGER NOT NULL CHECK (seq > 0),
    type         TEXT NOT NULL,
    agent_id     TEXT NOT NULL DEFAULT '',
    message      TEXT NOT NULL DEFAULT '',
    payload_json TEXT NOT NULL DEFAULT '{}',
    timestamp    TEXT NOT NULL,
    PRIMARY KEY (workflow_id, seq)
) WITHOUT ROWID;
