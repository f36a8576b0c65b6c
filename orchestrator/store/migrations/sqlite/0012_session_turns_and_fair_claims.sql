-- A session's turns, fair claims across users, and a schedule's task stored with its tick.
--
-- rolled_back: a turn a later turn of its session rolled back (multitask_strategy "rollback"). It
-- stays readable by its id, but the session's history, turns, export, aggregates and the search
-- leave it out, and runners never get it as an earlier turn.
--
-- The claim (orchestrator/store/claims.py) reads, per user with queued tasks, how many running
-- tasks the user holds and the oldest queued task with no earlier active turn in its session; each
-- of these partial indexes holds only the rows one of those questions asks about. SQLite indexes
-- carry the rowid, the insertion order that breaks ties of created_at.

ALTER TABLE tasks ADD COLUMN rolled_back INTEGER NOT NULL DEFAULT 0;

CREATE INDEX tasks_queued_by_user ON tasks (user_id, created_at) WHERE status = 'QUEUED';
CREATE INDEX tasks_active_by_session ON tasks (session_id, created_at)
    WHERE status IN ('QUEUED', 'RUNNING', 'PAUSED');
CREATE INDEX tasks_running_by_user ON tasks (user_id) WHERE status = 'RUNNING' AND claimed_by IS NOT NULL;

-- A run of a schedule is now stored with its task in one transaction (task_stored = 1 from the
-- start). Runs an earlier version claimed keep the column's old meaning: the sweep still starts
-- those left without their task.
