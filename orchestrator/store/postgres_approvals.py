"""Approvals on PostgreSQL: parking a task for a decision, resolving it, and the caller's lists.

Resolving is one transaction whose first statement is a conditional UPDATE of the approval (only a
pending one changes), so of two replicas (or a decision and the expiry sweep) resolving one
approval at once exactly one wins; the waiting task's UPDATE then locks its row, and the events
take the workflow's next seqs in the same transaction.
"""

import datetime
import json
from collections.abc import Mapping
from typing import Any

from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import ApprovalResolution
from orchestrator.domain.approvals import ApprovalStatus
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_events import insert_next_events
from orchestrator.store.postgres_rows import utc
from taskgate.rfc3339 import utc_now

_SELECT = "SELECT approvals.*, tasks.query AS query FROM approvals JOIN tasks USING (task_id)"
_FILTERS = {
    ApprovalFilter.PENDING: " AND approvals.status = 'pending'",
    ApprovalFilter.DECIDED: " AND approvals.status <> 'pending'",
    ApprovalFilter.ALL: "",
}


class PostgresApprovals:
    """The approval methods of ``PostgresStore``."""

    _db: PostgresDatabase

    async def park_for_approval(
        self, approval: NewApproval, worker_id: str, run_seconds: float, event: NewEvent
    ) -> list[Event] | None:
        """Store an approval, release its RUNNING task from its worker, with the event; None: not held."""
        now = utc_now()
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE tasks SET claimed_by = NULL, lease_expires_at = NULL, run_seconds = %s,"
                " updated_at = %s WHERE task_id = %s AND status = %s AND claimed_by = %s"
                " AND NOT cancel_requested",
                (run_seconds, now, approval.task_id, TaskStatus.RUNNING.value, worker_id),
            )
            if cursor.rowcount != 1:
                return None
            await connection.execute(
                "INSERT INTO approvals (approval_id, task_id, user_id, tenant_id, step, proposed_action_json,"
                " reason, status, requested_at, expires_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, 'pending', %s, %s)",
                (
                    approval.approval_id,
                    approval.task_id,
                    approval.user_id,
                    approval.tenant_id,
                    approval.step,
                    compact_json(dict(approval.proposed_action)),
                    approval.reason,
                    approval.requested_at,
                    approval.expires_at,
                ),
            )
            return await insert_next_events(connection, approval.task_id, (event,), now)

    async def resolve_approval(self, approval_id: str, resolution: ApprovalResolution) -> list[Event] | None:
        """Resolve a pending approval and move its waiting task on, with the events, in one transaction.

        None: the approval was not pending (someone resolved it first), nothing written. A task no
        longer waiting (cancelled meanwhile) keeps its state and gets no events.
        """
        now = utc_now()
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE approvals SET status = %s, decided_by = %s, decided_at = %s, feedback = %s,"
                " modified_action_json = %s WHERE approval_id = %s AND status = 'pending' RETURNING task_id",
                (
                    resolution.status.value,
                    resolution.decided_by,
                    resolution.decided_at,
                    resolution.feedback,
                    _action_json(resolution.modified_action),
                    approval_id,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                return None
            task_id = row["task_id"]
            terminal = resolution.task_status.is_terminal
            cursor = await connection.execute(
                "UPDATE tasks SET status = %s, error = %s, updated_at = %s,"
                " completed_at = CASE WHEN %s THEN %s ELSE completed_at END"
                " WHERE task_id = %s AND status = %s AND claimed_by IS NULL",
                (
                    resolution.task_status.value,
                    resolution.task_error,
                    now,
                    terminal,
                    now,
                    task_id,
                    TaskStatus.RUNNING.value,
                ),
            )
            if cursor.rowcount != 1:
                return []
            return await insert_next_events(connection, task_id, resolution.events, now)

    async def get_approval(self, approval_id: str, user_id: str) -> ApprovalRecord | None:
        """Return one of the user's approvals."""
        row = await self._db.fetch_one(
            f"{_SELECT} WHERE approvals.approval_id = %s AND approvals.user_id = %s",  # noqa: S608
            (approval_id, user_id),
        )
        return _approval_from_row(row) if row else None

    async def list_task_approvals(self, task_id: str) -> list[ApprovalRecord]:
        """Return every approval of a task, oldest first."""
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE approvals.task_id = %s ORDER BY approvals.requested_at",  # noqa: S608
            (task_id,),
        )
        return [_approval_from_row(row) for row in rows]

    async def list_approvals(
        self, user_id: str, which: ApprovalFilter, limit: int, offset: int
    ) -> tuple[list[ApprovalRecord], int]:
        """Return one page of the user's approvals, newest first, and how many match."""
        where = "WHERE approvals.user_id = %s" + _FILTERS[which]
        rows = await self._db.fetch_all(
            f"{_SELECT} {where} ORDER BY approvals.requested_at DESC, approvals.approval_id"  # noqa: S608
            " LIMIT %s OFFSET %s",
            (user_id, limit, offset),
        )
        total = await self._db.fetch_one(
            f"SELECT COUNT(*) AS total FROM approvals {where}",  # noqa: S608
            (user_id,),
        )
        return [_approval_from_row(row) for row in rows], total["total"] if total else 0

    async def list_expired_approvals(self, now: datetime.datetime, limit: int) -> list[ApprovalRecord]:
        """Return pending approvals whose time ran out, oldest expiry first."""
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE approvals.status = 'pending' AND approvals.expires_at <= %s"  # noqa: S608
            " ORDER BY approvals.expires_at LIMIT %s",
            (now, limit),
        )
        return [_approval_from_row(row) for row in rows]


def _approval_from_row(row: dict[str, Any]) -> ApprovalRecord:
    modified = row["modified_action_json"]
    return ApprovalRecord(
        approval_id=row["approval_id"],
        task_id=row["task_id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        step=row["step"],
        proposed_action=json.loads(row["proposed_action_json"]),
        reason=row["reason"],
        status=ApprovalStatus(row["status"]),
        requested_at=utc(row["requested_at"]),
        expires_at=utc(row["expires_at"]),
        query=row["query"],
        decided_by=row["decided_by"],
        decided_at=utc(row["decided_at"]),
        feedback=row["feedback"],
        modified_action=json.loads(modified) if modified else None,
    )


def _action_json(action: Mapping[str, Any] | None) -> str:
    return "" if action is None else compact_json(dict(action))
