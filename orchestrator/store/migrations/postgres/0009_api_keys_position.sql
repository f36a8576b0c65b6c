-- Insertion order of API keys: a user's keys are listed newest first, and keys created in the same
-- microsecond the later inserted first, as SQLite does by rowid (they were ordered by their random
-- ids before). Keys stored before this migration are numbered in the order the table holds them.
ALTER TABLE api_keys ADD COLUMN position bigint GENERATED ALWAYS AS IDENTITY;
