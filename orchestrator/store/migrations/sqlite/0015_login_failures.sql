-- Per-account login throttling: consecutive failed logins per email and the refusal they started
-- (orchestrator/store/login_failures.py). The email is kept only as its SHA-256, since the table
-- also holds emails with no account. A success deletes the row; rows idle for a day are swept.
CREATE TABLE login_failures (
    email_hash      TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL CHECK (failures > 0),
    last_failure_at TEXT NOT NULL,
    -- NULL: fewer failures than the throttle's threshold; logins are not refused.
    blocked_until   TEXT
);

CREATE INDEX login_failures_last_failure ON login_failures (last_failure_at);
