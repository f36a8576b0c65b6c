-- A session's id is its user's own: two users may each have a session "s1", and neither learns of
-- the other's. Sessions are keyed by (user_id, id), and a task names its session by the same pair.
-- Existing rows keep their ids (and sessions their insertion order): every task already belongs to
-- its session's user.
--
-- SQLite cannot change a foreign key with ALTER TABLE, and rebuilding tasks would drop whatever
-- indexes and triggers it has; so tasks' definition is edited in place, the procedure SQLite
-- documents for changing a foreign key (the stored rows do not change), then sessions is rebuilt.

PRAGMA writable_schema = ON;
UPDATE sqlite_schema
SET sql = substr(
        replace(sql, 'session_id        TEXT NOT NULL REFERENCES sessions (id)', 'session_id        TEXT NOT NULL'),
        1,
        length(rtrim(replace(sql, 'session_id        TEXT NOT NULL REFERENCES sessions (id)', 'session_id        TEXT NOT NULL'))) - 1
    ) || ', FOREIGN KEY (user_id, session_id) REFERENCES sessions (user_id, id))'
WHERE type = 'table' AND name = 'tasks' AND sql LIKE '%session_id        TEXT NOT NULL REFERENCES sessions (id)%';
PRAGMA writable_schema = RESET;

-- Fails the migration (a CHECK) unless the edit above took.
CREATE TEMP TABLE migration_0017_check (edited INTEGER NOT NULL CHECK (edited = 1));
INSERT INTO migration_0017_check SELECT COUNT(*) FROM sqlite_schema
    WHERE type = 'table' AND name = 'tasks' AND sql NOT LIKE '%REFERENCES sessions (id)%'
    AND sql LIKE '%FOREIGN KEY (user_id, session_id) REFERENCES sessions (user_id, id))';
DROP TABLE migration_0017_check;

DROP TRIGGER tasks_session_activity_insert;
DROP TRIGGER tasks_session_activity_status;

CREATE TABLE sessions_per_user (
    id               TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    tenant_id        TEXT NOT NULL,
    title            TEXT NOT NULL DEFAULT '',
    tokens_used      INTEGER NOT NULL DEFAULT 0,
    cost_usd         REAL NOT NULL DEFAULT 0,
    task_count       INTEGER NOT NULL DEFAULT 0,
    created_at       TEXT NOT NULL,
    updated_at       TEXT NOT NULL,
    deleted_at       TEXT,
    token_budget     INTEGER CHECK (token_budget IS NULL OR token_budget > 0),
    context_json     TEXT NOT NULL DEFAULT '{}',
    last_activity_at TEXT,
    PRIMARY KEY (user_id, id)
);

INSERT INTO sessions_per_user (id, user_id, tenant_id, title, tokens_used, cost_usd, task_count,
    created_at, updated_at, deleted_at, token_budget, context_json, last_activity_at)
SELECT id, user_id, tenant_id, title, tokens_used, cost_usd, task_count,
    created_at, updated_at, deleted_at, token_budget, context_json, last_activity_at
FROM sessions ORDER BY rowid;

DROP TABLE sessions;
ALTER TABLE sessions_per_user RENAME TO sessions;

CREATE INDEX sessions_user_updated ON sessions (user_id, updated_at);
CREATE INDEX sessions_user_activity ON sessions (user_id, last_activity_at) WHERE deleted_at IS NULL;

-- A session's tasks are found by user and session id together, so one user's tasks in a session
-- of some id never slow down the reads of another user's session of that id.
DROP INDEX tasks_session_created;
CREATE INDEX tasks_session_created ON tasks (user_id, session_id, created_at);
DROP INDEX tasks_session_status_created;
CREATE INDEX tasks_session_status_created ON tasks (user_id, session_id, status, created_at);
DROP INDEX tasks_active_by_session;
CREATE INDEX tasks_active_by_session ON tasks (user_id, session_id, created_at)
    WHERE status IN ('QUEUED', 'RUNNING', 'PAUSED');

CREATE TRIGGER tasks_session_activity_insert AFTER INSERT ON tasks
BEGIN
    UPDATE sessions SET last_activity_at = max(COALESCE(last_activity_at, ''), new.updated_at)
    WHERE user_id = new.user_id AND id = new.session_id;
END;

CREATE TRIGGER tasks_session_activity_status AFTER UPDATE OF status ON tasks
WHEN old.status IS NOT new.status
BEGIN
    UPDATE sessions SET last_activity_at = max(COALESCE(last_activity_at, ''), new.updated_at)
    WHERE user_id = new.user_id AND id = new.session_id;
END;
