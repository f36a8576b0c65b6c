"""The SQLite store's schedules and schedule runs (migration 0006), mixed into ``SQLiteStore``."""

import datetime
import json
import sqlite3

from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.domain.schedules import UnconfirmedRun
from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.events import compact_json
from orchestrator.store.sqlite_database import SQLiteDatabase
from orchestrator.store.sqlite_database import decode_time
from orchestrator.store.sqlite_database import encode_time
from orchestrator.store.sqlite_rows import task_from_row


def _marks(count: int) -> str:
    return ", ".join("?" for _ in range(count))


# A schedule with its run counts, read from the tasks its runs started.
_SCHEDULE_SELECT = f"""
SELECT s.*,
    (SELECT COUNT(*) FROM schedule_runs r WHERE r.schedule_id = s.id) AS total_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status IN ({_marks(len(SUCCESSFUL_STATUSES))})) AS successful_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status IN ({_marks(len(FAILED_STATUSES))})) AS failed_runs
FROM schedules s
"""  # noqa: S608
_COUNT_PARAMETERS = (*(str(s) for s in SUCCESSFUL_STATUSES), *(str(s) for s in FAILED_STATUSES))


def _schedule_from_row(row: sqlite3.Row) -> ScheduleRecord:
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
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
        next_run_at=decode_time(row["next_run_at"]),
        last_run_at=decode_time(row["last_run_at"]),
        paused_at=decode_time(row["paused_at"]),
        pause_reason=row["pause_reason"],
        total_runs=row["total_runs"],
        successful_runs=row["successful_runs"],
        failed_runs=row["failed_runs"],
    )


class SQLiteSchedules:
    """Creating, reading, changing and firing schedules; listing their runs with their tasks."""

    _db: SQLiteDatabase

    async def create_schedule(self, schedule: ScheduleRecord, max_per_user: int) -> bool:
        """Store a new schedule unless its user has ``max_per_user`` already; return whether stored."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "SELECT COUNT(*) FROM schedules WHERE user_id = ?", (schedule.user_id,)
            )
            (count,) = await cursor.fetchone()
            await cursor.close()
            if count >= max_per_user:
                return False
            await connection.execute(
                "INSERT INTO schedules (id, user_id, tenant_id, name, description, cron_expression, timezone,"
                " task_query, task_context_json, max_budget_per_run_usd, timeout_seconds, status, created_at,"
                " updated_at, next_run_at, last_run_at, paused_at, pause_reason)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    schedule.schedule_id,
                    schedule.user_id,
                    schedule.tenant_id,
                    schedule.name,
                    schedule.description,
                    schedule.cron_expression,
                    schedule.timezone,
                    schedule.task_query,
                    compact_json(schedule.task_context),
                    schedule.max_budget_per_run_usd,
                    schedule.timeout_seconds,
                    schedule.status,
                    encode_time(schedule.created_at),
                    encode_time(schedule.updated_at),
                    encode_time(schedule.next_run_at),
                    encode_time(schedule.last_run_at),
                    encode_time(schedule.paused_at),
                    schedule.pause_reason,
                ),
            )
        return True

    async def get_schedule(self, schedule_id: str, user_id: str) -> ScheduleRecord | None:
        """Return one of the user's schedules, with its run counts."""
        row = await self._db.fetch_one(
            _SCHEDULE_SELECT + " WHERE s.id = ? AND s.user_id = ?",
            (*_COUNT_PARAMETERS, schedule_id, user_id),
        )
        return _schedule_from_row(row) if row else None

    async def list_schedules(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Return one page of the user's schedules (of one status if given), newest first, and the total."""
        where = " WHERE s.user_id = ? AND (? IS NULL OR s.status = ?)"
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT + where + " ORDER BY s.created_at DESC, s.id DESC LIMIT ? OFFSET ?",
            (*_COUNT_PARAMETERS, user_id, status, status, limit, offset),
        )
        count = await self._db.fetch_one(
            "SELECT COUNT(*) FROM schedules s" + where,  # noqa: S608
            (user_id, status, status),
        )
        return [_schedule_from_row(row) for row in rows], count[0]

    async def save_schedule(
        self, schedule: ScheduleRecord, expected_next_run_at: datetime.datetime | None
    ) -> bool:
        """Write a schedule's fields if next_run_at is still ``expected_next_run_at``; return whether written.

        A run claimed meanwhile moved next_run_at: nothing is written, and the caller reads again.
        """
        changed = await self._db.write(
            "UPDATE schedules SET name = ?, description = ?, cron_expression = ?, timezone = ?,"
            " task_query = ?, task_context_json = ?, max_budget_per_run_usd = ?, timeout_seconds = ?,"
            " status = ?, updated_at = ?, next_run_at = ?, paused_at = ?, pause_reason = ?"
            " WHERE id = ? AND user_id = ? AND next_run_at IS ?",
            (
                schedule.name,
                schedule.description,
                schedule.cron_expression,
                schedule.timezone,
                schedule.task_query,
                compact_json(schedule.task_context),
                schedule.max_budget_per_run_usd,
                schedule.timeout_seconds,
                schedule.status,
                encode_time(schedule.updated_at),
                encode_time(schedule.next_run_at),
                encode_time(schedule.paused_at),
                schedule.pause_reason,
                schedule.schedule_id,
                schedule.user_id,
                encode_time(expected_next_run_at),
            ),
        )
        return changed > 0

    async def delete_schedule(self, schedule_id: str, user_id: str) -> bool:
        """Delete one of the user's schedules and its run links (not the tasks); return whether it existed."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "DELETE FROM schedules WHERE id = ? AND user_id = ?", (schedule_id, user_id)
            )
            deleted = cursor.rowcount
            await cursor.close()
            if deleted:
                await connection.execute("DELETE FROM schedule_runs WHERE schedule_id = ?", (schedule_id,))
        return deleted > 0

    async def due_schedules(self, now: datetime.datetime, limit: int) -> list[ScheduleRecord]:
        """Return ACTIVE schedules whose next run is at or before ``now``, the most overdue first."""
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT + " WHERE s.status = ? AND s.next_run_at <= ? ORDER BY s.next_run_at LIMIT ?",
            (*_COUNT_PARAMETERS, ACTIVE, encode_time(now), limit),
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

        The update only matches while next_run_at is still ``due`` and the schedule ACTIVE, so of
        several callers exactly one claims each run; the run row is written in the same transaction.
        """
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE schedules SET next_run_at = ?, last_run_at = ?"
                " WHERE id = ? AND status = ? AND next_run_at = ?",
                (encode_time(next_run_at), encode_time(now), schedule_id, ACTIVE, encode_time(due)),
            )
            claimed = cursor.rowcount
            await cursor.close()
            if claimed:
                await connection.execute(
                    "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
                    " VALUES (?, ?, ?, ?, 0)",
                    (schedule_id, task_id, encode_time(due), encode_time(now)),
                )
        return claimed > 0

    async def add_manual_run(
        self, schedule_id: str, user_id: str, task_id: str, now: datetime.datetime
    ) -> bool:
        """Record a run started by hand (next_run_at is left alone); return whether the schedule exists."""
        async with self._db.transaction() as connection:
            cursor = await connection.execute(
                "UPDATE schedules SET last_run_at = ? WHERE id = ? AND user_id = ?",
                (encode_time(now), schedule_id, user_id),
            )
            found = cursor.rowcount
            await cursor.close()
            if found:
                await connection.execute(
                    "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual)"
                    " VALUES (?, ?, ?, ?, 1)",
                    (schedule_id, task_id, encode_time(now), encode_time(now)),
                )
        return found > 0

    async def list_schedule_runs(
        self, schedule_id: str, limit: int, offset: int
    ) -> tuple[list[ScheduleRun], int]:
        """Return one page of a schedule's runs, newest first, each with its task, and the total."""
        rows = await self._db.fetch_all(
            "SELECT * FROM schedule_runs WHERE schedule_id = ? ORDER BY position DESC LIMIT ? OFFSET ?",
            (schedule_id, limit, offset),
        )
        total = await self._db.fetch_one(
            "SELECT COUNT(*) FROM schedule_runs WHERE schedule_id = ?", (schedule_id,)
        )
        task_ids = [row["task_id"] for row in rows]
        tasks = {}
        if task_ids:
            task_rows = await self._db.fetch_all(
                f"SELECT * FROM tasks WHERE task_id IN ({_marks(len(task_ids))})",  # noqa: S608
                task_ids,
            )
            tasks = {task_row["task_id"]: task_from_row(task_row) for task_row in task_rows}
        runs = [
            ScheduleRun(
                task_id=row["task_id"],
                scheduled_for=decode_time(row["scheduled_for"]),
                triggered_at=decode_time(row["triggered_at"]),
                manual=bool(row["manual"]),
                task=tasks.get(row["task_id"]),
            )
            for row in rows
        ]
        return runs, total[0]

    async def unconfirmed_schedule_runs(
        self, triggered_before: datetime.datetime, limit: int
    ) -> list[UnconfirmedRun]:
        """Return runs claimed before a time and not yet marked as having their task, oldest first."""
        rows = await self._db.fetch_all(
            "SELECT r.task_id, r.schedule_id, s.user_id, t.task_id IS NOT NULL AS task_stored"
            " FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
            " LEFT JOIN tasks t ON t.task_id = r.task_id"
            " WHERE r.task_stored = 0 AND r.triggered_at < ? ORDER BY r.position LIMIT ?",
            (encode_time(triggered_before), limit),
        )
        return [
            UnconfirmedRun(row["task_id"], row["schedule_id"], row["user_id"], bool(row["task_stored"]))
            for row in rows
        ]

    async def confirm_schedule_run(self, task_id: str) -> None:
        """Mark a run as having its task stored, so the sweep for unstarted runs skips it."""
        await self._db.write("UPDATE schedule_runs SET task_stored = 1 WHERE task_id = ?", (task_id,))
