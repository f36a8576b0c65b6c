"""Claiming the next task: one turn of a session at a time, fair across users, under a per-user cap.

A QUEUED task is claimable when no earlier turn of its session (by ``created_at``, then insertion
order) is active, that is QUEUED, RUNNING or PAUSED: a session's turns run one after another, each
once the one before has ended, so it sees that one's answer. Among the claimable tasks the claim
takes one of the user who holds the fewest *running* tasks right now (RUNNING with a worker; a task
waiting for an approval or parked holds no slot), the oldest first. A user's backlog therefore
delays another user's first task by one claim at most, however long it is. With a cap
(``max_running_per_user`` > 0) a user who holds that many running tasks gets none until one ends.

Exact across replicas: on PostgreSQL each claim first takes one transaction-scoped advisory lock, so
claims run one at a time everywhere and each counts the running tasks every earlier claim
committed; the claim's own statement still picks its row ``FOR UPDATE SKIP LOCKED``, so a task held
by another change (a cancel, a newer turn interrupting it) is passed over, not waited for. On SQLite
the single writer serialises claims already. A claim is one short transaction: the lock, then one
UPDATE of the row its sub-select picks; a worker pool with several free slots claims for all of them
in one transaction (``claim_tasks``), the UPDATE once per task, so a busy writer is queued for once
(and on SQLite the transaction is one hop to the writer's thread, ``writer_transactions.py``).

Cost: the statement reads the running tasks once, the users with queued tasks one index probe
each, and per such user its oldest claimable task, through partial indexes of queued, active and
running tasks (migration 0012); a user's tasks held up behind an earlier turn of their session are
stepped over one by one. So a claim costs about 10 µs per user with queued tasks on PostgreSQL
(docs/internals.md has the measurements), whatever the number of tasks.
"""

from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.turns import ACTIVE_STATUSES
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import task_from_row
from orchestrator.store.writer_transactions import run_transaction
from taskgate.rfc3339 import utc_now

#: The name of the advisory lock that makes claims take turns across replicas (PostgreSQL).
CLAIM_LOCK = "taskgate.claims"

# Statuses are written as literals, like the conditions of the partial indexes the statement reads,
# so every plan (a generic one of a prepared statement too) can use them.
_QUEUED = f"'{TaskStatus.QUEUED.value}'"
_RUNNING = f"'{TaskStatus.RUNNING.value}'"
_ACTIVE = ", ".join(f"'{status.value}'" for status in ACTIVE_STATUSES)


def claim_statement(dialect: Dialect, max_running_per_user: int) -> str:
    """Return the claim's UPDATE: the picked task becomes RUNNING under the worker's new claim and lease.

    ``running``: the running tasks per user, read once (there are no more than the workers of every
    replica). ``heads``: per user with queued tasks (under the cap), its running count and its
    oldest claimable task, computed once (materialised) before the pick sorts and locks them.
    """
    order = dialect.insertion_order
    earlier_active_turn = (
        f"SELECT 1 FROM tasks e WHERE e.user_id = q.user_id AND e.session_id = q.session_id"
        f" AND e.status IN ({_ACTIVE})"
        f" AND (e.created_at < q.created_at OR (e.created_at = q.created_at AND e.{order} < q.{order}))"
    )
    oldest_claimable = (
        f"SELECT q.task_id FROM tasks q WHERE q.user_id = w.user_id AND q.status = {_QUEUED}"
        f" AND NOT EXISTS ({earlier_active_turn}) ORDER BY q.created_at, q.{order} LIMIT 1"
    )
    next_waiting_user = (
        f"SELECT q.user_id FROM tasks q WHERE q.status = {_QUEUED} AND q.user_id > w.user_id"
        " ORDER BY q.user_id LIMIT 1"
    )
    cap = int(max_running_per_user)
    under_cap = f" AND COALESCE(r.tasks, 0) < {cap}" if cap > 0 else ""
    started = dialect.later_of(":now", "tasks.created_at")
    return (
        # The users with queued tasks, one index probe each (a loose index scan), not every queued row.
        f"WITH RECURSIVE waiting (user_id) AS (SELECT MIN(user_id) FROM tasks WHERE status = {_QUEUED}"
        f" UNION ALL SELECT ({next_waiting_user}) FROM waiting w WHERE w.user_id IS NOT NULL),"
        " running AS MATERIALIZED (SELECT user_id, COUNT(*) AS tasks FROM tasks"
        f" WHERE status = {_RUNNING} AND claimed_by IS NOT NULL GROUP BY user_id),"
        f" heads AS MATERIALIZED (SELECT COALESCE(r.tasks, 0) AS running, ({oldest_claimable}) AS task_id"
        " FROM waiting w LEFT JOIN running r ON r.user_id = w.user_id"
        f" WHERE w.user_id IS NOT NULL{under_cap})"
        # The claim's time is read once for all its rounds; a task queued after that (claimed by a
        # later round of the same transaction) starts when it was created, never before.
        f" UPDATE tasks SET status = {_RUNNING}, started_at = COALESCE(started_at, {started}),"
        f" updated_at = {started},"
        " claimed_by = :worker, claim_epoch = claim_epoch + 1,"
        f" lease_expires_at = {dialect.seconds_from_now('lease')}"
        " WHERE task_id = (SELECT t.task_id FROM heads h JOIN tasks t ON t.task_id = h.task_id"
        f" ORDER BY h.running, t.created_at, t.{order} LIMIT 1{dialect.for_update_skip_locked_of('t')})"
        f" AND status = {_QUEUED} RETURNING {TASK_COLUMNS},"
        # The run starts its recorder from it (an index probe, while the claim's lock is held anyway).
        " (SELECT COALESCE(MAX(e.seq), 0) FROM events e WHERE e.workflow_id = tasks.task_id)"
        " AS last_event_seq"
    )


class TaskClaims:
    """Hands each claimable task to exactly one worker, in the fair order above."""

    def __init__(self, database: Database, max_running_per_user: int = 0) -> None:
        self._db = database
        self._statement = claim_statement(database.dialect, max_running_per_user)

    async def claim_next(self, worker_id: str, lease_seconds: float) -> TaskRecord | None:
        """Take the claims' lock (PostgreSQL), then run the claim's UPDATE; None when nothing is claimable."""
        claimed = await self.claim_tasks(worker_id, lease_seconds, 1)
        return claimed[0] if claimed else None

    async def claim_tasks(self, worker_id: str, lease_seconds: float, limit: int) -> list[TaskRecord]:
        """Take the claims' lock (PostgreSQL), then run the claim's UPDATE until ``limit`` or nothing is left.

        Each UPDATE sees the ones before it in the transaction, so the order and the cap are those of
        as many claims one after the other; what a pool claims at once costs one transaction, and on
        PostgreSQL a few round trips (the statements are pipelined in rounds).
        """
        dialect = self._db.dialect
        parameters = {"now": dialect.encode_time(utc_now()), "worker": worker_id, "lease": lease_seconds}

        async def claim(transaction: Transaction) -> list[TaskRecord]:
            lock = dialect.advisory_lock()
            if lock is not None:
                await transaction.execute(lock, (CLAIM_LOCK,))
            claimed: list[TaskRecord] = []
            # The claims go in rounds of 1, 2, 4, … statements, each round sent at once (PostgreSQL:
            # pipelined, one round trip), until one of them finds nothing or ``limit`` is reached. A
            # statement after one that found nothing may still find a task queued meanwhile: every
            # row claimed is kept.
            round_size = 1
            while len(claimed) < limit:
                runs = await transaction.fetch_all_repeated(
                    self._statement, parameters, min(round_size, limit - len(claimed))
                )
                claimed.extend(task_from_row(rows[0], rows[0]["last_event_seq"]) for rows in runs if rows)
                if not all(runs):
                    break
                round_size *= 2
            return claimed

        return await run_transaction(self._db, claim)
