"""Full-text search over a user's tasks on PostgreSQL: ``PostgresTaskSearch``.

Search reads ``tasks.search_vector`` (migration 0003): the query and result as English stems
without stop words, under a GIN index. All terms must match (``plainto_tsquery`` ANDs them).
"""

from collections.abc import Sequence

from orchestrator.domain.sessions import SearchHit
from orchestrator.store.database import Database
from orchestrator.store.rows import stored_time
from orchestrator.store.search import SNIPPET_MARK
from orchestrator.store.search import TaskSearch

SEARCH_CONFIGURATION = "taskgate_search"
# ts_headline's options: the best 8..16-word passage, each match between ``**``.
_HEADLINE_OPTIONS = f"StartSel={SNIPPET_MARK}, StopSel={SNIPPET_MARK}, MaxWords=16, MinWords=8, ShortWord=0"

# The caller's matching tasks, sessions not deleted (``::regconfig`` stays a cast when translated).
_TASK_SEARCH_FROM = (
    " FROM tasks t"
    " JOIN sessions s ON s.id = t.session_id"
    " CROSS JOIN plainto_tsquery('taskgate_search'::regconfig, :terms) AS q"
    " WHERE t.search_vector @@ q AND t.user_id = :user_id AND s.deleted_at IS NULL"
)


class PostgresTaskSearch(TaskSearch):
    """Search through the tsvector column: best ``ts_rank`` first, snippets from ``ts_headline``."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
        parameters = {
            "terms": " ".join(terms),
            "user_id": user_id,
            "options": _HEADLINE_OPTIONS,
            "limit": limit,
            "offset": offset,
        }
        total = await self._db.fetch_value("SELECT COUNT(*) AS total" + _TASK_SEARCH_FROM, parameters)
        rows = await self._db.fetch_all(
            "SELECT t.task_id, t.session_id, t.created_at, ts_headline('taskgate_search'::regconfig,"
            " t.query || ' ' || t.result, q, :options) AS snippet"
            + _TASK_SEARCH_FROM
            + " ORDER BY ts_rank(t.search_vector, q) DESC, t.created_at DESC, t.position DESC"
            " LIMIT :limit OFFSET :offset",
            parameters,
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", stored_time(row["created_at"]))
            for row in rows
        ]
        return hits, total or 0
