"""The task queue on PostgreSQL: submitting, reading, claiming, leases and finishing.

Claims and lease take-overs lock the rows they pick with ``FOR UPDATE SKIP LOCKED``, so replicas
claiming at once each get different tasks and never wait on each other. Lease times come from
the database clock (``now()``), which every replica shares, never from a replica's own clock.
"""

import dataclasses
from collections.abc import Collection

from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import SessionBudgetExhaustedError
from orchestrator.errors import SessionNotFoundError
from orchestrator.events import compact_json
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import TASK_COLUMNS
from orchestrator.store.postgres_rows import session_from_row
from orchestrator.store.postgres_rows import task_from_row
from orchestrator.store.postgres_sessions import insert_session
from orchestrator.store.postgres_sessions import new_session
from taskgate.rfc3339 import utc_now
from taskgate.session_titles import title_from_query

HELD_STATUSES = (TaskStatus.RUNNING.value, TaskStatus.PAUSED.value)


class PostgresTasks:
    """The task methods of ``PostgresStore``."""

    _db: PostgresDatabase

    async def create_task(self, task: NewTask) -> TaskRecord:
        """Store a QUEUED task, creating its session if absent; a foreign session is SessionNotFoundError."""
        now = utc_now()
        session = new_session(
            task.session_id, task.user_id, task.tenant_id, title_from_query(task.query), now
        )
        session = dataclasses.replace(session, token_budget=task.session_token_budget, context=task.context)
        async with self._db.transaction() as connection:
            # Insert the session unless it exists, then lock it: two tasks starting one session at
            # once never both insert it, and a task never joins a session being deleted.
            await insert_session(connection, session, if_absent=True)
            cursor = await connection.execute(
                "SELECT * FROM sessions WHERE id = %s FOR UPDATE", (task.session_id,)
            )
            session_row = await cursor.fetchone()
            if session_row["user_id"] != task.user_id or session_row["deleted_at"] is not None:
                raise SessionNotFoundError()
            if session_from_row(session_row).budget_exhausted:
                raise SessionBudgetExhaustedError()
            await connection.execute(
                "INSERT INTO tasks (task_id, user_id, tenant_id, session_id, query, status, mode,"
                " context_json, options_json, created_at, updated_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    task.task_id,
                    task.user_id,
                    task.tenant_id,
                    task.session_id,
                    task.query,
                    TaskStatus.QUEUED.value,
                    task.mode,
                    compact_json(task.context),
                    compact_json(task.options),
                    now,
                    now,
                ),
            )
            await connection.execute(
                "UPDATE sessions SET task_count = task_count + 1, updated_at = %s WHERE id = %s",
                (now, task.session_id),
            )
        return TaskRecord(
            task_id=task.task_id,
            user_id=task.user_id,
            tenant_id=task.tenant_id,
            session_id=task.session_id,
            query=task.query,
            status=TaskStatus.QUEUED,
            progress=0.0,
            result="",
            error="",
            mode=task.mode,
            context=task.context,
            options=task.options,
            model_used="",
            provider="",
            usage=TokenUsage(),
            created_at=now,
            updated_at=now,
        )

    async def get_task(self, task_id: str, user_id: str) -> TaskRecord | None:
        """Return one of the user's tasks."""
        row = await self._db.fetch_one(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = %s AND user_id = %s",  # noqa: S608
            (task_id, user_id),
        )
        return task_from_row(row) if row else None

    async def list_tasks(
        self,
        user_id: str,
        limit: int,
        offset: int,
        session_id: str | None = None,
        status: TaskStatus | None = None,
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the user's tasks, newest first, and how many match in total."""
        conditions = ["user_id = %(user_id)s"]
        if session_id is not None:
            conditions.append("session_id = %(session_id)s")
        if status is not None:
            conditions.append("status = %(status)s")
        where = " AND ".join(conditions)
        parameters = {
            "user_id": user_id,
            "session_id": session_id,
            "status": str(status) if status is not None else None,
            "limit": limit,
            "offset": offset,
        }
        # Only fixed column conditions are joined into the text; every value is a parameter.
        count_row = await self._db.fetch_one(
            f"SELECT COUNT(*) AS total FROM tasks WHERE {where}",  # noqa: S608
            parameters,
        )
        rows = await self._db.fetch_all(
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE {where}"  # noqa: S608
            " ORDER BY created_at DESC, position DESC LIMIT %(limit)s OFFSET %(offset)s",
            parameters,
        )
        return [task_from_row(row) for row in rows], count_row["total"] if count_row else 0

    async def claim_next(self, worker_id: str, lease_seconds: float) -> TaskRecord | None:
        """Atomically move the oldest QUEUED task to RUNNING for this worker and return it.

        The sub-select locks the task it picks and skips any another claim has locked, so
        concurrent claims (from any replica) get different tasks without waiting.
        """
        now = utc_now()
        row = await self._db.fetch_one(
            "UPDATE tasks SET status = %(running)s, started_at = COALESCE(started_at, %(now)s),"  # noqa: S608
            " updated_at = %(now)s, claimed_by = %(worker)s,"
            " lease_expires_at = now() + make_interval(secs => %(lease)s)"
            " WHERE task_id = (SELECT task_id FROM tasks WHERE status = %(queued)s"
            " ORDER BY created_at, position LIMIT 1 FOR UPDATE SKIP LOCKED) AND status = %(queued)s"
            f" RETURNING {TASK_COLUMNS}",
            {
                "running": TaskStatus.RUNNING.value,
                "queued": TaskStatus.QUEUED.value,
                "now": now,
                "worker": worker_id,
                "lease": lease_seconds,
            },
        )
        return task_from_row(row) if row else None

    async def renew_leases(
        self, worker_id: str, task_ids: Collection[str], lease_seconds: float
    ) -> list[str]:
        """Extend this worker's leases on its running or paused tasks; return the ids others took over."""
        if not task_ids:
            return []
        ids = list(task_ids)
        async with self._db.connection() as connection:
            await connection.execute(
                "UPDATE tasks SET lease_expires_at = now() + make_interval(secs => %s)"
                " WHERE task_id = ANY(%s) AND claimed_by = %s AND status = ANY(%s)",
                (lease_seconds, ids, worker_id, list(HELD_STATUSES)),
            )
            cursor = await connection.execute(
                "SELECT task_id FROM tasks WHERE task_id = ANY(%s) AND claimed_by <> %s", (ids, worker_id)
            )
            return [row["task_id"] for row in await cursor.fetchall()]

    async def take_over_expired_leases(
        self, worker_id: str, lease_seconds: float, limit: int
    ) -> list[TaskRecord]:
        """Take over running or paused tasks whose lease has expired, and return them.

        Two replicas recovering at once lock different rows (SKIP LOCKED), and the outer
        conditions are checked again on the locked row, so each task goes to one of them.
        """
        rows = await self._db.fetch_all(
            "UPDATE tasks SET claimed_by = %(worker)s, updated_at = %(now)s,"  # noqa: S608
            " lease_expires_at = now() + make_interval(secs => %(lease)s)"
            " WHERE task_id IN (SELECT task_id FROM tasks WHERE status = ANY(%(held)s)"
            " AND lease_expires_at < now()"
            " ORDER BY lease_expires_at LIMIT %(limit)s FOR UPDATE SKIP LOCKED)"
            " AND status = ANY(%(held)s) AND lease_expires_at < now()"
            f" RETURNING {TASK_COLUMNS}",
            {
                "worker": worker_id,
                "now": utc_now(),
                "lease": lease_seconds,
                "held": list(HELD_STATUSES),
                "limit": limit,
            },
        )
        return [task_from_row(row) for row in rows]

    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Record how far a running task is (0..1)."""
        await self._db.execute(
            "UPDATE tasks SET progress = %s, updated_at = %s WHERE task_id = %s",
            (min(max(progress, 0.0), 1.0), utc_now(), task_id),
        )

    async def finish_task(self, task_id: str, outcome: TaskOutcome) -> None:
        """Record a task's terminal state, and add its usage to its session."""
        now = utc_now()
        usage = outcome.usage
        async with self._db.transaction() as connection:
            await connection.execute(
                "UPDATE tasks SET status = %s, progress = CASE WHEN %s THEN 1.0 ELSE progress END,"
                " result = %s, error = %s, model_used = %s, provider = %s, prompt_tokens = %s,"
                " completion_tokens = %s, total_tokens = %s, cost_usd = %s, updated_at = %s,"
                " completed_at = %s, lease_expires_at = NULL"
                " WHERE task_id = %s",
                (
                    outcome.status.value,
                    outcome.status == TaskStatus.COMPLETED,
                    outcome.result,
                    outcome.error,
                    outcome.model_used,
                    outcome.provider,
                    usage.prompt_tokens,
                    usage.completion_tokens,
                    usage.total_tokens,
                    usage.cost_usd,
                    now,
                    now,
                    task_id,
                ),
            )
            await connection.execute(
                "UPDATE sessions SET tokens_used = tokens_used + %s, cost_usd = cost_usd + %s,"
                " updated_at = %s WHERE id = (SELECT session_id FROM tasks WHERE task_id = %s)",
                (usage.total_tokens, usage.cost_usd, now, task_id),
            )
