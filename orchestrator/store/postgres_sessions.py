"""Sessions on PostgreSQL: creating, reading, listing with their task aggregates, renaming, deleting.

They read the schema of migration 0003: the sessions' budget, context and activity columns (the
activity kept by triggers on ``tasks``).
"""

import datetime
import uuid
from typing import Any

import psycopg

from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.errors import AlreadyExistsError
from orchestrator.events import compact_json
from orchestrator.store.postgres_database import Connection
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import TASK_COLUMNS
from orchestrator.store.postgres_rows import session_from_row
from orchestrator.store.postgres_rows import task_from_row
from taskgate.rfc3339 import utc_now

# A session with its task aggregates; each sub-select reads the tasks_session_* indexes.
_SUMMARY_SELECT = """
SELECT s.*,
    (SELECT COUNT(*) FROM tasks t WHERE t.session_id = s.id
        AND t.status = ANY(%(successful)s)) AS successful_tasks,
    (SELECT COUNT(*) FROM tasks t WHERE t.session_id = s.id
        AND t.status = ANY(%(failed)s)) AS failed_tasks,
    latest.query AS latest_task_query,
    latest.status AS latest_task_status
FROM sessions s
LEFT JOIN LATERAL (
    SELECT t.query, t.status FROM tasks t WHERE t.session_id = s.id
    ORDER BY t.created_at DESC, t.position DESC LIMIT 1
) latest ON true
"""
_SUMMARY_PARAMETERS = {
    "successful": [str(status) for status in SUCCESSFUL_STATUSES],
    "failed": [str(status) for status in FAILED_STATUSES],
}


def new_session(
    session_id: str, user_id: str, tenant_id: str, title: str, now: datetime.datetime
) -> SessionRecord:
    """Return a new, empty session."""
    return SessionRecord(session_id, user_id, tenant_id, title, 0, 0.0, 0, now, now)


async def insert_session(connection: Connection, session: SessionRecord, if_absent: bool = False) -> None:
    """Insert a session row; with ``if_absent`` an existing session of that id is left as it is."""
    statement = (
        "INSERT INTO sessions (id, user_id, tenant_id, title, created_at, updated_at, token_budget,"
        " context_json, last_activity_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    if if_absent:
        statement += " ON CONFLICT (id) DO NOTHING"
    await connection.execute(
        statement,
        (
            session.id,
            session.user_id,
            session.tenant_id,
            session.title,
            session.created_at,
            session.updated_at,
            session.token_budget,
            compact_json(session.context),
            session.created_at,
        ),
    )


def _summary_from_row(row: dict[str, Any]) -> SessionSummary:
    status = row["latest_task_status"]
    return SessionSummary(
        session=session_from_row(row),
        successful_tasks=row["successful_tasks"],
        failed_tasks=row["failed_tasks"],
        latest_task_query=row["latest_task_query"] or "",
        latest_task_status=TaskStatus(status) if status else None,
    )


class PostgresSessions:
    """The session methods of ``PostgresStore``."""

    _db: PostgresDatabase

    async def create_session(
        self, user_id: str, tenant_id: str, session_id: str | None = None, title: str = ""
    ) -> SessionRecord:
        """Create a session (with a new id unless one is given)."""
        session = new_session(session_id or str(uuid.uuid4()), user_id, tenant_id, title, utc_now())
        try:
            async with self._db.connection() as connection:
                await insert_session(connection, session)
        except psycopg.errors.UniqueViolation as ex:
            raise AlreadyExistsError("A session with this id exists") from ex
        return session

    async def get_session(
        self, session_id: str, user_id: str, include_deleted: bool = False
    ) -> SessionRecord | None:
        """Return one of the user's sessions that is not deleted (or deleted too, if asked)."""
        row = await self._db.fetch_one(
            "SELECT * FROM sessions WHERE id = %s AND user_id = %s AND (deleted_at IS NULL OR %s)",
            (session_id, user_id, include_deleted),
        )
        return session_from_row(row) if row else None

    async def list_sessions(self, user_id: str, limit: int, offset: int) -> tuple[list[SessionSummary], int]:
        """Return one page of the user's sessions not deleted, most recently active first, and the total."""
        count_row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM sessions WHERE user_id = %s AND deleted_at IS NULL", (user_id,)
        )
        rows = await self._db.fetch_all(
            _SUMMARY_SELECT + " WHERE s.user_id = %(user_id)s AND s.deleted_at IS NULL"
            " ORDER BY s.last_activity_at DESC, s.position DESC LIMIT %(limit)s OFFSET %(offset)s",
            {**_SUMMARY_PARAMETERS, "user_id": user_id, "limit": limit, "offset": offset},
        )
        return [_summary_from_row(row) for row in rows], count_row["total"] if count_row else 0

    async def get_session_summary(self, session_id: str, user_id: str) -> SessionSummary | None:
        """Return one of the user's sessions that is not deleted, with the aggregates of its tasks."""
        row = await self._db.fetch_one(
            _SUMMARY_SELECT
            + " WHERE s.id = %(session_id)s AND s.user_id = %(user_id)s AND s.deleted_at IS NULL",
            {**_SUMMARY_PARAMETERS, "session_id": session_id, "user_id": user_id},
        )
        return _summary_from_row(row) if row else None

    async def rename_session(self, session_id: str, user_id: str, title: str) -> bool:
        """Set the title of one of the user's sessions that is not deleted; return whether it exists."""
        changed = await self._db.execute(
            "UPDATE sessions SET title = %s, updated_at = %s"
            " WHERE id = %s AND user_id = %s AND deleted_at IS NULL",
            (title, utc_now(), session_id, user_id),
        )
        return changed > 0

    async def delete_session(self, session_id: str, user_id: str) -> bool:
        """Soft-delete one of the user's sessions; return whether the user has it, deleted or not."""
        now = utc_now()
        changed = await self._db.execute(
            "UPDATE sessions SET deleted_at = COALESCE(deleted_at, %s),"
            " updated_at = CASE WHEN deleted_at IS NULL THEN %s ELSE updated_at END"
            " WHERE id = %s AND user_id = %s",
            (now, now, session_id, user_id),
        )
        return changed > 0

    async def list_session_tasks(
        self, session_id: str, user_id: str, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks in a session, oldest first, and how many there are."""
        count_row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM tasks WHERE session_id = %s AND user_id = %s",
            (session_id, user_id),
        )
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE session_id = %s AND user_id = %s"  # noqa: S608
            " ORDER BY created_at, position LIMIT %s OFFSET %s",
            (session_id, user_id, limit, offset),
        )
        return [task_from_row(row) for row in rows], count_row["total"] if count_row else 0

    async def session_history(
        self, session_id: str, user_id: str, before: datetime.datetime, limit: int
    ) -> list[TaskRecord]:
        """Return the session's latest ``limit`` COMPLETED tasks created before ``before``, oldest first."""
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks"  # noqa: S608
            " WHERE session_id = %s AND user_id = %s AND status = %s AND created_at < %s"
            " ORDER BY created_at DESC, position DESC LIMIT %s",
            (session_id, user_id, TaskStatus.COMPLETED.value, before, limit),
        )
        return [task_from_row(row) for row in reversed(rows)]
