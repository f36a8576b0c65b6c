-- Identity: passwords and display names of users, the description, scopes and rate-limit
-- overrides of API keys, and refresh tokens. Secrets are never stored: a password as its argon2id
-- hash, a refresh token as its SHA-256.

-- NULL: the user has no password (created by `taskgate keys create`) and cannot log in.
ALTER TABLE users ADD COLUMN password_hash TEXT;
ALTER TABLE users ADD COLUMN name TEXT NOT NULL DEFAULT '';

ALTER TABLE api_keys ADD COLUMN description TEXT NOT NULL DEFAULT '';
ALTER TABLE api_keys ADD COLUMN scopes_json TEXT NOT NULL DEFAULT '[]';
-- NULL: the caller's tier sets the limit.
ALTER TABLE api_keys ADD COLUMN rate_limit_per_minute INTEGER CHECK (rate_limit_per_minute > 0);
ALTER TABLE api_keys ADD COLUMN rate_limit_per_hour INTEGER CHECK (rate_limit_per_hour > 0);

-- A family is the chain of tokens rotated from one login. A token is used once (used_at); showing
-- a used token again revokes the whole family (revoked_at on each of its tokens).
CREATE TABLE refresh_tokens (
    id         TEXT PRIMARY KEY,
    family_id  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id),
    token_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    used_at    TEXT,
    revoked_at TEXT
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
-- A user's expired tokens are deleted when they log in again.
CREATE INDEX refresh_tokens_user_expires ON refresh_tokens (user_id, expires_at);
