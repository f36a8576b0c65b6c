-- Sessions as conversations with a budget, and full-text search over tasks.
--
-- sessions.token_budget: NULL means no budget; tasks are refused once tokens_used reaches it.
-- sessions.context_json: the context of the task that started the session.
-- sessions.last_activity_at: when a task of the session was last submitted or changed status. The
-- triggers below keep it, so every path that changes a task's status (finishing, cancelling,
-- timing out, recovering) moves it without having to remember to.

ALTER TABLE sessions ADD COLUMN token_budget INTEGER CHECK (token_budget IS NULL OR token_budget > 0);
ALTER TABLE sessions ADD COLUMN context_json TEXT NOT NULL DEFAULT '{}';
ALTER TABLE sessions ADD COLUMN last_activity_at TEXT;

UPDATE sessions SET last_activity_at = COALESCE(
    (SELECT MAX(tasks.updated_at) FROM tasks WHERE tasks.session_id = sessions.id),
    sessions.updated_at
);

-- A user's live sessions, most recently active first (the session list, the stats window).
CREATE INDEX sessions_user_activity ON sessions (user_id, last_activity_at) WHERE deleted_at IS NULL;
-- A session's tasks of one status in order: the earlier turns given to a runner, the
-- successful / failed counts of the session list.
CREATE INDEX tasks_session_status_created ON tasks (session_id, status, created_at);

CREATE TRIGGER tasks_session_activity_insert AFTER INSERT ON tasks
BEGIN
    UPDATE sessions SET last_activity_at = max(COALESCE(last_activity_at, ''), new.updated_at)
    WHERE id = new.session_id;
END;

CREATE TRIGGER tasks_session_activity_status AFTER UPDATE OF status ON tasks
WHEN old.status IS NOT new.status
BEGIN
    UPDATE sessions SET last_activity_at = max(COALESCE(last_activity_at, ''), new.updated_at)
    WHERE id = new.session_id;
END;

-- Full-text search over task queries and results. The index keeps its own copy of the text, keyed
-- by task_search_documents.id: an explicit INTEGER PRIMARY KEY, which (unlike the implicit rowid of
-- tasks) VACUUM never renumbers. Porter stemming lets "migrations" find "migration".
CREATE TABLE task_search_documents (
    id      INTEGER PRIMARY KEY,
    task_id TEXT NOT NULL UNIQUE
);

CREATE VIRTUAL TABLE task_search USING fts5 (
    query,
    result,
    tokenize = 'porter unicode61 remove_diacritics 2'
);

INSERT INTO task_search_documents (task_id) SELECT task_id FROM tasks ORDER BY created_at, rowid;
INSERT INTO task_search (rowid, query, result)
    SELECT d.id, t.query, t.result FROM task_search_documents d JOIN tasks t ON t.task_id = d.task_id;

CREATE TRIGGER tasks_search_insert AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_search_documents (task_id) VALUES (new.task_id);
    INSERT INTO task_search (rowid, query, result)
        VALUES ((SELECT id FROM task_search_documents WHERE task_id = new.task_id), new.query, new.result);
END;

CREATE TRIGGER tasks_search_update AFTER UPDATE OF query, result ON tasks
WHEN old.query IS NOT new.query OR old.result IS NOT new.result
BEGIN
    UPDATE task_search SET query = new.query, result = new.result
    WHERE rowid = (SELECT id FROM task_search_documents WHERE task_id = new.task_id);
END;

CREATE TRIGGER tasks_search_delete AFTER DELETE ON tasks
BEGIN
    DELETE FROM task_search WHERE rowid = (SELECT id FROM task_search_documents WHERE task_id = old.task_id);
    DELETE FROM task_search_documents WHERE task_id = old.task_id;
END;
