"""Full-text search over a user's tasks: the one area with an implementation per database.

SQLite searches an FTS5 index (``sqlite_search.py``), PostgreSQL a tsvector column under a GIN
index (``postgres_search.py``); both answer ``search_tasks`` with the same contract.
"""

import abc
from collections.abc import Sequence

from orchestrator.domain.sessions import SearchHit

#: What marks each match in a hit's snippet.
SNIPPET_MARK = "**"


class TaskSearch(abc.ABC):
    """Finds the tasks whose query or result holds every term."""

    @abc.abstractmethod
    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
