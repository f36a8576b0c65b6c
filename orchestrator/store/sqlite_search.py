"""Full-text search over a user's tasks on SQLite: the FTS5 index ``task_search``.

The index (migration 0003) keeps its own copy of each task's query and result, stemmed by the
porter tokenizer, keyed by ``task_search_documents.id``; triggers on ``tasks`` keep it current.
"""

from collections.abc import Sequence
from typing import Any

from orchestrator.store.search import SNIPPET_MARK
from orchestrator.store.search import TaskSearch

SNIPPET_ELLIPSIS = "…"
SNIPPET_TOKENS = 16


def fts_query(terms: Sequence[str]) -> str:
    """Return the FTS5 query that asks for every term: each one a quoted string, so none is syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


class SQLiteTaskSearch(TaskSearch):
    """Search through the FTS5 index: best rank first, snippets from FTS5's ``snippet()``."""

    # FTS5 finds the matches, the joins scope them.
    matches_sql = (
        " FROM task_search"
        " JOIN task_search_documents d ON d.id = task_search.rowid"
        " JOIN tasks t ON t.task_id = d.task_id"
        " JOIN sessions s ON s.id = t.session_id"
        " WHERE task_search MATCH :match AND t.user_id = :user_id AND s.deleted_at IS NULL"
    )
    snippet_sql = "snippet(task_search, -1, :mark, :mark, :ellipsis, :tokens)"
    order_sql = "task_search.rank, t.created_at DESC, t.rowid DESC"

    def match_parameters(self, terms: Sequence[str]) -> dict[str, Any]:
        """Return the FTS5 query of the terms, and ``snippet()``'s marks, ellipsis and length."""
        return {
            "match": fts_query(terms),
            "mark": SNIPPET_MARK,
            "ellipsis": SNIPPET_ELLIPSIS,
            "tokens": SNIPPET_TOKENS,
        }
