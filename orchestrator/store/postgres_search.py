"""Full-text search over a user's tasks on PostgreSQL: ``PostgresTaskSearch``.

Search reads ``tasks.search_vector`` (migration 0003): the query and result as English stems
without stop words, under a GIN index. All terms must match (``plainto_tsquery`` ANDs them).
"""

from collections.abc import Sequence
from typing import Any

from orchestrator.store.search import SNIPPET_MARK
from orchestrator.store.search import TaskSearch

SEARCH_CONFIGURATION = "taskgate_search"
# ts_headline's options: the best 8..16-word passage, each match between ``**``.
_HEADLINE_OPTIONS = f"StartSel={SNIPPET_MARK}, StopSel={SNIPPET_MARK}, MaxWords=16, MinWords=8, ShortWord=0"


class PostgresTaskSearch(TaskSearch):
    """Search through the tsvector column: best ``ts_rank`` first, snippets from ``ts_headline``."""

    # ``::regconfig`` stays a cast when the statement is translated.
    source_sql = "tasks t CROSS JOIN plainto_tsquery('taskgate_search'::regconfig, :terms) AS q"
    match_sql = "t.search_vector @@ q"
    snippet_sql = "ts_headline('taskgate_search'::regconfig, t.query || ' ' || t.result, q, :options)"
    rank_sql = "ts_rank(t.search_vector, q) DESC"

    def match_parameters(self, terms: Sequence[str]) -> dict[str, Any]:
        """Return the terms as ``plainto_tsquery`` reads them, and ``ts_headline``'s options."""
        return {"terms": " ".join(terms), "options": _HEADLINE_OPTIONS}
