-- Sessions as conversations with a budget, and full-text search over tasks (mirrors sqlite/0003).
--
-- sessions.token_budget: NULL means no budget; tasks are refused once tokens_used reaches it.
-- sessions.context_json: the context of the task that started the session.
-- sessions.last_activity_at: when a task of the session was last submitted or changed status, kept
-- by the triggers below, so every path that changes a task's status moves it.

ALTER TABLE sessions
    ADD COLUMN token_budget     bigint CHECK (token_budget IS NULL OR token_budget > 0),
    ADD COLUMN context_json     json NOT NULL DEFAULT '{}',
    ADD COLUMN last_activity_at timestamptz,
    -- Insertion order: breaks ties between sessions active in the same microsecond.
    ADD COLUMN position         bigint GENERATED ALWAYS AS IDENTITY;

UPDATE sessions SET last_activity_at = COALESCE(
    (SELECT MAX(tasks.updated_at) FROM tasks WHERE tasks.session_id = sessions.id),
    sessions.updated_at
);

-- A user's live sessions, most recently active first (the session list, the stats window).
CREATE INDEX sessions_user_activity ON sessions (user_id, last_activity_at DESC, position DESC)
    WHERE deleted_at IS NULL;
-- A session's tasks of one status in order: the earlier turns given to a runner, the
-- successful / failed counts of the session list.
CREATE INDEX tasks_session_status_created ON tasks (session_id, status, created_at);

CREATE FUNCTION taskgate_session_activity() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE sessions
    SET last_activity_at = GREATEST(COALESCE(last_activity_at, NEW.updated_at), NEW.updated_at)
    WHERE id = NEW.session_id;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_session_activity_insert AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION taskgate_session_activity();

CREATE TRIGGER tasks_session_activity_status AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
    EXECUTE FUNCTION taskgate_session_activity();

-- Full-text search over task queries and results: English stems (so "migrations" finds
-- "migration") and no stop words (every word can be searched for, as on SQLite).
CREATE TEXT SEARCH DICTIONARY taskgate_stem (TEMPLATE = snowball, Language = english);
CREATE TEXT SEARCH CONFIGURATION taskgate_search (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION taskgate_search
    ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword, hword_asciipart,
        hword_part, hword_numpart
    WITH taskgate_stem;

ALTER TABLE tasks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector('taskgate_search'::regconfig, query || ' ' || result)
) STORED;

CREATE INDEX tasks_search ON tasks USING gin (search_vector);
