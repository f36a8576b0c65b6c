"""The task queue: reading tasks and leases (see also submissions.py, claims.py, task_control.py).

Lease take-overs pick their rows with the dialect's ``FOR UPDATE SKIP LOCKED`` (nothing on SQLite,
whose single writer already serialises them), so replicas recovering at once each get different
tasks and never wait on each other. Lease times come from the database's clock (``dialect.now()``),
which every replica shares, never from a replica's own.
"""

from collections.abc import Collection

from orchestrator.domain.tasks import TaskFilter
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.store.database import Database
from orchestrator.store.database import marks
from orchestrator.store.database import named_list
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import task_from_row
from taskgate.rfc3339 import utc_now


class TaskQueue:
    """Tasks: stored QUEUED, claimed by one worker under a lease, finished once."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def get_task(self, task_id: str, user_id: str) -> TaskRecord | None:
        rows = await self._db.lookup(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ? AND user_id = ?",
            (task_id, user_id),
        )
        return task_from_row(rows[0]) if rows else None

    async def list_tasks(
        self, user_id: str, which: TaskFilter, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Count the matching tasks, then read the page; ties of creation time by insertion order.

        A turn a later turn of its session rolled back is left out (it stays readable by its id).
        """
        conditions = ["user_id = ?", "rolled_back = ?"]
        parameters: list[object] = [user_id, False]
        if which.session_id is not None:
            conditions.append("session_id = ?")
            parameters.append(which.session_id)
        if which.status is not None:
            conditions.append("status = ?")
            parameters.append(str(which.status))
        where = " AND ".join(conditions)
        count_row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS total FROM tasks WHERE {where}",
            parameters,
        )
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {where}"
            f" ORDER BY created_at DESC, {self._db.dialect.insertion_order} DESC LIMIT ? OFFSET ?",
            [*parameters, limit, offset],
        )
        return [task_from_row(row) for row in rows], count_row["total"] if count_row else 0

    async def renew_leases(
        self, worker_id: str, task_ids: Collection[str], lease_seconds: float
    ) -> list[str]:
        """Extend the leases still this worker's, then read which of the tasks another worker holds."""
        if not task_ids:
            return []
        ids = list(task_ids)
        dialect = self._db.dialect
        async with self._db.transaction() as transaction:
            id_list, id_values = named_list("id", ids)
            await transaction.execute(
                f"UPDATE tasks SET lease_expires_at = {dialect.seconds_from_now('lease')}"
                f" WHERE task_id IN ({id_list}) AND claimed_by = :worker AND status IN (:running, :paused)",
                {
                    "lease": lease_seconds,
                    "worker": worker_id,
                    "running": TaskStatus.RUNNING.value,
                    "paused": TaskStatus.PAUSED.value,
                    **id_values,
                },
            )
            rows = await transaction.fetch_all(
                f"SELECT task_id FROM tasks WHERE task_id IN ({marks(ids)}) AND claimed_by <> ?",
                (*ids, worker_id),
            )
        return [row["task_id"] for row in rows]

    async def take_over_expired_leases(
        self, worker_id: str, lease_seconds: float, limit: int
    ) -> list[TaskRecord]:
        """One UPDATE of the expired tasks a materialised sub-select picks, skipping locked rows.

        Two replicas recovering at once lock different rows (SKIP LOCKED), and the outer
        conditions are checked again on the locked row, so each task goes to one of them. The
        picked rows are materialised once: as a plain sub-select PostgreSQL may run it again per
        candidate row, and the limit would then bound each run rather than the whole take-over.
        """
        dialect = self._db.dialect
        expired = f"status IN (:running, :paused) AND lease_expires_at < {dialect.now()}"
        rows = await self._db.returning(
            f"WITH picked AS MATERIALIZED (SELECT task_id FROM tasks WHERE {expired}"
            f" ORDER BY lease_expires_at LIMIT :limit{dialect.for_update_skip_locked})"
            " UPDATE tasks SET claimed_by = :worker, claim_epoch = claim_epoch + 1, updated_at = :now,"
            f" lease_expires_at = {dialect.seconds_from_now('lease')}"
            f" WHERE task_id IN (SELECT task_id FROM picked) AND {expired} RETURNING {TASK_COLUMNS}",
            {
                "worker": worker_id,
                "now": dialect.encode_time(utc_now()),
                "lease": lease_seconds,
                "running": TaskStatus.RUNNING.value,
                "paused": TaskStatus.PAUSED.value,
                "limit": limit,
            },
        )
        return [task_from_row(row) for row in rows]
