-- Two indexes that keep work flat as rows pile up.
--
-- Approvals by status: the pending and decided lists, and their counts, read only the caller's
-- approvals in that status (the count from the index alone), not every approval the caller had.
--
-- Runs whose task is not yet confirmed stored: a run is claimed, then its task stored, then
-- the run marked. The scheduler's sweep for runs left unstarted (a replica stopped between the
-- claim and the task) reads only the unmarked runs, a handful, instead of joining every run
-- ever made against the tasks on each poll.

CREATE INDEX approvals_user_status_requested ON approvals (user_id, status, requested_at);

ALTER TABLE schedule_runs ADD COLUMN task_stored boolean NOT NULL DEFAULT false;
UPDATE schedule_runs SET task_stored = true WHERE task_id IN (SELECT task_id FROM tasks);
CREATE INDEX schedule_runs_unconfirmed ON schedule_runs (position) WHERE NOT task_stored;
