"""The store on SQLite: the embedded default, one file, one orchestrator replica."""

import dataclasses
import datetime
import sqlite3
import uuid
from collections.abc import Collection

from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import AlreadyExistsError
from orchestrator.errors import SessionBudgetExhaustedError
from orchestrator.errors import SessionNotFoundError
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.base import Store
from orchestrator.store.sqlite_approvals import SQLiteApprovals
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_events import INSERT_EVENT
from orchestrator.store.sqlite_events import event_parameters
from orchestrator.store.sqlite_identity import SQLiteIdentity
from orchestrator.store.sqlite_rows import event_from_row
from orchestrator.store.sqlite_rows import session_from_row
from orchestrator.store.sqlite_rows import task_from_row
from orchestrator.store.sqlite_schedules import SQLiteSchedules
from orchestrator.store.sqlite_sessions import SQLiteSessionQueries
from orchestrator.store.sqlite_task_control import SQLiteTaskControl
from taskgate.rfc3339 import utc_now
from taskgate.session_titles import title_from_query


class SQLiteStore(
    SQLiteIdentity, SQLiteTaskControl, SQLiteSessionQueries, SQLiteSchedules, SQLiteApprovals, Store
):
    """Users, API keys, sessions, tasks and events in one SQLite file.

    Users, API keys and refresh tokens, task control, and the session lists, search and stats have
    their queries in the mixins.
    """

    single_replica = True

    def __init__(self, database: SQLiteDatabase) -> None:
        self._db = database

    @classmethod
    async def open(cls, url: str) -> "SQLiteStore":
        """Open the store of a ``sqlite:///`` URL; call ``migrate()`` before first use."""
        return cls(await SQLiteDatabase.open(url))

    async def migrate(self) -> list[int]:
        """Apply the schema migrations not applied yet; return the versions applied now."""
        return await self._db.migrate("sqlite")

    async def close(self) -> None:
        """Release the database connections."""
        await self._db.close()

    # Sessions.

    async def create_session(
        self, user_id: str, tenant_id: str, session_id: str | None = None, title: str = ""
    ) -> SessionRecord:
        """Create a session (with a new id unless one is given)."""
        session = _new_session(session_id or str(uuid.uuid4()), user_id, tenant_id, title, utc_now())
        try:
            async with self._db.transaction() as connection:
                await _insert_session(connection, session)
        except sqlite3.IntegrityError as ex:
            raise AlreadyExistsError("A session with this id exists") from ex
        return session

    async def get_session(
        self, session_id: str, user_id: str, include_deleted: bool = False
    ) -> SessionRecord | None:
        """Return one of the user's sessions that is not deleted (or deleted too, if asked)."""
        row = await self._db.fetch_one(
            "SELECT * FROM sessions WHERE id = ? AND user_id = ? AND (deleted_at IS NULL OR ?)",
            (session_id, user_id, include_deleted),
        )
        return session_from_row(row) if row else None

    # Tasks.

    async def create_task(self, task: NewTask) -> TaskRecord:
        """Store a QUEUED task, creating its session if absent; a foreign session is SessionNotFoundError.

        A session whose token budget is spent takes no more tasks: SessionBudgetExhaustedError.
        """
        now = utc_now()
        async with self._db.transaction() as connection:
            cursor = await connection.execute("SELECT * FROM sessions WHERE id = ?", (task.session_id,))
            session_row = await cursor.fetchone()
            await cursor.close()
            if session_row is None:
                title = title_from_query(task.query)
                session = _new_session(task.session_id, task.user_id, task.tenant_id, title, now)
                budget, context = task.session_token_budget, task.context
                await _insert_session(
                    connection, dataclasses.replace(session, token_budget=budget, context=context)
                )
            elif session_row["user_id"] != task.user_id or session_row["deleted_at"] is not None:
                raise SessionNotFoundError()
            elif session_from_row(session_row).budget_exhausted:
                raise SessionBudgetExhaustedError()
            await connection.execute(
                "INSERT INTO tasks (task_id, user_id, tenant_id, session_id, query, status, mode,"
                " context_json, options_json, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    task.task_id,
                    task.user_id,
                    task.tenant_id,
                    task.session_id,
                    task.query,
                    TaskStatus.QUEUED,
                    task.mode,
                    compact_json(task.context),
                    compact_json(task.options),
                    encode_time(now),
                    encode_time(now),
                ),
            )
            await connection.execute(
                "UPDATE sessions SET task_count = task_count + 1, updated_at = ? WHERE id = ?",
                (encode_time(now), task.session_id),
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
            "SELECT * FROM tasks WHERE task_id = ? AND user_id = ?", (task_id, user_id)
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
        conditions = ["user_id = ?"]
        parameters: list[object] = [user_id]
        if session_id is not None:
            conditions.append("session_id = ?")
            parameters.append(session_id)
        if status is not None:
            conditions.append("status = ?")
            parameters.append(str(status))
        where = " AND ".join(conditions)
        # Only fixed column conditions are joined into the text; every value is a parameter.
        count_row = await self._db.fetch_one(f"SELECT COUNT(*) FROM tasks WHERE {where}", parameters)  # noqa: S608
        rows = await self._db.fetch_all(
            f"SELECT * FROM tasks WHERE {where} ORDER BY created_at DESC, rowid DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*parameters, limit, offset],
        )
        return [task_from_row(row) for row in rows], count_row[0] if count_row else 0

    async def claim_next(self, worker_id: str, lease_seconds: float) -> TaskRecord | None:
        """Atomically move the oldest QUEUED task to RUNNING for this worker and return it.

        One statement under the single writer: the sub-select and the update cannot be split by
        another claim. (PostgreSQL does the same with ``FOR UPDATE SKIP LOCKED`` in the sub-select.)
        """
        now = utc_now()
        lease_expires_at = now + datetime.timedelta(seconds=lease_seconds)
        row = await self._db.write_returning(
            "UPDATE tasks SET status = ?, started_at = COALESCE(started_at, ?), updated_at = ?,"
            " claimed_by = ?, lease_expires_at = ?"
            " WHERE task_id = (SELECT task_id FROM tasks WHERE status = ? ORDER BY created_at, rowid LIMIT 1)"
            " RETURNING *",
            (
                TaskStatus.RUNNING,
                encode_time(now),
                encode_time(now),
                worker_id,
                encode_time(lease_expires_at),
                TaskStatus.QUEUED,
            ),
        )
        return task_from_row(row) if row else None

    async def renew_leases(
        self, worker_id: str, task_ids: Collection[str], lease_seconds: float
    ) -> list[str]:
        """Extend this worker's leases on its running or paused tasks; return the ids others took over."""
        if not task_ids:
            return []
        ids = list(task_ids)
        marks = ", ".join("?" for _ in ids)
        expires_at = encode_time(utc_now() + datetime.timedelta(seconds=lease_seconds))
        # Only placeholders are joined into the text; every value is a parameter.
        await self._db.write(
            f"UPDATE tasks SET lease_expires_at = ? WHERE task_id IN ({marks}) AND claimed_by = ?"  # noqa: S608
            " AND status IN (?, ?)",
            (expires_at, *ids, worker_id, TaskStatus.RUNNING, TaskStatus.PAUSED),
        )
        rows = await self._db.fetch_all(
            f"SELECT task_id FROM tasks WHERE task_id IN ({marks}) AND claimed_by <> ?",  # noqa: S608
            (*ids, worker_id),
        )
        return [row[0] for row in rows]

    async def take_over_expired_leases(
        self, worker_id: str, lease_seconds: float, limit: int
    ) -> list[TaskRecord]:
        """Take over running or paused tasks whose lease has expired, and return them."""
        now = utc_now()
        rows = await self._db.write_returning_all(
            "UPDATE tasks SET claimed_by = ?, lease_expires_at = ?, updated_at = ?"
            " WHERE task_id IN (SELECT task_id FROM tasks WHERE status IN (?, ?) AND lease_expires_at < ?"
            " ORDER BY lease_expires_at LIMIT ?)"
            " RETURNING *",
            (
                worker_id,
                encode_time(now + datetime.timedelta(seconds=lease_seconds)),
                encode_time(now),
                TaskStatus.RUNNING,
                TaskStatus.PAUSED,
                encode_time(now),
                limit,
            ),
        )
        return [task_from_row(row) for row in rows]

    async def update_task_progress(self, task_id: str, progress: float) -> None:
        """Record how far a running task is (0..1)."""
        await self._db.write(
            "UPDATE tasks SET progress = ?, updated_at = ? WHERE task_id = ?",
            (min(max(progress, 0.0), 1.0), encode_time(utc_now()), task_id),
        )

    async def finish_task(self, task_id: str, outcome: TaskOutcome) -> None:
        """Record a task's terminal state, and add its usage to its session."""
        now = encode_time(utc_now())
        usage = outcome.usage
        async with self._db.transaction() as connection:
            await connection.execute(
                "UPDATE tasks SET status = ?, progress = CASE WHEN ? THEN 1.0 ELSE progress END, result = ?,"
                " error = ?, model_used = ?, provider = ?, prompt_tokens = ?, completion_tokens = ?,"
                " total_tokens = ?, cost_usd = ?, updated_at = ?, completed_at = ?, lease_expires_at = NULL"
                " WHERE task_id = ?",
                (
                    outcome.status,
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
                "UPDATE sessions SET tokens_used = tokens_used + ?, cost_usd = cost_usd + ?, updated_at = ?"
                " WHERE id = (SELECT session_id FROM tasks WHERE task_id = ?)",
                (usage.total_tokens, usage.cost_usd, now, task_id),
            )

    # Events.

    async def append_event(self, event: Event) -> None:
        """Store an event under the seq it carries; a seq already taken is an error."""
        await self._db.write(INSERT_EVENT, event_parameters(event))

    async def list_events(
        self, workflow_id: str, after_seq: int = 0, limit: int = 500, offset: int = 0
    ) -> list[Event]:
        """Return the workflow's events with seq > after_seq, in seq order, one page at a time."""
        rows = await self._db.fetch_all(
            "SELECT * FROM events WHERE workflow_id = ? AND seq > ? ORDER BY seq LIMIT ? OFFSET ?",
            (workflow_id, after_seq, limit, offset),
        )
        return [event_from_row(row) for row in rows]

    async def count_events(self, workflow_id: str) -> int:
        """Return how many events a workflow has."""
        row = await self._db.fetch_one("SELECT COUNT(*) FROM events WHERE workflow_id = ?", (workflow_id,))
        return row[0] if row else 0

    async def last_event_seq(self, workflow_id: str, event_type: str | None = None) -> int:
        """Return the highest seq of the workflow's events (of one type if given), 0 when none."""
        if event_type is None:
            row = await self._db.fetch_one(
                "SELECT MAX(seq) FROM events WHERE workflow_id = ?", (workflow_id,)
            )
        else:
            row = await self._db.fetch_one(
                "SELECT MAX(seq) FROM events WHERE workflow_id = ? AND type = ?", (workflow_id, event_type)
            )
        return row[0] if row and row[0] is not None else 0

    async def workflow_owner(self, workflow_id: str) -> str | None:
        """Return the user id owning a workflow, None when there is no such workflow."""
        row = await self._db.fetch_one("SELECT user_id FROM tasks WHERE task_id = ?", (workflow_id,))
        return row[0] if row else None


def _new_session(
    session_id: str, user_id: str, tenant_id: str, title: str, now: datetime.datetime
) -> SessionRecord:
    return SessionRecord(session_id, user_id, tenant_id, title, 0, 0.0, 0, now, now)


async def _insert_session(connection, session: SessionRecord) -> None:
    await connection.execute(
        "INSERT INTO sessions (id, user_id, tenant_id, title, created_at, updated_at, token_budget,"
        " context_json, last_activity_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            session.id,
            session.user_id,
            session.tenant_id,
            session.title,
            encode_time(session.created_at),
            encode_time(session.updated_at),
            session.token_budget,
            compact_json(session.context),
            encode_time(session.created_at),
        ),
    )
