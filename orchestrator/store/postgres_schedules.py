"""Schedules and schedule runs on PostgreSQL (migration 0006), mixed into ``PostgresStore``."""

import datetime
import json
from typing import Any

from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.domain.schedules import UnconfirmedRun
from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.store.postgres_database import PostgresDatabase
from orchestrator.store.postgres_rows import TASK_COLUMNS
from orchestrator.store.postgres_rows import task_from_row
from orchestrator.store.postgres_rows import utc

# A schedule with its run counts, read from the tasks its runs started.
_SCHEDULE_SELECT = """
SELECT s.*,
    (SELECT COUNT(*) FROM schedule_runs r WHERE r.schedule_id = s.id) AS total_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status = ANY(%(successful)s)) AS successful_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status = ANY(%(failed)s)) AS failed_runs
FROM schedules s
"""
_COUNT_PARAMETERS = {
    "successful": [str(status) for status in SUCCESSFUL_STATUSES],
    "failed": [str(status) for status in FAILED_STATUSES],
}
# Serialises the creations of one user's schedules, so the cap holds under concurrency.
_CREATE_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('taskgate.schedules:' || %s))"


def _schedule_from_row(row: dict[str, Any]) -> ScheduleRecord:
    return ScheduleRecord(
        schedule_id=row["id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        description=row["description"],
        cron_expression=row["cron_expression"],
        timezone=row["timezone"],
        task_query=row["task_query"],
        task_context=json.loads(row["task_context_json"]),
        max_budget_per_run_usd=row["max_budget_per_run_usd"],
        timeout_seconds=row["timeout_seconds"],
        status=row["status"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        next_run_at=utc(row["next_run_at"]),
        last_run_at=utc(row["last_run_at"]),
        paused_at=utc(row["paused_at"]),
        pause_reason=row["pause_reason"],
        total_runs=row["total_runs"],
        successful_runs=row["successful_runs"],
        failed_runs=row["failed_runs"],
    )


class PostgresSchedules:
    """Creating, reading, changing and firing schedules; listing their runs with their tasks."""

    _db: PostgresDatabase

    async def create_schedule(self, schedule: ScheduleRecord, max_per_user: int) -> bool:
        """Store a new schedule unless its user has ``max_per_user`` already; return whether stored."""
        async with self._db.transaction() as connection:
            await connection.execute(_CREATE_LOCK_SQL, (schedule.user_id,))
            cursor = await connection.execute(
                "SELECT COUNT(*) AS count FROM schedules WHERE user_id = %s", (schedule.user_id,)
            )
            if (await cursor.fetchone())["count"] >= max_per_user:
                return False
            await connection.execute(
                "INSERT INTO schedules (id, user_id, tenant_id, name, description, cron_expression, timezone,"
                " task_query, task_context_json, max_budget_per_run_usd, timeout_seconds, status, created_at,"
                " updated_at, next_run_at, last_run_at, paused_at, pause_reason)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    schedule.schedule_id,
                    schedule.user_id,
                    schedule.tenant_id,
                    schedule.name,
                    schedule.description,
                    schedule.cron_expression,
                    schedule.timezone,
                    schedule.task_query,
                    json.dumps(schedule.task_context, separators=(",", ":")),
                    schedule.max_budget_per_run_usd,
                    schedule.timeout_seconds,
                    schedule.status,
                    schedule.created_at,
                    schedule.updated_at,
                    schedule.next_run_at,
                    schedule.last_run_at,
                    schedule.paused_at,
                    schedule.pause_reason,
                ),
            )
        return True

    async def get_schedule(self, schedule_id: str, user_id: str) -> ScheduleRecord | None:
        """Return one of the user's schedules, with its run counts."""
        row = await self._db.fetch_one(
            _SCHEDULE_SELECT + " WHERE s.id = %(id)s AND s.user_id = %(user_id)s",
            {**_COUNT_PARAMETERS, "id": schedule_id, "user_id": user_id},
        )
        return _schedule_from_row(row) if row else None

    async def list_schedules(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Return one page of the user's schedules (of one status if given), newest first, and the total."""
        where = " WHERE s.user_id = %(user_id)s AND (%(status)s::text IS NULL OR s.status = %(status)s)"
        parameters = {**_COUNT_PARAMETERS, "user_id": user_id, "status": status}
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT
            + where
            + " ORDER BY s.created_at DESC, s.id DESC LIMIT %(limit)s OFFSET %(offset)s",
            {**parameters, "limit": limit, "offset": offset},
        )
        count = await self._db.fetch_one(
            "SELECT COUNT(*) AS count FROM schedules s" + where,  # noqa: S608
            parameters,
        )
        return [_schedule_from_row(row) for row in rows], count["count"]

    async def save_schedule(
        self, schedule: ScheduleRecord, expected_next_run_at: datetime.datetime | None
    ) -> bool:
        """Write a schedule's fields if next_run_at is still ``expected_next_run_at``; return whether written.

        A run claimed meanwhile moved next_run_at: nothing is written, and the caller reads again.
        """
        changed = await self._db.execute(
            "UPDATE schedules SET name = %s, description = %s, cron_expression = %s, timezone = %s,"
            " task_query = %s, task_context_json = %s, max_budget_per_run_usd = %s, timeout_seconds = %s,"
            " status = %s, updated_at = %s, next_run_at = %s, paused_at = %s, pause_reason = %s"
            " WHERE id = %s AND user_id = %s AND next_run_at IS NOT DISTINCT FROM %s",
            (
                schedule.name,
                schedule.description,
                schedule.cron_expression,
                schedule.timezone,
                schedule.task_query,
                json.dumps(schedule.task_context, separators=(",", ":")),
                schedule.max_budget_per_run_usd,
                schedule.timeout_seconds,
                schedule.status,
                schedule.updated_at,
                schedule.next_run_at,
                schedule.paused_at,
                schedule.pause_reason,
                schedule.schedule_id,
                schedule.user_id,
                expected_next_run_at,
            ),
        )
        return changed > 0

    async def delete_schedule(self, schedule_id: str, user_id: str) -> bool:
        """Delete one of the user's schedules and its run links (not the tasks); return whether it existed."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "DELETE FROM schedules WHERE id = %s AND user_id = %s", (schedule_id, user_id)
            )
            deleted = cursor.rowcount
            if deleted:
                await connection.execute("DELETE FROM schedule_runs WHERE schedule_id = %s", (schedule_id,))
        return deleted > 0

    async def due_schedules(self, now: datetime.datetime, limit: int) -> list[ScheduleRecord]:
        """Return ACTIVE schedules whose next run is at or before ``now``, the most overdue first."""
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT + " WHERE s.status = %(active)s AND s.next_run_at <= %(now)s"
            " ORDER BY s.next_run_at LIMIT %(limit)s",
            {**_COUNT_PARAMETERS, "active": ACTIVE, "now": now, "limit": limit},
        )
        return [_schedule_from_row(row) for row in rows]

    async def claim_schedule_run(
        self,
        schedule_id: str,
        due: datetime.datetime,
        next_run_at: datetime.datetime,
        task_id: str,
        now: datetime.datetime,
    ) -> bool:
        """Claim the run due at ``due`` for a task id, moving next_run_at on; return whether claimed.

        The update only matches while next_run_at is still ``due`` and the schedule ACTIVE: of
        several replicas, the first to update wins and the others, blocked on the row until it
        commits, then match nothing. The run row is written in the same transaction.
        """
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE schedules SET next_run_at = %s, last_run_at = %s"
                " WHERE id = %s AND status = %s AND next_run_at = %s",
                (next_run_at, now, schedule_id, ACTIVE, due),
            )
            claimed = cursor.rowcount
            if claimed:
                await connection.execute(
                    "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
                    " VALUES (%s, %s, %s, %s, false)",
                    (schedule_id, task_id, due, now),
                )
        return claimed > 0

    async def add_manual_run(
        self, schedule_id: str, user_id: str, task_id: str, now: datetime.datetime
    ) -> bool:
        """Record a run started by hand (next_run_at is left alone); return whether the schedule exists."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE schedules SET last_run_at = %s WHERE id = %s AND user_id = %s",
                (now, schedule_id, user_id),
            )
            found = cursor.rowcount
            if found:
                await connection.execute(
                    "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
                    " VALUES (%s, %s, %s, %s, true)",
                    (schedule_id, task_id, now, now),
                )
        return found > 0

    async def list_schedule_runs(
        self, schedule_id: str, limit: int, offset: int
    ) -> tuple[list[ScheduleRun], int]:
        """Return one page of a schedule's runs, newest first, each with its task, and the total."""
        rows = await self._db.fetch_all(
            "SELECT * FROM schedule_runs WHERE schedule_id = %s ORDER BY position DESC LIMIT %s OFFSET %s",
            (schedule_id, limit, offset),
        )
        total = await self._db.fetch_one(
            "SELECT COUNT(*) AS count FROM schedule_runs WHERE schedule_id = %s", (schedule_id,)
        )
        task_ids = [row["task_id"] for row in rows]
        tasks = {}
        if task_ids:
            task_rows = await self._db.fetch_all(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id = ANY(%s)",  # noqa: S608
                (task_ids,),
            )
            tasks = {task_row["task_id"]: task_from_row(task_row) for task_row in task_rows}
        runs = [
            ScheduleRun(
                task_id=row["task_id"],
                scheduled_for=utc(row["scheduled_for"]),
                triggered_at=utc(row["triggered_at"]),
                manual=bool(row["manual"]),
                task=tasks.get(row["task_id"]),
            )
            for row in rows
        ]
        return runs, total["count"]

    async def unconfirmed_schedule_runs(
        self, triggered_before: datetime.datetime, limit: int
    ) -> list[UnconfirmedRun]:
        """Return runs claimed before a time and not yet marked as having their task, oldest first."""
        rows = await self._db.fetch_all(
            "SELECT r.task_id, r.schedule_id, s.user_id, t.task_id IS NOT NULL AS task_stored"
            " FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
            " LEFT JOIN tasks t ON t.task_id = r.task_id"
            " WHERE NOT r.task_stored AND r.triggered_at < %s ORDER BY r.position LIMIT %s",
            (triggered_before, limit),
        )
        return [
            UnconfirmedRun(row["task_id"], row["schedule_id"], row["user_id"], bool(row["task_stored"]))
            for row in rows
        ]

    async def confirm_schedule_run(self, task_id: str) -> None:
        """Mark a run as having its task stored, so the sweep for unstarted runs skips it."""
        await self._db.execute("UPDATE schedule_runs SET task_stored = true WHERE task_id = %s", (task_id,))
