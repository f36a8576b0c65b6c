"""The SQLite store's session, search and stats queries, mixed into ``SQLiteStore``.

They read the schema of migration 0003: the sessions' budget, context and activity columns (the
activity kept by triggers), and the ``task_search`` FTS5 index the triggers keep beside ``tasks``.
"""

import datetime
import sqlite3
from collections.abc import Collection
from collections.abc import Sequence

from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.domain.sessions import SearchHit
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import decode_time
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_rows import event_from_row
from orchestrator.store.sqlite_rows import session_from_row
from orchestrator.store.sqlite_rows import task_from_row
from taskgate.rfc3339 import utc_now

SNIPPET_MARK = "**"
SNIPPET_ELLIPSIS = "…"
SNIPPET_TOKENS = 16


def _marks(values: Collection[object]) -> str:
    return ", ".join("?" for _ in values)


# A session with its task aggregates; the four sub-selects each read the tasks_session_* indexes.
# Only placeholders are formatted into the text; every value is a parameter.
_SUMMARY_SELECT = f"""
SELECT s.*,
    (SELECT COUNT(*) FROM tasks t WHERE t.session_id = s.id
        AND t.status IN ({_marks(SUCCESSFUL_STATUSES)})) AS successful_tasks,
    (SELECT COUNT(*) FROM tasks t WHERE t.session_id = s.id
        AND t.status IN ({_marks(FAILED_STATUSES)})) AS failed_tasks,
    (SELECT t.query FROM tasks t WHERE t.session_id = s.id
        ORDER BY t.created_at DESC, t.rowid DESC LIMIT 1) AS latest_task_query,
    (SELECT t.status FROM tasks t WHERE t.session_id = s.id
        ORDER BY t.created_at DESC, t.rowid DESC LIMIT 1) AS latest_task_status
FROM sessions s
"""  # noqa: S608
_SUMMARY_PARAMETERS = (*SUCCESSFUL_STATUSES, *FAILED_STATUSES)

# The caller's matching tasks, sessions not deleted; FTS5 finds the matches, the joins scope them.
_SEARCH_FROM = """
FROM task_search
JOIN task_search_documents d ON d.id = task_search.rowid
JOIN tasks t ON t.task_id = d.task_id
JOIN sessions s ON s.id = t.session_id
WHERE task_search MATCH ? AND t.user_id = ? AND s.deleted_at IS NULL
"""


def fts_query(terms: Sequence[str]) -> str:
    """Return the FTS5 query that asks for every term: each one a quoted string, so none is syntax."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def _summary_from_row(row: sqlite3.Row) -> SessionSummary:
    status = row["latest_task_status"]
    return SessionSummary(
        session=session_from_row(row),
        successful_tasks=row["successful_tasks"],
        failed_tasks=row["failed_tasks"],
        latest_task_query=row["latest_task_query"] or "",
        latest_task_status=TaskStatus(status) if status else None,
    )


class SQLiteSessionQueries:
    """Session lists and changes, a session's tasks and events, search and stats on SQLite."""

    _db: SQLiteDatabase

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> tuple[list[SessionSummary], int]:
        """Return one page of the user's sessions not deleted, most recently active first, and the total."""
        count_row = await self._db.fetch_one(
            "SELECT COUNT(*) FROM sessions WHERE user_id = ? AND deleted_at IS NULL", (user_id,)
        )
        rows = await self._db.fetch_all(
            _SUMMARY_SELECT + " WHERE s.user_id = ? AND s.deleted_at IS NULL"
            " ORDER BY s.last_activity_at DESC, s.rowid DESC LIMIT ? OFFSET ?",
            (*_SUMMARY_PARAMETERS, user_id, limit, offset),
        )
        return [_summary_from_row(row) for row in rows], count_row[0] if count_row else 0

    async def get_session_summary(self, session_id: str, user_id: str) -> SessionSummary | None:
        """Return one of the user's sessions that is not deleted, with the aggregates of its tasks."""
        row = await self._db.fetch_one(
            _SUMMARY_SELECT + " WHERE s.id = ? AND s.user_id = ? AND s.deleted_at IS NULL",
            (*_SUMMARY_PARAMETERS, session_id, user_id),
        )
        return _summary_from_row(row) if row else None

    async def rename_session(self, session_id: str, user_id: str, title: str) -> bool:
        """Set the title of one of the user's sessions that is not deleted; return whether it exists."""
        changed = await self._db.write(
            "UPDATE sessions SET title = ?, updated_at = ?"
            " WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
            (title, encode_time(utc_now()), session_id, user_id),
        )
        return changed > 0

    async def delete_session(self, session_id: str, user_id: str) -> bool:
        """Soft-delete one of the user's sessions; return whether the user has it, deleted or not."""
        now = encode_time(utc_now())
        changed = await self._db.write(
            "UPDATE sessions SET deleted_at = COALESCE(deleted_at, ?),"
            " updated_at = CASE WHEN deleted_at IS NULL THEN ? ELSE updated_at END"
            " WHERE id = ? AND user_id = ?",
            (now, now, session_id, user_id),
        )
        return changed > 0

    async def list_session_tasks(
        self, session_id: str, user_id: str, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks in a session, oldest first, and how many there are."""
        count_row = await self._db.fetch_one(
            "SELECT COUNT(*) FROM tasks WHERE session_id = ? AND user_id = ?", (session_id, user_id)
        )
        rows = await self._db.fetch_all(
            "SELECT * FROM tasks WHERE session_id = ? AND user_id = ?"
            " ORDER BY created_at, rowid LIMIT ? OFFSET ?",
            (session_id, user_id, limit, offset),
        )
        return [task_from_row(row) for row in rows], count_row[0] if count_row else 0

    async def session_history(
        self, session_id: str, user_id: str, before: datetime.datetime, limit: int
    ) -> list[TaskRecord]:
        """Return the session's latest ``limit`` COMPLETED tasks created before ``before``, oldest first."""
        rows = await self._db.fetch_all(
            "SELECT * FROM tasks WHERE session_id = ? AND user_id = ? AND status = ? AND created_at < ?"
            " ORDER BY created_at DESC, rowid DESC LIMIT ?",
            (session_id, user_id, TaskStatus.COMPLETED, encode_time(before), limit),
        )
        return [task_from_row(row) for row in reversed(rows)]

    async def list_workflow_events(
        self, workflow_ids: Sequence[str], exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """Return at most ``limit`` events of several workflows, by workflow id then seq, types excluded."""
        if not workflow_ids:
            return []
        excluded = list(exclude_types)
        type_condition = f" AND type NOT IN ({_marks(excluded)})" if excluded else ""
        rows = await self._db.fetch_all(
            f"SELECT * FROM events WHERE workflow_id IN ({_marks(workflow_ids)}){type_condition}"  # noqa: S608
            " ORDER BY workflow_id, seq LIMIT ?",
            (*workflow_ids, *excluded, limit),
        )
        return [event_from_row(row) for row in rows]

    async def search_tasks(
        self, user_id: str, terms: Sequence[str], limit: int, offset: int
    ) -> tuple[list[SearchHit], int]:
        """Return one page of the user's tasks matching every term, best match first, and the total."""
        match = fts_query(terms)
        count_row = await self._db.fetch_one("SELECT COUNT(*)" + _SEARCH_FROM, (match, user_id))
        rows = await self._db.fetch_all(
            "SELECT t.task_id, t.session_id, t.created_at,"
            " snippet(task_search, -1, ?, ?, ?, ?) AS snippet" + _SEARCH_FROM + " ORDER BY task_search.rank,"
            " t.created_at DESC LIMIT ? OFFSET ?",
            (SNIPPET_MARK, SNIPPET_MARK, SNIPPET_ELLIPSIS, SNIPPET_TOKENS, match, user_id, limit, offset),
        )
        hits = [
            SearchHit(row["task_id"], row["session_id"], row["snippet"] or "", decode_time(row["created_at"]))
            for row in rows
        ]
        return hits, count_row[0] if count_row else 0

    async def usage_stats(
        self, user_id: str, since: datetime.datetime, active_since: datetime.datetime
    ) -> UsageStats:
        """Aggregate the user's tasks and sessions of a window of time."""
        task_rows = await self._db.fetch_all(
            "SELECT status, COUNT(*), TOTAL(prompt_tokens), TOTAL(completion_tokens), TOTAL(cost_usd)"
            " FROM tasks WHERE user_id = ? AND created_at >= ? GROUP BY status",
            (user_id, encode_time(since)),
        )
        session_row = await self._db.fetch_one(
            "SELECT COUNT(*), TOTAL(last_activity_at >= ?) FROM sessions"
            " WHERE user_id = ? AND deleted_at IS NULL AND last_activity_at >= ?",
            (encode_time(active_since), user_id, encode_time(since)),
        )
        by_status = {TaskStatus(row[0]): row[1] for row in task_rows}
        usage = TokenUsage(
            prompt_tokens=int(sum(row[2] for row in task_rows)),
            completion_tokens=int(sum(row[3] for row in task_rows)),
            cost_usd=sum(row[4] for row in task_rows),
        )
        sessions_total, sessions_active = (session_row[0], int(session_row[1])) if session_row else (0, 0)
        return UsageStats(by_status, sessions_total, sessions_active, usage)
