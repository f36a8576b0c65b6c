-- The caller's live feed (GET /api/v1/stream/tasks): one row per change a dashboard shows - a task
-- created, its status changed, its progress moved by a tenth, an approval requested or decided -
-- numbered by change_id, which a watcher resumes after (docs/internals.md, "The task feed").
--
-- Triggers write the rows, so every path that changes a task or an approval (a submit, a claim, a
-- step's progress, a finish, a pause, a lease's recovery, a schedule's run) feeds it without
-- knowing. SQLite has one writer, so change_id's order is commit order: a reader that has seen
-- change_id N never later finds a new row below N. (PostgreSQL numbers its rows after commit
-- instead; see postgres/0018.)

CREATE TABLE task_changes (
    change_id   INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    session_id  TEXT NOT NULL,
    kind        TEXT NOT NULL,
    status      TEXT NOT NULL,
    progress    REAL,
    approval_id TEXT,
    decision    TEXT,
    created_at  TEXT NOT NULL
);

CREATE INDEX task_changes_user ON task_changes (user_id, change_id);
CREATE INDEX task_changes_created ON task_changes (created_at);

CREATE TRIGGER task_changes_task_created AFTER INSERT ON tasks
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, created_at)
    VALUES (NEW.user_id, NEW.task_id, NEW.session_id, 'task.created', NEW.status, NEW.progress, NEW.created_at);
END;

CREATE TRIGGER task_changes_task_status AFTER UPDATE OF status ON tasks
    WHEN NEW.status <> OLD.status
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, created_at)
    VALUES (NEW.user_id, NEW.task_id, NEW.session_id, 'task.status', NEW.status, NEW.progress, NEW.updated_at);
END;

-- A tenth at a time: a run reports progress at every step, a dashboard needs far fewer.
CREATE TRIGGER task_changes_task_progress AFTER UPDATE OF progress ON tasks
    WHEN NEW.status = OLD.status AND CAST(NEW.progress * 10 AS INTEGER) <> CAST(OLD.progress * 10 AS INTEGER)
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, created_at)
    VALUES (NEW.user_id, NEW.task_id, NEW.session_id, 'task.progress', NEW.status, NEW.progress, NEW.updated_at);
END;

CREATE TRIGGER task_changes_approval_requested AFTER INSERT ON approvals
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, approval_id, created_at)
    SELECT tasks.user_id, tasks.task_id, tasks.session_id, 'approval.requested', tasks.status, tasks.progress,
           NEW.approval_id, NEW.requested_at
    FROM tasks WHERE tasks.task_id = NEW.task_id;
END;

CREATE TRIGGER task_changes_approval_decided AFTER UPDATE OF status ON approvals
    WHEN OLD.status = 'pending' AND NEW.status <> 'pending'
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, approval_id, decision, created_at)
    SELECT tasks.user_id, tasks.task_id, tasks.session_id, 'approval.decided', tasks.status, tasks.progress,
           NEW.approval_id, NEW.status, COALESCE(NEW.decided_at, tasks.updated_at)
    FROM tasks WHERE tasks.task_id = NEW.task_id;
END;
