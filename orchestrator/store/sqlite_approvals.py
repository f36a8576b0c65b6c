"""Approvals on SQLite: parking a task for a decision, resolving it, and the caller's lists.

A task waiting for a decision stays RUNNING with no worker holding it (``claimed_by`` NULL), so
no runner, lease or recovery touches it. Resolving an approval is one transaction: a conditional
UPDATE of the approval (only a pending one changes: whoever changes it decides), the task's new
status, and the events with the workflow's next seqs.
"""

import datetime
import json
import sqlite3
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
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import decode_time
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_events import insert_next_events
from taskgate.rfc3339 import utc_now

_SELECT = "SELECT approvals.*, tasks.query AS query FROM approvals JOIN tasks USING (task_id)"
_FILTERS = {
    ApprovalFilter.PENDING: " AND approvals.status = 'pending'",
    ApprovalFilter.DECIDED: " AND approvals.status <> 'pending'",
    ApprovalFilter.ALL: "",
}


class SQLiteApprovals:
    """The approval methods of ``SQLiteStore`` (which sets ``_db``)."""

    _db: SQLiteDatabase

    async def park_for_approval(
        self, approval: NewApproval, worker_id: str, run_seconds: float, event: NewEvent
    ) -> list[Event] | None:
        """Store an approval, release its RUNNING task from its worker, with the event; None: not held."""
        now = utc_now()
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE tasks SET claimed_by = NULL, lease_expires_at = NULL, run_seconds = ?, updated_at = ?"
                " WHERE task_id = ? AND status = ? AND claimed_by = ? AND cancel_requested = 0",
                (run_seconds, encode_time(now), approval.task_id, TaskStatus.RUNNING, worker_id),
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                return None
            await connection.execute(
                "INSERT INTO approvals (approval_id, task_id, user_id, tenant_id, step, proposed_action_json,"
                " reason, status, requested_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                (
                    approval.approval_id,
                    approval.task_id,
                    approval.user_id,
                    approval.tenant_id,
                    approval.step,
                    compact_json(dict(approval.proposed_action)),
                    approval.reason,
                    encode_time(approval.requested_at),
                    encode_time(approval.expires_at),
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
                "UPDATE approvals SET status = ?, decided_by = ?, decided_at = ?, feedback = ?,"
                " modified_action_json = ? WHERE approval_id = ? AND status = 'pending' RETURNING task_id",
                (
                    resolution.status,
                    resolution.decided_by,
                    encode_time(resolution.decided_at),
                    resolution.feedback,
                    _action_json(resolution.modified_action),
                    approval_id,
                ),
            )
            row = await cursor.fetchone()
            await cursor.close()
            if row is None:
                return None
            task_id = row[0]
            terminal = resolution.task_status.is_terminal
            cursor = await connection.execute(
                "UPDATE tasks SET status = ?, error = ?, updated_at = ?,"
                " completed_at = CASE WHEN ? THEN ? ELSE completed_at END"
                " WHERE task_id = ? AND status = ? AND claimed_by IS NULL",
                (
                    resolution.task_status,
                    resolution.task_error,
                    encode_time(now),
                    terminal,
                    encode_time(now),
                    task_id,
                    TaskStatus.RUNNING,
                ),
            )
            changed = cursor.rowcount
            await cursor.close()
            if changed != 1:
                return []
            return await insert_next_events(connection, task_id, resolution.events, now)

    async def get_approval(self, approval_id: str, user_id: str) -> ApprovalRecord | None:
        """Return one of the user's approvals."""
        row = await self._db.fetch_one(
            f"{_SELECT} WHERE approvals.approval_id = ? AND approvals.user_id = ?",  # noqa: S608
            (approval_id, user_id),
        )
        return _approval_from_row(row) if row else None

    async def list_task_approvals(self, task_id: str) -> list[ApprovalRecord]:
        """Return every approval of a task, oldest first."""
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE approvals.task_id = ? ORDER BY approvals.requested_at",  # noqa: S608
            (task_id,),
        )
        return [_approval_from_row(row) for row in rows]

    async def list_approvals(
        self, user_id: str, which: ApprovalFilter, limit: int, offset: int
    ) -> tuple[list[ApprovalRecord], int]:
        """Return one page of the user's approvals, newest first, and how many match."""
        where = "WHERE approvals.user_id = ?" + _FILTERS[which]
        rows = await self._db.fetch_all(
            f"{_SELECT} {where} ORDER BY approvals.requested_at DESC, approvals.approval_id"  # noqa: S608
            " LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        total = await self._db.fetch_one(
            f"SELECT COUNT(*) FROM approvals {where}",  # noqa: S608
            (user_id,),
        )
        return [_approval_from_row(row) for row in rows], total[0] if total else 0

    async def list_expired_approvals(self, now: datetime.datetime, limit: int) -> list[ApprovalRecord]:
        """Return pending approvals whose time ran out, oldest expiry first."""
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE approvals.status = 'pending' AND approvals.expires_at <= ?"  # noqa: S608
            " ORDER BY approvals.expires_at LIMIT ?",
            (encode_time(now), limit),
        )
        return [_approval_from_row(row) for row in rows]


def _approval_from_row(row: sqlite3.Row) -> ApprovalRecord:
    modified: Any = row["modified_action_json"]
    return ApprovalRecord(
        approval_id=row["approval_id"],
        task_id=row["task_id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        step=row["step"],
        proposed_action=json.loads(row["proposed_action_json"]),
        reason=row["reason"],
        status=ApprovalStatus(row["status"]),
        requested_at=decode_time(row["requested_at"]),
        expires_at=decode_time(row["expires_at"]),
        query=row["query"],
        decided_by=row["decided_by"],
        decided_at=decode_time(row["decided_at"]),
        feedback=row["feedback"],
        modified_action=json.loads(modified) if modified else None,
    )


def _action_json(action: Mapping[str, Any] | None) -> str:
    return "" if action is None else compact_json(dict(action))
