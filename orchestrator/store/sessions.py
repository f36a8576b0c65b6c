"""Sessions: creating, reading, listing with their task aggregates, renaming, deleting, usage.

A session is created with its first task (``submissions.py`` calls ``insert_session``); everything
else about sessions is here, scoped to the user who owns them. A turn rolled back by a later one
(``rolled_back``, ``orchestrator.domain.turns``) is no part of its session any more: the history,
the turns and the aggregates leave it out (``VISIBLE_TURN``), though it stays readable by its id.
"""

import dataclasses
import datetime
from collections.abc import Collection
from typing import Any

from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.domain.sessions import DayUsage
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Row
from orchestrator.store.database import Transaction
from orchestrator.store.database import named_list
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import event_from_row
from orchestrator.store.rows import session_from_row
from orchestrator.store.rows import task_from_row
from taskgate.rfc3339 import utc_now


@dataclasses.dataclass(frozen=True)
class ExportPosition:
    """Where an export's reading of a session's tasks stands: the last task's stored time and order."""

    created_at: Any
    order: int


def new_session(
    session_id: str, user_id: str, tenant_id: str, title: str, now: datetime.datetime
) -> SessionRecord:
    """Return a new, empty session."""
    return SessionRecord(session_id, user_id, tenant_id, title, 0, 0.0, 0, now, now)


async def insert_session(
    transaction: Transaction, dialect: Dialect, session: SessionRecord, if_absent: bool = False
) -> None:
    """Insert a session row; with ``if_absent`` the user's existing session of that id is left as it is."""
    statement, values = session_insert(dialect, session)
    if if_absent:
        statement += " ON CONFLICT (user_id, id) DO NOTHING"
    await transaction.execute(statement, values)


def session_insert(
    dialect: Dialect, session: SessionRecord, task_count: int = 0
) -> tuple[str, tuple[object, ...]]:
    """Return the INSERT of a new session row counting ``task_count`` turns, and its values."""
    return (
        "INSERT INTO sessions (id, user_id, tenant_id, title, created_at, updated_at, token_budget,"
        " context_json, last_activity_at, task_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session.id,
            session.user_id,
            session.tenant_id,
            session.title,
            dialect.encode_time(session.created_at),
            dialect.encode_time(session.updated_at),
            session.token_budget,
            compact_json(session.context),
            dialect.encode_time(session.created_at),
            task_count,
        ),
    )


def counted_session(dialect: Dialect, session: SessionRecord) -> tuple[str, tuple[object, ...]]:
    """Return the statement that inserts a session with one task counted, or counts one more in it.

    Either way the row is locked until the commit (PostgreSQL: as an UPDATE locks it). It returns
    ``deleted_at``, ``tokens_used`` and ``token_budget``, and where the database can tell,
    ``inserted`` (true for a row this statement inserted, which has no earlier task).
    """
    inserted = dialect.inserted_by_upsert
    statement, values = session_insert(dialect, session, task_count=1)
    statement += (
        " ON CONFLICT (user_id, id) DO UPDATE SET task_count = sessions.task_count + 1,"
        " updated_at = excluded.updated_at"
        " RETURNING deleted_at, tokens_used, token_budget" + (f", {inserted} AS inserted" if inserted else "")
    )
    return statement, values


#: The condition a task of a session meets unless a later turn rolled it back (the column is indexed
#: nowhere: every query that uses it reads one session's tasks, or one user's, already).
VISIBLE_TURN = "rolled_back = :rolled_back"
VISIBLE_TURN_PARAMETERS = {"rolled_back": False}

# The statuses a session's summary counts, as ``IN (…)`` lists of named parameters.
_SUCCESSFUL, _SUCCESSFUL_VALUES = named_list("successful", [status.value for status in SUCCESSFUL_STATUSES])
_FAILED, _FAILED_VALUES = named_list("failed", [status.value for status in FAILED_STATUSES])
_SUMMARY_PARAMETERS = {**_SUCCESSFUL_VALUES, **_FAILED_VALUES, **VISIBLE_TURN_PARAMETERS}


def _summary_select(dialect: Dialect) -> str:
    """Return a select of sessions with the aggregates of their tasks, for a ``WHERE`` to follow.

    One correlated sub-select per aggregate, each reading the ``tasks_session_*`` indexes; the
    latest task is the one created last, the one inserted last when two share a time.
    """
    of_session = f"FROM tasks t WHERE t.user_id = s.user_id AND t.session_id = s.id AND t.{VISIBLE_TURN}"
    latest = f"{of_session} ORDER BY t.created_at DESC, t.{dialect.insertion_order} DESC LIMIT 1"
    return (
        "SELECT s.*,"
        f" (SELECT COUNT(*) {of_session} AND t.status IN ({_SUCCESSFUL})) AS successful_tasks,"
        f" (SELECT COUNT(*) {of_session} AND t.status IN ({_FAILED})) AS failed_tasks,"
        f" (SELECT t.query {latest}) AS latest_task_query,"
        f" (SELECT t.status {latest}) AS latest_task_status"
        " FROM sessions s"
    )


def _summary_from_row(row: Row) -> SessionSummary:
    status = row["latest_task_status"]
    return SessionSummary(
        session=session_from_row(row),
        successful_tasks=row["successful_tasks"],
        failed_tasks=row["failed_tasks"],
        latest_task_query=row["latest_task_query"] or "",
        latest_task_status=TaskStatus(status) if status else None,
    )


class SessionQueries:
    """A user's sessions: reading, listing with their task aggregates, renaming, deleting, usage.

    Every method is scoped to one user: another user's session reads as missing.
    """

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_session(
        self, session_id: str, user_id: str, include_deleted: bool = False
    ) -> SessionRecord | None:
        row = await self._db.fetch_one(
            "SELECT * FROM sessions WHERE id = ? AND user_id = ? AND (deleted_at IS NULL OR ?)",
            (session_id, user_id, include_deleted),
        )
        return session_from_row(row) if row else None

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> tuple[list[SessionSummary], int]:
        """Count the sessions, then read the page with the aggregates of ``_summary_select``."""
        dialect = self._db.dialect
        total = await self._db.fetch_value(
            "SELECT COUNT(*) AS total FROM sessions WHERE user_id = ? AND deleted_at IS NULL", (user_id,)
        )
        rows = await self._db.fetch_all(
            _summary_select(dialect) + " WHERE s.user_id = :user_id AND s.deleted_at IS NULL"
            f" ORDER BY s.last_activity_at DESC, s.{dialect.insertion_order} DESC"
            " LIMIT :limit OFFSET :offset",
            {**_SUMMARY_PARAMETERS, "user_id": user_id, "limit": limit, "offset": offset},
        )
        return [_summary_from_row(row) for row in rows], total or 0

    async def get_session_summary(self, session_id: str, user_id: str) -> SessionSummary | None:
        row = await self._db.fetch_one(
            _summary_select(self._db.dialect)
            + " WHERE s.id = :session_id AND s.user_id = :user_id AND s.deleted_at IS NULL",
            {**_SUMMARY_PARAMETERS, "session_id": session_id, "user_id": user_id},
        )
        return _summary_from_row(row) if row else None

    async def rename_session(self, session_id: str, user_id: str, title: str) -> bool:
        changed = await self._db.execute(
            "UPDATE sessions SET title = ?, updated_at = ?"
            " WHERE id = ? AND user_id = ? AND deleted_at IS NULL",
            (title, self._db.dialect.encode_time(utc_now()), session_id, user_id),
        )
        return changed > 0

    async def delete_session(self, session_id: str, user_id: str) -> bool:
        """``COALESCE`` and ``CASE`` keep a deleted session's deletion time and last update as they were."""
        now = self._db.dialect.encode_time(utc_now())
        changed = await self._db.execute(
            "UPDATE sessions SET deleted_at = COALESCE(deleted_at, :now),"
            " updated_at = CASE WHEN deleted_at IS NULL THEN :now ELSE updated_at END"
            " WHERE id = :session_id AND user_id = :user_id",
            {"now": now, "session_id": session_id, "user_id": user_id},
        )
        return changed > 0

    async def list_session_tasks(
        self, session_id: str, user_id: str, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Count the tasks, then read the page; ties of creation time in insertion order."""
        where = f"session_id = :session_id AND user_id = :user_id AND {VISIBLE_TURN}"
        parameters = {"session_id": session_id, "user_id": user_id, **VISIBLE_TURN_PARAMETERS}
        total = await self._db.fetch_value(f"SELECT COUNT(*) AS total FROM tasks WHERE {where}", parameters)
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {where}"
            f" ORDER BY created_at, {self._db.dialect.insertion_order} LIMIT :limit OFFSET :offset",
            {**parameters, "limit": limit, "offset": offset},
        )
        return [task_from_row(row) for row in rows], total or 0

    async def session_history(
        self, session_id: str, user_id: str, before: datetime.datetime, limit: int
    ) -> list[TaskRecord]:
        """Read the latest ``limit`` tasks newest first, then turn them round."""
        dialect = self._db.dialect
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE session_id = :session_id AND user_id = :user_id"
            f" AND status = :completed AND created_at < :before AND {VISIBLE_TURN}"
            f" ORDER BY created_at DESC, {dialect.insertion_order} DESC LIMIT :limit",
            {
                "session_id": session_id,
                "user_id": user_id,
                "completed": TaskStatus.COMPLETED.value,
                "before": dialect.encode_time(before),
                "limit": limit,
                **VISIBLE_TURN_PARAMETERS,
            },
        )
        return [task_from_row(row) for row in reversed(rows)]

    async def usage_stats(
        self, user_id: str, since: datetime.datetime, active_since: datetime.datetime
    ) -> UsageStats:
        """One query groups the tasks by status and UTC day with their sums, another counts the sessions."""
        dialect = self._db.dialect
        day = dialect.utc_date("created_at")
        task_rows = await self._db.fetch_all(
            f"SELECT status, {day} AS day, COUNT(*) AS tasks,"
            " COALESCE(SUM(prompt_tokens), 0) AS prompt_tokens,"
            " COALESCE(SUM(completion_tokens), 0) AS completion_tokens,"
            " COALESCE(SUM(cost_usd), 0) AS cost_usd"
            f" FROM tasks WHERE user_id = ? AND created_at >= ? GROUP BY status, {day}",
            (user_id, dialect.encode_time(since)),
        )
        session_row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total,"
            " COALESCE(SUM(CASE WHEN last_activity_at >= :active_since THEN 1 ELSE 0 END), 0) AS active"
            " FROM sessions"
            " WHERE user_id = :user_id AND deleted_at IS NULL AND last_activity_at >= :since",
            {
                "active_since": dialect.encode_time(active_since),
                "user_id": user_id,
                "since": dialect.encode_time(since),
            },
        )
        by_status: dict[TaskStatus, int] = {}
        for row in task_rows:
            status = TaskStatus(row["status"])
            by_status[status] = by_status.get(status, 0) + row["tasks"]
        days: dict[str, list[Row]] = {}
        for row in task_rows:
            days.setdefault(row["day"], []).append(row)
        by_day = tuple(
            DayUsage(date, sum(row["tasks"] for row in rows), _summed_usage(rows))
            for date, rows in sorted(days.items())
        )
        usage = _summed_usage(task_rows)
        if session_row is None:
            return UsageStats(by_status, 0, 0, usage, by_day)
        return UsageStats(by_status, session_row["total"], int(session_row["active"]), usage, by_day)

    async def session_export_size(
        self, session_id: str, user_id: str, exclude_types: Collection[str]
    ) -> tuple[int, int]:
        """Return the events an export of the session holds, and the UTF-8 bytes of their stored text.

        The bytes count the tasks' query, result, error and context and the events' message and
        payload: a lower bound of the document's size, read before any of it is written.
        """
        dialect = self._db.dialect
        excluded, excluded_values = named_list("excluded", list(exclude_types))
        type_condition = f" AND e.type NOT IN ({excluded})" if exclude_types else ""
        of_session = f"t.user_id = :user_id AND t.session_id = :session_id AND t.{VISIBLE_TURN}"
        parameters = {
            "user_id": user_id,
            "session_id": session_id,
            **VISIBLE_TURN_PARAMETERS,
            **excluded_values,
        }
        task_bytes = " + ".join(
            dialect.byte_length(f"t.{column}") for column in ("query", "result", "error", "context_json")
        )
        event_bytes = f"{dialect.byte_length('e.message')} + {dialect.byte_length('e.payload_json')}"
        events_of_session = (
            f"FROM events e JOIN tasks t ON t.task_id = e.workflow_id WHERE {of_session}{type_condition}"
        )
        row = await self._db.fetch_one(
            f"SELECT (SELECT COALESCE(SUM({task_bytes}), 0) FROM tasks t WHERE {of_session}) AS task_bytes,"
            f" (SELECT COUNT(*) {events_of_session}) AS events,"
            f" (SELECT COALESCE(SUM({event_bytes}), 0) {events_of_session}) AS event_bytes",
            parameters,
        )
        return int(row["events"]), int(row["task_bytes"]) + int(row["event_bytes"])

    async def session_export_tasks(
        self, session_id: str, user_id: str, after: ExportPosition | None, limit: int
    ) -> tuple[list[TaskRecord], ExportPosition | None]:
        """Return the session's next ``limit`` tasks after a position, oldest first, and the last's position.

        Keyset paging: a turn submitted or rolled back while an export runs moves no page boundary.
        """
        order = self._db.dialect.insertion_order
        parameters: dict[str, object] = {
            "user_id": user_id,
            "session_id": session_id,
            "limit": limit,
            **VISIBLE_TURN_PARAMETERS,
        }
        after_condition = ""
        if after is not None:
            after_condition = (
                " AND (created_at > :after_created"
                f" OR (created_at = :after_created AND {order} > :after_order))"
            )
            parameters.update(after_created=after.created_at, after_order=after.order)
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS}, {order} AS export_order FROM tasks"
            f" WHERE user_id = :user_id AND session_id = :session_id AND {VISIBLE_TURN}{after_condition}"
            f" ORDER BY created_at, {order} LIMIT :limit",
            parameters,
        )
        if not rows:
            return [], None
        last = ExportPosition(rows[-1]["created_at"], rows[-1]["export_order"])
        return [task_from_row(row) for row in rows], last

    async def task_events_page(
        self, task_id: str, after_seq: int, exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """Return a task's next ``limit`` events after ``after_seq``, types excluded, in order."""
        excluded, excluded_values = named_list("excluded", list(exclude_types))
        type_condition = f" AND type NOT IN ({excluded})" if exclude_types else ""
        rows = await self._db.fetch_all(
            f"SELECT * FROM events WHERE workflow_id = :task_id AND seq > :after_seq{type_condition}"
            " ORDER BY seq LIMIT :limit",
            {"task_id": task_id, "after_seq": after_seq, "limit": limit, **excluded_values},
        )
        return [event_from_row(row) for row in rows]


def _summed_usage(rows: Collection[Row]) -> TokenUsage:
    """Return the usage of grouped task rows together."""
    # PostgreSQL sums bigints as numeric: the totals become int and float here, as on SQLite.
    return TokenUsage(
        prompt_tokens=int(sum(row["prompt_tokens"] for row in rows)),
        completion_tokens=int(sum(row["completion_tokens"] for row in rows)),
        cost_usd=float(sum(row["cost_usd"] for row in rows)),
    )
