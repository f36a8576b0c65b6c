"""Task control on PostgreSQL: guarded transitions with their events, control states, claimed tasks.

A transition locks its task row with the guarded UPDATE, so two replicas changing one task at once
are serialised and the second finds the guard broken; its events take the workflow's next seqs in
the same transaction.
"""

from collections.abc import Collection
from typing import Any

import psycopg

from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.events import Event
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_events import insert_next_events
from orchestrator.store.postgres_rows import TASK_COLUMNS
from orchestrator.store.postgres_rows import control_state_from_row
from orchestrator.store.postgres_rows import task_from_row
from taskgate.rfc3339 import utc_now

_CONTROL_COLUMNS = (
    "task_id, pause_requested, paused_at, pause_reason, paused_by,"
    " cancel_requested, cancel_reason, cancelled_by"
)


class PostgresTaskControl:
    """The task-control methods of ``PostgresStore``."""

    _db: PostgresDatabase

    async def transition_task(self, task_id: str, transition: TaskTransition) -> list[Event] | None:
        """Apply a transition if the task still matches its guard, with its events, in one transaction."""
        now = utc_now()
        assignments, parameters = _assignments(transition, now)
        guard = transition.guard
        parameters.update(
            task_id=task_id,
            guard_status=guard.status.value,
            guard_claimed_by=guard.claimed_by,
            guard_pause=guard.pause_requested,
            guard_cancel=guard.cancel_requested,
        )
        try:
            async with self._db.transaction() as connection:
                cursor = await connection.execute(
                    # Only fixed column assignments are joined into the text; every value is a parameter.
                    f"UPDATE tasks SET {', '.join(assignments)} WHERE task_id = %(task_id)s"  # noqa: S608
                    " AND status = %(guard_status)s AND claimed_by IS NOT DISTINCT FROM %(guard_claimed_by)s"
                    " AND pause_requested = %(guard_pause)s AND cancel_requested = %(guard_cancel)s",
                    parameters,
                )
                if cursor.rowcount != 1:
                    return None
                if transition.status is not None and transition.status.is_terminal:
                    # A task that ends while it waits for a decision (cancelled) takes its approval with it.
                    await connection.execute(
                        "UPDATE approvals SET status = 'cancelled', decided_at = %s"
                        " WHERE task_id = %s AND status = 'pending'",
                        (now, task_id),
                    )
                return await insert_next_events(connection, task_id, transition.events, now)
        except psycopg.errors.UniqueViolation:
            # A runner recorded an event of the task meanwhile: the task changed, nothing was written.
            return None

    async def get_control_states(self, task_ids: Collection[str]) -> dict[str, ControlState]:
        """Return the control state of each of these tasks that exists, by task id."""
        ids = list(dict.fromkeys(task_ids))
        if not ids:
            return {}
        rows = await self._db.fetch_all(
            f"SELECT {_CONTROL_COLUMNS} FROM tasks WHERE task_id = ANY(%s)",  # noqa: S608
            (ids,),
        )
        return {row["task_id"]: control_state_from_row(row) for row in rows}

    async def list_claimed_tasks(self) -> list[TaskRecord]:
        """Return every RUNNING task and every PAUSED task a worker still holds, whoever claimed it."""
        rows = await self._db.fetch_all(
            # A RUNNING task without a worker waits for an approval: no runner of it is gone.
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status IN (%s, %s)"  # noqa: S608
            " AND claimed_by IS NOT NULL ORDER BY created_at, position",
            (TaskStatus.RUNNING.value, TaskStatus.PAUSED.value),
        )
        return [task_from_row(row) for row in rows]


def _assignments(transition: TaskTransition, now: Any) -> tuple[list[str], dict[str, Any]]:
    """Return the SET clauses of a transition and their named parameters."""
    control = transition.control
    assignments = [
        "pause_requested = %(pause_requested)s",
        "paused_at = %(paused_at)s",
        "pause_reason = %(pause_reason)s",
        "paused_by = %(paused_by)s",
        "cancel_requested = %(cancel_requested)s",
        "cancel_reason = %(cancel_reason)s",
        "cancelled_by = %(cancelled_by)s",
        "updated_at = %(now)s",
    ]
    parameters: dict[str, Any] = {
        "pause_requested": control.pause_requested,
        "paused_at": control.paused_at,
        "pause_reason": control.pause_reason,
        "paused_by": control.paused_by,
        "cancel_requested": control.cancel_requested,
        "cancel_reason": control.cancel_reason,
        "cancelled_by": control.cancelled_by,
        "now": now,
    }
    status = transition.status
    if status is not None:
        assignments.append("status = %(status)s")
        parameters["status"] = status.value
        if status.is_terminal:
            assignments.append("completed_at = %(now)s")
    if transition.release:
        assignments.append("claimed_by = NULL")
    if transition.release or (status is not None and status.is_terminal):
        assignments.append("lease_expires_at = NULL")
    if transition.run_seconds is not None:
        assignments.append("run_seconds = %(run_seconds)s")
        parameters["run_seconds"] = transition.run_seconds
    if transition.error is not None:
        assignments.append("error = %(error)s")
        parameters["error"] = transition.error
    return assignments, parameters
