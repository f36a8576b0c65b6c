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
from orchestrator.store.sessions import VISIBLE_TURN
from orchestrator.store.sessions import VISIBLE_TURN_PARAMETERS

#: What marks each match in a hit's snippet.
SNIPPET_MARK = "**"


class TaskSearch(abc.ABC):
    """Finds the tasks whose query or result holds every term; a subclass gives its database's SQL."""

    #: The tables the matches come from, the tasks among them aliased ``t``.
    source_sql: str
    #: The condition a matching task meets.
    match_sql: str
    #: The expression of a match's snippet, each match between ``SNIPPET_MARK``.
    snippet_sql: str
    #: The ``ORDER BY`` term putting the best match first.
    rank_sql: str

    def __init__(self, database: Database) -> None:
        self._db = database

    @abc.abstractmethod
    def match_parameters(self, terms: Sequence[str]) -> dict[str, Any]:
        """Return the parameters of the SQL above: all but ``:user_id``, ``:limit`` and ``:offset``."""

    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
        # The caller's matching tasks, sessions not deleted, turns not rolled back.
        matches = (
            f" FROM {self.source_sql} JOIN sessions s ON s.user_id = t.user_id AND s.id = t.session_id"
            f" WHERE {self.match_sql} AND t.user_id = :user_id AND s.deleted_at IS NULL AND t.{VISIBLE_TURN}"
        )
        parameters = {
            **self.match_parameters(terms),
            **VISIBLE_TURN_PARAMETERS,
            "user_id": user_id,
            "limit": limit,
            "offset": offset,
        }
        total = await self._db.fetch_value("SELECT COUNT(*) AS total" + matches, parameters)
        # Ties of rank and time fall back to insertion order, newest first, so pages never overlap.
        rows = await self._db.fetch_all(
            f"SELECT t.task_id, t.session_id, t.created_at, {self.snippet_sql} AS snippet"
            + matches
            + f" ORDER BY {self.rank_sql}, t.created_at DESC, t.{self._db.dialect.insertion_order} DESC"
            " LIMIT :limit OFFSET :offset",
            parameters,
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", stored_time(row["created_at"]))
            for row in rows
        ]
        return hits, total or 0
