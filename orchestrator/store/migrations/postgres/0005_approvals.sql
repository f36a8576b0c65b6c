-- Approvals (mirrors sqlite/0005): a human decision a task waits for. A waiting task stays RUNNING
-- with no worker holding it (claimed_by NULL); the decision (or the expiry) moves it on in one
-- transaction. A task that ends while it waits (cancelled) takes its approval with it: 'cancelled'.

CREATE TABLE approvals (
    approval_id          text PRIMARY KEY,
    task_id              text NOT NULL REFERENCES tasks (task_id),
    user_id              text NOT NULL,
    tenant_id            text NOT NULL,
    -- Which step of the run asked: a run that starts over asks each step once.
    step                 text NOT NULL,
    proposed_action_json text NOT NULL DEFAULT '{}',
    reason               text NOT NULL DEFAULT '',
    status               text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'approved', 'rejected', 'expired', 'cancelled')),
    requested_at         timestamptz NOT NULL,
    expires_at           timestamptz NOT NULL,
    decided_by           text NOT NULL DEFAULT '',
    decided_at           timestamptz,
    feedback             text NOT NULL DEFAULT '',
    modified_action_json text NOT NULL DEFAULT '',
    UNIQUE (task_id, step)
);

CREATE INDEX approvals_user_requested ON approvals (user_id, requested_at);
CREATE INDEX approvals_pending_expiry ON approvals (expires_at) WHERE status = 'pending';
