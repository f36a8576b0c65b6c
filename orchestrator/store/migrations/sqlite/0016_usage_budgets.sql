-- Token and cost budgets: the usage ledger they are checked against, a key's own budgets, and the
-- key each task was submitted with (so its usage counts against that key too).

-- '' : the task was submitted without an API key (an access token, a schedule's run).
ALTER TABLE tasks ADD COLUMN api_key_id TEXT NOT NULL DEFAULT '';

-- NULL: the key has no budget of its own (its user's applies alone).
ALTER TABLE api_keys ADD COLUMN tokens_per_minute INTEGER CHECK (tokens_per_minute > 0);
ALTER TABLE api_keys ADD COLUMN usd_per_day REAL CHECK (usd_per_day > 0);

-- Usage recorded per user, key ('' for none) and UTC minute, and per user, key and UTC day, added
-- when a task finishes. A user's usage is the sum over their keys: one primary-key range read.
CREATE TABLE usage_minutes (
    user_id      TEXT NOT NULL,
    api_key_id   TEXT NOT NULL,
    minute_start TEXT NOT NULL,
    tokens       INTEGER NOT NULL DEFAULT 0,
    cost_usd     REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, minute_start, api_key_id)
) WITHOUT ROWID;

CREATE TABLE usage_days (
    user_id    TEXT NOT NULL,
    api_key_id TEXT NOT NULL,
    day_start  TEXT NOT NULL,
    tokens     INTEGER NOT NULL DEFAULT 0,
    cost_usd   REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, day_start, api_key_id)
) WITHOUT ROWID;
