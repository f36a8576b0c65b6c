-- A session's id is its user's own: two users may each have a session "s1", and neither learns of
-- the other's. Sessions are keyed by (user_id, id), and a task names its session by the same pair.
-- Existing rows keep their ids: every task already belongs to its session's user.

ALTER TABLE tasks DROP CONSTRAINT tasks_session_id_fkey;
ALTER TABLE sessions DROP CONSTRAINT sessions_pkey;
ALTER TABLE sessions ADD PRIMARY KEY (user_id, id);
ALTER TABLE tasks ADD CONSTRAINT tasks_session_fkey
    FOREIGN KEY (user_id, session_id) REFERENCES sessions (user_id, id);

-- A session's tasks are found by user and session id together, so one user's tasks in a session
-- of some id never slow down the reads of another user's session of that id.
DROP INDEX tasks_session_created;
DROP INDEX tasks_session_status_created;
CREATE INDEX tasks_session_status_created ON tasks (user_id, session_id, status, created_at);
DROP INDEX tasks_active_by_session;
CREATE INDEX tasks_active_by_session ON tasks (user_id, session_id, created_at, position)
    WHERE status IN ('QUEUED', 'RUNNING', 'PAUSED');

CREATE OR REPLACE FUNCTION taskgate_session_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions
    SET last_activity_at = GREATEST(COALESCE(last_activity_at, NEW.updated_at), NEW.updated_at)
    WHERE user_id = NEW.user_id AND id = NEW.session_id;
    RETURN NULL;
END;
$$;
