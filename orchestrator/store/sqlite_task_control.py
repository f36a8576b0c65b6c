"""The task-control part of the SQLite store: guarded transitions, control states, claimed tasks."""

from collections.abc import Collection
from typing import Any

from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.events import Event
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_events import insert_next_events
from orchestrator.store.sqlite_rows import control_state_from_row
from orchestrator.store.sqlite_rows import task_from_row
from taskgate.rfc3339 import utc_now

# Well under SQLite's limit on the number of parameters of one statement.
_IDS_PER_QUERY = 500
_CONTROL_COLUMNS = (
    "task_id, pause_requested, paused_at, pause_reason, paused_by,"
    " cancel_requested, cancel_reason, cancelled_by"
)


class SQLiteTaskControl:
    """The ``Store`` methods of task control, mixed into ``SQLiteStore`` (which sets ``_db``)."""

    _db: SQLiteDatabase

    async def transition_task(self, task_id: str, transition: TaskTransition) -> list[Event] | None:
        """Apply a transition if the task still matches its guard, with its events, in one transaction.

        Under the single writer the guarded update and the event inserts cannot interleave with
        another write, so the events take the workflow's next seqs without a gap.
        """
        now = utc_now()
        assignments, parameters = _assignments(transition, encode_time(now))
        guard = transition.guard
        parameters += [
            task_id,
            guard.status,
            guard.claimed_by,
            int(guard.pause_requested),
            int(guard.cancel_requested),
        ]
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                # Only fixed column assignments are joined into the text; every value is a parameter.
                f"UPDATE tasks SET {', '.join(assignments)} WHERE task_id = ? AND status = ?"  # noqa: S608
                " AND claimed_by IS ? AND pause_requested = ? AND cancel_requested = ?",
                parameters,
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                return None
            if transition.status is not None and transition.status.is_terminal:
                # A task that ends while it waits for a decision (cancelled) takes its approval with it.
                await connection.execute(
                    "UPDATE approvals SET status = 'cancelled', decided_at = ?"
                    " WHERE task_id = ? AND status = 'pending'",
                    (encode_time(now), task_id),
                )
            return await insert_next_events(connection, task_id, transition.events, now)

    async def get_control_states(self, task_ids: Collection[str]) -> dict[str, ControlState]:
        """Return the control state of each of these tasks that exists, by task id."""
        ids = list(dict.fromkeys(task_ids))
        states: dict[str, ControlState] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            placeholders = ", ".join("?" for _ in chunk)
            rows = await self._db.fetch_all(
                f"SELECT {_CONTROL_COLUMNS} FROM tasks WHERE task_id IN ({placeholders})",  # noqa: S608
                chunk,
            )
            states.update((row["task_id"], control_state_from_row(row)) for row in rows)
        return states

    async def list_claimed_tasks(self) -> list[TaskRecord]:
        """Return every RUNNING task and every PAUSED task a worker still holds, whoever claimed it."""
        rows = await self._db.fetch_all(
            # A RUNNING task without a worker waits for an approval: no runner of it is gone.
            "SELECT * FROM tasks WHERE status IN (?, ?)"
            " AND claimed_by IS NOT NULL ORDER BY created_at, rowid",
            (TaskStatus.RUNNING, TaskStatus.PAUSED),
        )
        return [task_from_row(row) for row in rows]


def _assignments(transition: TaskTransition, now: str | None) -> tuple[list[str], list[Any]]:
    """Return the SET clauses of a transition and their parameters."""
    control = transition.control
    assignments = [
        "pause_requested = ?",
        "paused_at = ?",
        "pause_reason = ?",
        "paused_by = ?",
        "cancel_requested = ?",
        "cancel_reason = ?",
        "cancelled_by = ?",
        "updated_at = ?",
    ]
    parameters: list[Any] = [
        int(control.pause_requested),
        encode_time(control.paused_at),
        control.pause_reason,
        control.paused_by,
        int(control.cancel_requested),
        control.cancel_reason,
        control.cancelled_by,
        now,
    ]
    status = transition.status
    if status is not None:
        assignments.append("status = ?")
        parameters.append(status)
        if status.is_terminal:
            assignments.append("completed_at = ?")
            parameters.append(now)
    if transition.release:
        assignments.append("claimed_by = NULL")
    if transition.release or (status is not None and status.is_terminal):
        assignments.append("lease_expires_at = NULL")
    if transition.run_seconds is not None:
        assignments.append("run_seconds = ?")
        parameters.append(transition.run_seconds)
    if transition.error is not None:
        assignments.append("error = ?")
        parameters.append(transition.error)
    return assignments, parameters
