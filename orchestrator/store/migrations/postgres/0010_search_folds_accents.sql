-- Search folds accents, as SQLite's tokenizer does (remove_diacritics): "cafe" finds "café".
-- unaccent runs before the stemmer on every word. The stored vectors were computed without it,
-- so the generated column is dropped and added again, which recomputes every row's.
CREATE EXTENSION IF NOT EXISTS unaccent;
ALTER TEXT SEARCH CONFIGURATION taskgate_search
    ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword, hword_asciipart,
        hword_part, hword_numpart
    WITH unaccent, taskgate_stem;

DROP INDEX tasks_search;
ALTER TABLE tasks DROP COLUMN search_vector;
ALTER TABLE tasks ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    to_tsvector('taskgate_search'::regconfig, query || ' ' || result)
) STORED;
CREATE INDEX tasks_search ON tasks USING gin (search_vector);
