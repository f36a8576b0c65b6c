"""Appending a workflow's events on SQLite inside a transaction, under the workflow's next seqs."""

import datetime
from collections.abc import Sequence

import aiosqlite

from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import number_events
from orchestrator.events import Event
from orchestrator.store.sqlite_database import encode_time

INSERT_EVENT = (
    "INSERT INTO events (workflow_id, seq, type, agent_id, message, payload_json, timestamp)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
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
        encode_time(event.timestamp),
    )


async def insert_next_events(
    connection: aiosqlite.Connection,
    workflow_id: str,
    new_events: Sequence[NewEvent],
    now: datetime.datetime,
) -> list[Event]:
    """Store events after the workflow's last seq, in the caller's transaction; return them.

    Under the single writer nothing else writes between reading the last seq and the inserts, so
    the seqs stay gap-free.
    """
    cursor = await connection.execute(
        "SELECT COALESCE(MAX(seq), 0) FROM events WHERE workflow_id = ?", (workflow_id,)
    )
    row = await cursor.fetchone()
    await cursor.close()
    stored = number_events(workflow_id, row[0] if row else 0, new_events, now)
    for event in stored:
        await connection.execute(INSERT_EVENT, event_parameters(event))
    return stored
