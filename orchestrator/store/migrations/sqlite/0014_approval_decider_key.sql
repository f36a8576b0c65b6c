-- Who decided an approval, and with which credential: decided_by holds the deciding user's id (the
-- approval's owner, the only user who may decide it); this records the API key that user decided
-- with, empty for a decision made with a password session (an access token) and for approvals
-- decided before this version or resolved by the clock or a cancel.
ALTER TABLE approvals ADD COLUMN decided_by_api_key_id TEXT NOT NULL DEFAULT '';
