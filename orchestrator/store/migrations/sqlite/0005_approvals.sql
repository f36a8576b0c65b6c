-- Approvals: a human decision a task waits for. A waiting task stays RUNNING with no worker
-- holding it (claimed_by NULL); the decision (or the expiry) moves it on in one transaction.
-- A task that ends while it waits (cancelled) takes its approval with it: 'cancelled'.

CREATE TABLE approvals (
    approval_id          TEXT PRIMARY KEY,
    task_id              TEXT NOT NULL REFERENCES tasks (task_id),
    user_id              TEXT NOT NULL,
    tenant_id            TEXT NOT NULL,
    -- Which step of the run asked: a run that starts over asks each step once.
    step                 TEXT NOT NULL,
    proposed_action_json TEXT NOT NULL DEFAULT '{}',
    reason               TEXT NOT NULL DEFAULT '',
    status               TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    requested_at         TEXT NOT NULL,
    expires_at           TEXT NOT NULL,
    decided_by           TEXT NOT NULL DEFAULT '',
    decided_at           TEXT,
    feedback             TEXT NOT NULL DEFAULT '',
    modified_action_json TEXT NOT NULL DEFAULT '',
    UNIQUE (task_id, step)
);

CREATE INDEX approvals_user_requested ON approvals (user_id, requested_at);
CREATE INDEX approvals_pending_expiry ON approvals (expires_at) WHERE status = 'pending';
