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

    # The index's rows, then the tasks they are of.
    source_sql = (
        "task_search JOIN task_search_documents d ON d.id = task_search.rowid"
        " JOIN tasks t ON t.task_id = d.task_id"
    )
    match_sql = "task_search MATCH :match"
    snippet_sql = "snippet(task_search, -1, :mark, :mark, :ellipsis, :tokens)"
    rank_sql = "task_search.rank"

    def match_parameters(self, terms: Sequence[str]) -> dict[str, Any]:
        """Return the FTS5 query of the terms, and ``snippet()``'s marks, ellipsis and length."""
        return {
            "match": fts_query(terms),
            "mark": SNIPPET_MARK,
            "ellipsis": SNIPPET_ELLIPSIS,
            "tokens": SNIPPET_TOKENS,
        }
