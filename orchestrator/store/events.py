"""Workflow events: appended under their seq, read back in seq order.

A runner's events are written in batches (``insert_events_statement``, one multi-row INSERT for the events of
many workflows; ``group_commit.py`` gathers them).

``insert_next_events`` is how every state change records its events: inside the change's own
transaction, under the workflow's next seqs. On SQLite nothing writes between reading the last seq
and the inserts (one writer); on PostgreSQL a writer that took one of those seqs meanwhile makes
an insert fail with a unique violation, which rolls the whole change back.
"""

import datetime
from collections.abc import Collection
from collections.abc import Sequence

from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import number_events
from orchestrator.events import Event
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.database import marks
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import event_from_row


def event_parameters(event: Event, dialect: Dialect) -> tuple[object, ...]:
    """Return the parameters of an event's row, in the order of ``insert_events_statement``'s columns."""
    return (
        event.workflow_id,
        event.seq,
        event.type,
        event.agent_id,
        event.message,
        event.payload_json,
        dialect.encode_time(event.timestamp),
    )


def insert_events_statement(
    dialect: Dialect, rows: Sequence[tuple[Event, str | None]]
) -> tuple[str, list[object]]:
    """Return one multi-row INSERT of events, each with its step's checkpoint JSON or None."""
    parameters: list[object] = []
    for event, checkpoint_json in rows:
        parameters.extend(event_parameters(event, dialect))
        parameters.append(checkpoint_json)
    values = ", ".join("(?, ?, ?, ?, ?, ?, ?, ?)" for _ in rows)
    return (
        "INSERT INTO events (workflow_id, seq, type, agent_id, message, payload_json, timestamp,"
        f" checkpoint_json) VALUES {values}",
        parameters,
    )


async def insert_next_events(
    transaction: Transaction,
    dialect: Dialect,
    workflow_id: str,
    new_events: Sequence[NewEvent],
    now: datetime.datetime,
) -> list[Event]:
    """Store events after the workflow's last seq, in the caller's transaction; return them."""
    if not new_events:
        return []
    last = await transaction.fetch_one(
        "SELECT COALESCE(MAX(seq), 0) AS last FROM events WHERE workflow_id = ?", (workflow_id,)
    )
    stored = number_events(workflow_id, last["last"] if last else 0, new_events, now)
    await transaction.execute(*insert_events_statement(dialect, [(event, None) for event in stored]))
    return stored


class EventLog:
    """The events of every workflow."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def list_events(
        self, workflow_id: str, after_seq: int = 0, limit: int = 500, offset: int = 0
    ) -> list[Event]:
        rows = await self._db.fetch_all(
            "SELECT * FROM events WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ? OFFSET ?",
            (workflow_id, after_seq, limit, offset),
        )
        return [event_from_row(row) for row in rows]

    async def count_events(self, workflow_id: str) -> int:
        row = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM events WHERE workflow_id = ?", (workflow_id,)
        )
        return row["total"] if row else 0

    async def last_event_seq(self, workflow_id: str, event_type: str | None = None) -> int:
        sql = "SELECT MAX(seq) AS last FROM events WHERE workflow_id = ?"
        if event_type is None:
            row = await self._db.fetch_one(sql, (workflow_id,))
        else:
            row = await self._db.fetch_one(sql + " AND type = ?", (workflow_id, event_type))
        return row["last"] if row and row["last"] is not None else 0

    async def workflow_owner(self, workflow_id: str) -> str | None:
        """The owner of a workflow is its task's user (the task id is the workflow id)."""
        row = await self._db.fetch_one("SELECT user_id FROM tasks WHERE task_id = ?", (workflow_id,))
        return row["user_id"] if row else None

    async def list_workflow_events(
        self, workflow_ids: Sequence[str], exclude_types: Collection[str], limit: int
    ) -> list[Event]:
        """One query for every workflow, ordered by the binary collation of its id on both databases."""
        if not workflow_ids:
            return []
        excluded = list(exclude_types)
        type_condition = f" AND type NOT IN ({marks(excluded)})" if excluded else ""
        rows = await self._db.fetch_all(
            f"SELECT * FROM events WHERE workflow_id IN ({marks(workflow_ids)}){type_condition}"
            f" ORDER BY workflow_id{self._db.dialect.binary_collation}, seq LIMIT ?",
            (*workflow_ids, *excluded, limit),
        )
        return [event_from_row(row) for row in rows]
