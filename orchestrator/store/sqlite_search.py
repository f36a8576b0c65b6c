"""Full-text search over a user's tasks on SQLite: the FTS5 index ``task_search``.

The index (migration 0003) keeps its own copy of each task's query and result, stemmed by the
porter tokenizer, keyed by ``task_search_documents.id``; triggers on ``tasks`` keep it current.
"""

from collections.abc import Sequence

from orchestrator.domain.sessions import SearchHit
from orchestrator.store.database import Database
from orchestrator.store.rows import stored_time
from orchestrator.store.search import SNIPPET_MARK
from orchestrator.store.search import TaskSearch

SNIPPET_ELLIPSIS = "…"
SNIPPET_TOKENS = 16

# The caller's matching tasks, sessions not deleted; FTS5 finds the matches, the joins scope them.
_SEARCH_FROM = (
    " FROM task_search"
    " JOIN task_search_documents d ON d.id = task_search.rowid"
    " JOIN tasks t ON t.task_id = d.task_id"
    " JOIN sessions s ON s.id = t.session_id"
    " WHERE task_search MATCH :match AND t.user_id = :user_id AND s.deleted_at IS NULL"
)


def fts_query(terms: Sequence[str]) -> str:
    """Return the FTS5 query that asks for every term: each one a quoted string, so none is syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


class SQLiteTaskSearch(TaskSearch):
    """Search through the FTS5 index: best rank first, snippets from FTS5's ``snippet()``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
        parameters = {
            "match": fts_query(terms),
            "user_id": user_id,
            "mark": SNIPPET_MARK,
            "ellipsis": SNIPPET_ELLIPSIS,
            "tokens": SNIPPET_TOKENS,
            "limit": limit,
            "offset": offset,
        }
        total = await self._db.fetch_value("SELECT COUNT(*) AS total" + _SEARCH_FROM, parameters)
        # Ties of rank and time fall back to insertion order, newest first, so pages never overlap.
        rows = await self._db.fetch_all(
            "SELECT t.task_id, t.session_id, t.created_at,"
            " snippet(task_search, -1, :mark, :mark, :ellipsis, :tokens) AS snippet"
            + _SEARCH_FROM
            + " ORDER BY task_search.rank, t.created_at DESC, t.rowid DESC LIMIT :limit OFFSET :offset",
            parameters,
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", stored_time(row["created_at"]))
            for row in rows
        ]
        return hits, total or 0
