"""Full-text search over tasks and usage stats on PostgreSQL.

Search reads ``tasks.search_vector`` (migration 0003): the query and result as English stems
without stop words, under a GIN index. All terms must match (``plainto_tsquery`` ANDs them).
"""

import datetime
from collections.abc import Sequence

from orchestrator.domain.sessions import SearchHit
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import utc

SEARCH_CONFIGURATION = "taskgate_search"
SNIPPET_MARK = "**"
# ts_headline's options: the best 8..16-word passage, each match between ``**``.
_HEADLINE_OPTIONS = f"StartSel={SNIPPET_MARK}, StopSel={SNIPPET_MARK}, MaxWords=16, MinWords=8, ShortWord=0"

# The caller's matching tasks, sessions not deleted.
_SEARCH_FROM = """
FROM tasks t
JOIN sessions s ON s.id = t.session_id
CROSS JOIN plainto_tsquery('taskgate_search'::regconfig, %(terms)s) AS q
WHERE t.search_vector @@ q AND t.user_id = %(user_id)s AND s.deleted_at IS NULL
"""


class PostgresSearch:
    """Search and stats methods of ``PostgresStore``."""

    _db: PostgresDatabase

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
        count_row = await self._db.fetch_one("SELECT COUNT(*) AS total" + _SEARCH_FROM, parameters)
        rows = await self._db.fetch_all(
            "SELECT t.task_id, t.session_id, t.created_at, ts_headline('taskgate_search'::regconfig,"
            " t.query || ' ' || t.result, q, %(options)s) AS snippet"
            + _SEARCH_FROM
            + " ORDER BY ts_rank(t.search_vector, q) DESC, t.created_at DESC, t.position DESC"
            " LIMIT %(limit)s OFFSET %(offset)s",
            parameters,
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", utc(row["created_at"]))
            for row in rows
        ]
        return hits, count_row["total"] if count_row else 0

    async def usage_stats(
        self, user_id: str, since: datetime.datetime, active_since: datetime.datetime
    ) -> UsageStats:
        """Aggregate the user's tasks and sessions of a window of time."""
        task_rows = await self._db.fetch_all(
            "SELECT status, COUNT(*) AS tasks, COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
            " COALESCE(SUM(cost_usd), 0) AS cost_usd"
            " FROM tasks WHERE user_id = %s AND created_at >= %s GROUP BY status",
            (user_id, since),
        )
        session_row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total, COUNT(*) FILTER (WHERE last_activity_at >= %s) AS active"
            " FROM sessions WHERE user_id = %s AND deleted_at IS NULL AND last_activity_at >= %s",
            (active_since, user_id, since),
        )
        by_status = {TaskStatus(row["status"]): row["tasks"] for row in task_rows}
        usage = TokenUsage(
            prompt_tokens=int(sum(row["prompt_tokens"] for row in task_rows)),
            completion_tokens=int(sum(row["completion_tokens"] for row in task_rows)),
            cost_usd=float(sum(row["cost_usd"] for row in task_rows)),
        )
        sessions_total, sessions_active = (
            (session_row["total"], session_row["active"]) if session_row else (0, 0)
        )
        return UsageStats(by_status, sessions_total, sessions_active, usage)
