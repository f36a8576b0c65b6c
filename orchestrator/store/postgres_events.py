"""Workflow events on PostgreSQL: appended under their seq, read back in seq order."""

import datetime
from collections.abc import Collection
from collections.abc import Sequence

from psycopg import AsyncConnection

from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import number_events
from orchestrator.events import Event
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import event_from_row

INSERT_EVENT = (
    "INSERT INTO events (workflow_id, seq, type, agent_id, message, payload_json, timestamp)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s)"
)


def event_parameters(event: Event) -> tuple[object, ...]:
    """Return the parameters of ``INSERT_EVENT`` for an event."""
    return (
        event.workflow_id,
        event.seq,
        event.type,
        event.agent_id,
        event.message,
        event.payload_json,
        event.timestamp,
    )


async def insert_next_events(
    connection: AsyncConnection, workflow_id: str, new_events: Sequence[NewEvent], now: datetime.datetime
) -> list[Event]:
    """Store events after the workflow's last seq, in the caller's transaction; return them.

    A writer that takes one of those seqs meanwhile makes an insert fail (UniqueViolation), which
    rolls the caller's transaction back.
    """
    cursor = await connection.execute(
        "SELECT COALESCE(MAX(seq), 0) AS last FROM events WHERE workflow_id = %s", (workflow_id,)
    )
    stored = number_events(workflow_id, (await cursor.fetchone())["last"], new_events, now)
    for event in stored:
        await connection.execute(INSERT_EVENT, event_parameters(event))
    return stored


class PostgresEvents:
    """The event methods of ``PostgresStore``."""

    _db: PostgresDatabase

    async def append_event(self, event: Event) -> None:
        """Store an event under the seq it carries; a seq already taken is an error."""
        await self._db.execute(INSERT_EVENT, event_parameters(event))

    async def list_events(
        self, workflow_id: str, after_seq: int = 0, limit: int = 500, offset: int = 0
    ) -> list[Event]:
        """Return the workflow's events with seq > after_seq, in seq order, one page at a time."""
        rows = await self._db.fetch_all(
            "SELECT * FROM events WHERE workflow_id = %s AND seq > %s ORDER BY seq LIMIT %s OFFSET %s",
            (workflow_id, after_seq, limit, offset),
        )
        return [event_from_row(row) for row in rows]

    async def count_events(self, workflow_id: str) -> int:
        """Return how many events a workflow has."""
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM events WHERE workflow_id = %s", (workflow_id,)
        )
        return row["total"] if row else 0

    async def last_event_seq(self, workflow_id: str, event_type: str | None = None) -> int:
        """Return the highest seq of the workflow's events (of one type if given), 0 when none."""
        if event_type is None:
            row = await self._db.fetch_one(
                "SELECT MAX(seq) AS last FROM events WHERE workflow_id = %s", (workflow_id,)
            )
        else:
            row = await self._db.fetch_one(
                "SELECT MAX(seq) AS last FROM events WHERE workflow_id = %s AND type = %s",
                (workflow_id, event_type),
            )
        return row["last"] if row and row["last"] is not None else 0

    async def workflow_owner(self, workflow_id: str) -> str | None:
        """Return the user id owning a workflow, None when there is no such workflow."""
        row = await self._db.fetch_one("SELECT user_id FROM tasks WHERE task_id = %s", (workflow_id,))
        return row["user_id"] if row else None

    async def list_workflow_events(
        self, workflow_ids: Sequence[str], exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """Return at most ``limit`` events of several workflows, by workflow id then seq, types excluded."""
        if not workflow_ids:
            return []
        rows = await self._db.fetch_all(
            "SELECT * FROM events WHERE workflow_id = ANY(%s) AND NOT (type = ANY(%s))"
            ' ORDER BY workflow_id COLLATE "C", seq LIMIT %s',
            (list(workflow_ids), list(exclude_types), limit),
        )
        return [event_from_row(row) for row in rows]
