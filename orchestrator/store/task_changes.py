"""The task feed's rows: written by triggers (migration 0018), numbered, read by caller, pruned.

On SQLite a row is numbered as it is inserted (one writer: change_id order is commit order). On
PostgreSQL a row is inserted pending (change_id NULL) and ``number_pending`` numbers the committed
pending rows under an advisory lock held until its commit, so numberings follow one another and
each is above the last: a reader that has passed change_id N never later finds a new row below N.
Pending rows are invisible to readers; the feed numbers them before each read.
"""

import datetime

from orchestrator.domain.task_changes import TaskChange
from orchestrator.store.database import Database
from orchestrator.store.database import Row
from orchestrator.store.rows import record_from_row

#: Rows one numbering takes; more wait for the next.
NUMBERING_BATCH = 1000
_COLUMNS = (
    "change_id, user_id, task_id, session_id, kind, status, progress, approval_id, decision, created_at"
)
_LOCK_NAME = "taskgate_task_changes"


class TaskChangeLog:
    """The feed's rows in one database."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def number_pending_task_changes(self) -> int:
        """Number committed pending rows (PostgreSQL; nothing to do on SQLite); return how many."""
        lock = self._db.dialect.advisory_lock()
        if lock is None:
            return 0
        async with self._db.transaction() as transaction:
            await transaction.fetch_all(lock, (_LOCK_NAME,))
            # Row numbers in pending_id order on top of the highest number given so far (the
            # newest numbered row is never pruned, so the highest never goes back).
            return await transaction.execute(
                "UPDATE task_changes SET change_id = numbered.base + numbered.n"
                " FROM (SELECT pending_id, row_number() OVER (ORDER BY pending_id) AS n,"
                " (SELECT COALESCE(MAX(change_id), 0) FROM task_changes) AS base"
                " FROM task_changes WHERE change_id IS NULL ORDER BY pending_id LIMIT ?) AS numbered"
                " WHERE task_changes.pending_id = numbered.pending_id",
                (NUMBERING_BATCH,),
            )

    async def list_task_changes(self, after_id: int, limit: int) -> list[TaskChange]:
        """Return every caller's changes numbered above ``after_id``, in order."""
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM task_changes WHERE change_id > ? ORDER BY change_id LIMIT ?",
            (after_id, limit),
        )
        return [_change(row) for row in rows]

    async def list_user_task_changes(self, user_id: str, after_id: int, limit: int) -> list[TaskChange]:
        """Return one caller's changes numbered above ``after_id``, in order."""
        rows = await self._db.fetch_all(
            f"SELECT {_COLUMNS} FROM task_changes WHERE user_id = ? AND change_id > ?"
            " ORDER BY change_id LIMIT ?",
            (user_id, after_id, limit),
        )
        return [_change(row) for row in rows]

    async def last_task_change_id(self) -> int:
        """Return the highest change number given so far (0 when none)."""
        return await self._db.fetch_value("SELECT COALESCE(MAX(change_id), 0) AS last FROM task_changes") or 0

    async def prune_task_changes(self, before: datetime.datetime) -> int:
        """Delete rows created before ``before``, keeping the newest numbered one; return how many."""
        return await self._db.execute(
            "DELETE FROM task_changes WHERE created_at < ?"
            " AND (change_id IS NULL OR change_id < (SELECT MAX(change_id) FROM task_changes))",
            (self._db.dialect.encode_time(before),),
        )


def _change(row: Row) -> TaskChange:
    return record_from_row(TaskChange, row)
