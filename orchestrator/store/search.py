"""Full-text search over a user's tasks: the one area with an implementation per database.

``TaskSearch`` runs the search, counts and pages once; each database gives only its SQL: SQLite
searches an FTS5 index (``sqlite_search.py``), PostgreSQL a tsvector column under a GIN index
(``postgres_search.py``).
"""

import abc
from collections.abc import Sequence
from typing import Any

from orchestrator.domain.sessions import SearchHit
from orchestrator.store.database import Database
from orchestrator.store.rows import stored_time

#: What marks each match in a hit's snippet.
SNIPPET_MARK = "**"


class TaskSearch(abc.ABC):
    """Finds the tasks whose query or result holds every term; a subclass gives its database's SQL."""

    #: ``FROM … WHERE …`` of the caller's matching tasks (aliased ``t``) whose sessions are not
    #: deleted, with the parameters ``:user_id`` and those of ``match_parameters``.
    matches_sql: str
    #: The expression of a match's snippet, each match between ``SNIPPET_MARK``.
    snippet_sql: str
    #: The ``ORDER BY`` terms: best match first, then newest, then the later inserted (so pages
    #: never overlap).
    order_sql: str

    def __init__(self, database: Database) -> None:
        self._db = database

    @abc.abstractmethod
    def match_parameters(self, terms: Sequence[str]) -> dict[str, Any]:
        """Return the parameters ``matches_sql`` and ``snippet_sql`` take, besides ``:user_id``."""

    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
        parameters = {**self.match_parameters(terms), "user_id": user_id, "limit": limit, "offset": offset}
        total = await self._db.fetch_value("SELECT COUNT(*) AS total" + self.matches_sql, parameters)
        rows = await self._db.fetch_all(
            f"SELECT t.task_id, t.session_id, t.created_at, {self.snippet_sql} AS snippet"
            + self.matches_sql
            + f" ORDER BY {self.order_sql} LIMIT :limit OFFSET :offset",
            parameters,
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", stored_time(row["created_at"]))
            for row in rows
        ]
        return hits, total or 0
