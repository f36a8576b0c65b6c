"""Approvals: parking a task for a decision, resolving it, and the caller's lists.

A task waiting for a decision stays RUNNING with no worker holding it (``claimed_by`` NULL), so no
runner, lease or recovery touches it. Resolving is one transaction whose deciding statement is a
conditional UPDATE of the approval (only a pending one changes), so of two replicas (or a decision
and the expiry sweep) resolving one approval at once exactly one wins; the task's new status and
the events, under the workflow's next seqs, go in the same transaction. It locks the task first,
as a cancel does (task, then its pending approval), so a decision racing a cancel waits instead
of deadlocking, and an event writer of the task (whose foreign-key check shares the task's row
lock) finishes before the decision reads the next seq.
"""

import contextlib
import datetime
import json
from collections.abc import Iterator

from orchestrator.domain.approvals import Action
from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import ApprovalResolution
from orchestrator.domain.approvals import ApprovalStatus
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.approvals import plain_action
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskStatus
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Row
from orchestrator.store.dialect import Dialect
from orchestrator.store.events import insert_next_events
from orchestrator.store.rows import json_value
from orchestrator.store.rows import record_from_row
from taskgate.rfc3339 import utc_now

_SELECT = "SELECT approvals.*, tasks.query AS query FROM approvals JOIN tasks USING (task_id)"
_FILTERS = {
    ApprovalFilter.PENDING: " AND approvals.status = 'pending'",
    ApprovalFilter.DECIDED: " AND approvals.status <> 'pending'",
    ApprovalFilter.ALL: "",
}


class _SeqTakenError(Exception):
    """Another writer stored an event of the workflow under a seq this change was about to use."""


class ApprovalQueries:
    """Approvals: stored when a running task asks, resolved once, listed for their user."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def park_for_approval(
        self, approval: NewApproval, claim: Claim, run_seconds: float, event: NewEvent
    ) -> list[Event] | None:
        """A guarded UPDATE releases the task, then the approval and its event are inserted, at once."""
        dialect = self._db.dialect
        now = utc_now()
        try:
            async with self._db.transaction() as transaction:
                changed = await transaction.execute(
                    "UPDATE tasks SET claimed_by = NULL, lease_expires_at = NULL, run_seconds = ?,"
                    " updated_at = ? WHERE task_id = ? AND status = ? AND claimed_by = ? AND claim_epoch = ?"
                    " AND cancel_requested = ?",
                    (
                        run_seconds,
                        dialect.encode_time(now),
                        approval.task_id,
                        TaskStatus.RUNNING.value,
                        claim.worker_id,
                        claim.epoch,
                        False,
                    ),
                )
                if changed != 1:
                    return None
                await transaction.execute(
                    "INSERT INTO approvals (approval_id, task_id, user_id, tenant_id, step,"
                    " proposed_action_json, reason, status, requested_at, expires_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                    (
                        approval.approval_id,
                        approval.task_id,
                        approval.user_id,
                        approval.tenant_id,
                        approval.step,
                        compact_json(dict(approval.proposed_action)),
                        approval.reason,
                        dialect.encode_time(approval.requested_at),
                        dialect.encode_time(approval.expires_at),
                    ),
                )
                with _raising_seq_taken(dialect):
                    return await insert_next_events(transaction, dialect, approval.task_id, (event,), now)
        except _SeqTakenError:
            # An event of the task was recorded meanwhile: the task changed, nothing was written.
            return None

    async def resolve_approval(self, approval_id: str, resolution: ApprovalResolution) -> list[Event] | None:
        """Lock the task, resolve the approval if pending, move the task on if it waits: one transaction."""
        dialect = self._db.dialect
        now = utc_now()
        try:
            async with self._db.transaction() as transaction:
                # Lock the task before the approval: a cancel locks the task and then its pending
                # approval, so taking them in the same order makes the two wait, never deadlock.
                # Nothing on SQLite, whose single writer already serialises them.
                await transaction.fetch_one(
                    "SELECT task_id FROM tasks WHERE task_id ="
                    f" (SELECT task_id FROM approvals WHERE approval_id = ?){dialect.for_update}",
                    (approval_id,),
                )
                row = await transaction.fetch_one(
                    "UPDATE approvals SET status = ?, decided_by = ?, decided_by_api_key_id = ?,"
                    " decided_at = ?, feedback = ?, modified_action_json = ?"
                    " WHERE approval_id = ? AND status = 'pending'"
                    " RETURNING task_id",
                    (
                        resolution.status.value,
                        resolution.decided_by,
                        resolution.decided_by_api_key_id,
                        dialect.encode_time(resolution.decided_at),
                        resolution.feedback,
                        _action_json(resolution.modified_action),
                        approval_id,
                    ),
                )
                if row is None:
                    return None
                task_id = row["task_id"]
                changed = await transaction.execute(
                    "UPDATE tasks SET status = :status, error = :error, updated_at = :now,"
                    " completed_at = CASE WHEN :terminal THEN :now ELSE completed_at END"
                    " WHERE task_id = :task_id AND status = :running AND claimed_by IS NULL",
                    {
                        "status": resolution.task_status.value,
                        "error": resolution.task_error,
                        "now": dialect.encode_time(now),
                        "terminal": resolution.task_status.is_terminal,
                        "task_id": task_id,
                        "running": TaskStatus.RUNNING.value,
                    },
                )
                if changed != 1:
                    return []
                with _raising_seq_taken(dialect):
                    return await insert_next_events(transaction, dialect, task_id, resolution.events, now)
        except _SeqTakenError:
            # An event of the task was recorded meanwhile: the approval stays pending, nothing was written.
            return None

    async def get_approval(self, approval_id: str, user_id: str) -> ApprovalRecord | None:
        row = await self._db.fetch_one(
            f"{_SELECT} WHERE approvals.approval_id = ? AND approvals.user_id = ?",  # noqa: S608
            (approval_id, user_id),
        )
        return _approval_from_row(row) if row else None

    async def list_task_approvals(self, task_id: str) -> list[ApprovalRecord]:
        # A task asks for few approvals (one a step): a short read by key.
        rows = await self._db.lookup(
            f"{_SELECT} WHERE approvals.task_id = ? ORDER BY approvals.requested_at",  # noqa: S608
            (task_id,),
        )
        return [_approval_from_row(row) for row in rows]

    async def list_approvals(
        self, user_id: str, which: ApprovalFilter, limit: int, offset: int
    ) -> tuple[list[ApprovalRecord], int]:
        """Read the page, then count the matching approvals."""
        where = "WHERE approvals.user_id = ?" + _FILTERS[which]
        rows = await self._db.fetch_all(
            f"{_SELECT} {where} ORDER BY approvals.requested_at DESC,"  # noqa: S608
            f" approvals.approval_id{self._db.dialect.binary_collation} LIMIT ? OFFSET ?",
            (user_id, limit, offset),
        )
        total = await self._db.fetch_one(
            f"SELECT COUNT(*) AS total FROM approvals {where}",  # noqa: S608
            (user_id,),
        )
        return [_approval_from_row(row) for row in rows], total["total"] if total else 0

    async def list_expired_approvals(self, now: datetime.datetime, limit: int) -> list[ApprovalRecord]:
        rows = await self._db.fetch_all(
            f"{_SELECT} WHERE approvals.status = 'pending' AND approvals.expires_at <= ?"  # noqa: S608
            " ORDER BY approvals.expires_at LIMIT ?",
            (self._db.dialect.encode_time(now), limit),
        )
        return [_approval_from_row(row) for row in rows]


@contextlib.contextmanager
def _raising_seq_taken(dialect: Dialect) -> Iterator[None]:
    """Raise ``_SeqTakenError`` for a unique violation of the statements of the block.

    Wrapped around only the change's events, so only a conflict on their seqs is turned into
    ``_SeqTakenError``: a duplicate approval (same id, or a step asked twice) still raises the
    database's own error, as it always did. Raised inside the transaction, the error rolls it back
    on its way out.
    """
    try:
        yield
    except dialect.unique_violation as ex:
        raise _SeqTakenError() from ex


def _approval_from_row(row: Row) -> ApprovalRecord:
    """Return the ApprovalRecord of a row of ``_SELECT`` (an approval with its task's query)."""
    modified = row["modified_action_json"]
    return record_from_row(
        ApprovalRecord,
        row,
        proposed_action=json_value(row["proposed_action_json"]),
        status=ApprovalStatus(row["status"]),
        # Stored as '' when the approver changed nothing.
        modified_action=json.loads(modified) if modified else None,
    )


def _action_json(action: Action | None) -> str:
    """Return the stored form of a modified action (an object or a string, as JSON): '' when there is none."""
    return "" if action is None else compact_json(plain_action(action))
