-- The caller's live feed (mirrors sqlite/0018; docs/internals.md, "The task feed"): one row per
-- change a dashboard shows, written by triggers so that every path changing a task or an approval
-- feeds it without knowing.
--
-- Numbered after commit. Concurrent transactions commit in any order, so an id drawn while
-- inserting could become visible after a higher one that a reader already passed, and that reader
-- would never see it. So a trigger leaves change_id NULL (the row is pending), and whoever reads
-- the feed first numbers the committed pending rows, in pending_id order, under an advisory lock
-- held to its commit (orchestrator/store/task_changes.py): numberings happen one after another,
-- each above the last, so a reader that has seen change_id N never later finds a new row below N.

CREATE TABLE task_changes (
    pending_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    change_id   bigint UNIQUE,
    user_id     text NOT NULL,
    task_id     text NOT NULL,
    session_id  text NOT NULL,
    kind        text NOT NULL,
    status      text NOT NULL,
    progress    double precision,
    approval_id text,
    decision    text,
    created_at  timestamptz NOT NULL
);

CREATE INDEX task_changes_user ON task_changes (user_id, change_id) WHERE change_id IS NOT NULL;
CREATE INDEX task_changes_pending ON task_changes (pending_id) WHERE change_id IS NULL;
CREATE INDEX task_changes_created ON task_changes (created_at);

CREATE FUNCTION taskgate_task_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, created_at)
    VALUES (NEW.user_id, NEW.task_id, NEW.session_id, TG_ARGV[0], NEW.status, NEW.progress,
            CASE WHEN TG_OP = 'INSERT' THEN NEW.created_at ELSE NEW.updated_at END);
    RETURN NULL;
END;
$$;

CREATE FUNCTION taskgate_approval_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO task_changes (user_id, task_id, session_id, kind, status, progress, approval_id, decision, created_at)
    SELECT tasks.user_id, tasks.task_id, tasks.session_id, TG_ARGV[0], tasks.status, tasks.progress,
           NEW.approval_id,
           CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE NEW.status END,
           CASE WHEN TG_OP = 'INSERT' THEN NEW.requested_at ELSE COALESCE(NEW.decided_at, tasks.updated_at) END
    FROM tasks WHERE tasks.task_id = NEW.task_id;
    RETURN NULL;
END;
$$;

-- Row-level with WHEN, as 0013's: rows that change nothing a dashboard shows cost no call.
CREATE TRIGGER task_changes_task_created AFTER INSERT ON tasks
    FOR EACH ROW EXECUTE FUNCTION taskgate_task_change('task.created');
CREATE TRIGGER task_changes_task_status AFTER UPDATE OF status ON tasks
    FOR EACH ROW WHEN (NEW.status <> OLD.status)
    EXECUTE FUNCTION taskgate_task_change('task.status');
-- A tenth at a time: a run reports progress at every step, a dashboard needs far fewer.
CREATE TRIGGER task_changes_task_progress AFTER UPDATE OF progress ON tasks
    FOR EACH ROW WHEN (NEW.status = OLD.status AND floor(NEW.progress * 10) <> floor(OLD.progress * 10))
    EXECUTE FUNCTION taskgate_task_change('task.progress');
CREATE TRIGGER task_changes_approval_requested AFTER INSERT ON approvals
    FOR EACH ROW EXECUTE FUNCTION taskgate_approval_change('approval.requested');
CREATE TRIGGER task_changes_approval_decided AFTER UPDATE OF status ON approvals
    FOR EACH ROW WHEN (OLD.status = 'pending' AND NEW.status <> 'pending')
    EXECUTE FUNCTION taskgate_approval_change('approval.decided');
