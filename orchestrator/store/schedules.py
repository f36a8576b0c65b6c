"""Schedules and the runs they started: created under a per-user cap, fired once per tick.

A tick is claimed by a compare-and-set on ``next_run_at``: the UPDATE only matches while the
schedule is ACTIVE and its next run is still the one the caller read, so however many replicas
claim the same tick at once, exactly one changes the row (on PostgreSQL the others wait on its row
lock, then find the condition false). The run's task, in a session of its own, is stored in the
same transaction as the claim (and a manual run's with its run), so no run is ever without its task.
The per-user cap holds under parallel creates because each create takes an advisory lock named
after the user (SQLite's single writer already serialises).
"""

import datetime
from typing import Any

from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import RunClaim
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.domain.schedules import UnconfirmedRun
from orchestrator.domain.sessions import FAILED_STATUSES
from orchestrator.domain.sessions import SUCCESSFUL_STATUSES
from orchestrator.domain.tasks import NewTask
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Row
from orchestrator.store.database import Transaction
from orchestrator.store.database import marks
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import json_value
from orchestrator.store.rows import record_from_row
from orchestrator.store.rows import stored_time
from orchestrator.store.rows import task_from_row
from orchestrator.store.sessions import insert_session
from orchestrator.store.submissions import insert_task
from orchestrator.store.submissions import session_for_task
from taskgate.rfc3339 import utc_now

_SUCCESSFUL = tuple(str(status) for status in SUCCESSFUL_STATUSES)
_FAILED = tuple(str(status) for status in FAILED_STATUSES)

# A schedule with its run counts, read from the tasks its runs started; its parameters
# (``_COUNT_PARAMETERS``) come first, before those of the conditions appended to it.
_SCHEDULE_SELECT = f"""
SELECT s.*,
    (SELECT COUNT(*) FROM schedule_runs r WHERE r.schedule_id = s.id) AS total_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status IN ({marks(_SUCCESSFUL)})) AS successful_runs,
    (SELECT COUNT(*) FROM schedule_runs r JOIN tasks t ON t.task_id = r.task_id
        WHERE r.schedule_id = s.id AND t.status IN ({marks(_FAILED)})) AS failed_runs
FROM schedules s
"""  # noqa: S608 (only placeholders are interpolated)
_COUNT_PARAMETERS = (*_SUCCESSFUL, *_FAILED)

# ``task_stored``: the run's task is stored in the same transaction (only runs of an earlier version,
# which stored it afterwards, can lack it; ``unconfirmed_schedule_runs``).
_INSERT_RUN = (
    "INSERT INTO schedule_runs (schedule_id, task_id, scheduled_for, triggered_at, manual, task_stored)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)

# Names the advisory lock that serialises the creations of one user's schedules (the same name
# the former PostgreSQL store locked, so replicas of both versions exclude each other).
_CREATE_LOCK_PREFIX = "taskgate.schedules:"


def schedule_from_row(row: Row) -> ScheduleRecord:
    """Return the ScheduleRecord of a row of ``_SCHEDULE_SELECT`` (a schedule with its run counts)."""
    return record_from_row(
        ScheduleRecord, row, schedule_id=row["id"], task_context=json_value(row["task_context_json"])
    )


def _changeable_columns(schedule: ScheduleRecord, dialect: Dialect) -> dict[str, Any]:
    """Return the columns a save writes (and a create too) by name: all but ids, creation and last run."""
    return {
        "name": schedule.name,
        "description": schedule.description,
        "cron_expression": schedule.cron_expression,
        "timezone": schedule.timezone,
        "task_query": schedule.task_query,
        "task_context_json": compact_json(schedule.task_context),
        "max_budget_per_run_usd": schedule.max_budget_per_run_usd,
        "timeout_seconds": schedule.timeout_seconds,
        "status": schedule.status,
        "updated_at": dialect.encode_time(schedule.updated_at),
        "next_run_at": dialect.encode_time(schedule.next_run_at),
        "paused_at": dialect.encode_time(schedule.paused_at),
        "pause_reason": schedule.pause_reason,
    }


class ScheduleQueries:
    """Creating, reading, changing and firing schedules; listing their runs with their tasks."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_schedule(self, schedule: ScheduleRecord, max_per_user: int) -> bool:
        """Count the user's schedules and insert the new one in one transaction, under the user's lock."""
        dialect = self._db.dialect
        lock = dialect.advisory_lock()
        async with self._db.transaction() as transaction:
            if lock is not None:
                # Held until commit: a parallel create for this user counts after this one's insert.
                await transaction.execute(lock, (_CREATE_LOCK_PREFIX + schedule.user_id,))
            row = await transaction.fetch_one(
                "SELECT COUNT(*) AS total FROM schedules WHERE user_id = ?", (schedule.user_id,)
            )
            if row["total"] >= max_per_user:
                return False
            columns = {
                "id": schedule.schedule_id,
                "user_id": schedule.user_id,
                "tenant_id": schedule.tenant_id,
                "created_at": dialect.encode_time(schedule.created_at),
                "last_run_at": dialect.encode_time(schedule.last_run_at),
                **_changeable_columns(schedule, dialect),
            }
            await transaction.execute(
                f"INSERT INTO schedules ({', '.join(columns)})"
                f" VALUES ({', '.join(f':{name}' for name in columns)})",
                columns,
            )
        return True

    async def get_schedule(self, schedule_id: str, user_id: str) -> ScheduleRecord | None:
        row = await self._db.fetch_one(
            _SCHEDULE_SELECT + " WHERE s.id = ? AND s.user_id = ?",
            (*_COUNT_PARAMETERS, schedule_id, user_id),
        )
        return schedule_from_row(row) if row else None

    async def list_schedules(
        self, user_id: str, status: str | None, limit: int, offset: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Read the page with its run counts, then count the matching schedules."""
        conditions = ["s.user_id = ?"]
        parameters: list[object] = [user_id]
        if status is not None:
            conditions.append("s.status = ?")
            parameters.append(status)
        where = " WHERE " + " AND ".join(conditions)
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT
            + where
            + f" ORDER BY s.created_at DESC, s.id{self._db.dialect.binary_collation} DESC LIMIT ? OFFSET ?",
            (*_COUNT_PARAMETERS, *parameters, limit, offset),
        )
        count = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM schedules s" + where,  # noqa: S608
            parameters,
        )
        return [schedule_from_row(row) for row in rows], count["total"] if count else 0

    async def save_schedule(
        self, schedule: ScheduleRecord, expected_next_run_at: datetime.datetime | None
    ) -> bool:
        """One UPDATE whose compare-and-set on next_run_at matches NULL too (``IS NOT DISTINCT FROM``)."""
        dialect = self._db.dialect
        columns = _changeable_columns(schedule, dialect)
        changed = await self._db.execute(
            f"UPDATE schedules SET {', '.join(f'{name} = :{name}' for name in columns)}"
            " WHERE id = :id AND user_id = :user_id AND next_run_at IS NOT DISTINCT FROM :expected",
            {
                **columns,
                "id": schedule.schedule_id,
                "user_id": schedule.user_id,
                "expected": dialect.encode_time(expected_next_run_at),
            },
        )
        return changed > 0

    async def delete_schedule(self, schedule_id: str, user_id: str) -> bool:
        """Delete the schedule, then its runs, in one transaction."""
        async with self._db.transaction() as transaction:
            deleted = await transaction.execute(
                "DELETE FROM schedules WHERE id = ? AND user_id = ?", (schedule_id, user_id)
            )
            if deleted:
                await transaction.execute("DELETE FROM schedule_runs WHERE schedule_id = ?", (schedule_id,))
        return deleted > 0

    async def due_schedules(self, now: datetime.datetime, limit: int) -> list[ScheduleRecord]:
        # The status as a literal, like the condition of the partial index of due schedules, so
        # every plan (a generic one too) can read that index.
        rows = await self._db.fetch_all(
            _SCHEDULE_SELECT + f" WHERE s.status = '{ACTIVE}' AND s.next_run_at <= ?"
            " ORDER BY s.next_run_at LIMIT ?",
            (*_COUNT_PARAMETERS, self._db.dialect.encode_time(now), limit),
        )
        return [schedule_from_row(row) for row in rows]

    async def claim_schedule_run(self, claim: RunClaim) -> bool:
        """The update only matches while next_run_at is still ``claim.due`` and the schedule ACTIVE.

        Of several replicas the first to update wins, and the others (on PostgreSQL blocked on the
        row until it commits) then match nothing. The run row and its task are written in the same
        transaction.
        """
        dialect = self._db.dialect
        encode = dialect.encode_time
        due, triggered_at = encode(claim.due), encode(claim.triggered_at)
        async with self._db.transaction() as transaction:
            claimed = await transaction.execute(
                "UPDATE schedules SET next_run_at = ?, last_run_at = ?"
                " WHERE id = ? AND status = ? AND next_run_at = ?",
                (encode(claim.next_run_at), triggered_at, claim.schedule_id, ACTIVE, due),
            )
            if claimed:
                await _insert_run_task(transaction, dialect, claim.task)
                await transaction.execute(
                    _INSERT_RUN, (claim.schedule_id, claim.task.task_id, due, triggered_at, False, True)
                )
        return claimed > 0

    async def add_manual_run(
        self, schedule_id: str, user_id: str, task: NewTask, now: datetime.datetime
    ) -> bool:
        """Set last_run_at, insert the run's task and the run, in one transaction."""
        dialect = self._db.dialect
        encode = dialect.encode_time
        async with self._db.transaction() as transaction:
            found = await transaction.execute(
                "UPDATE schedules SET last_run_at = ? WHERE id = ? AND user_id = ?",
                (encode(now), schedule_id, user_id),
            )
            if found:
                await _insert_run_task(transaction, dialect, task)
                await transaction.execute(
                    _INSERT_RUN, (schedule_id, task.task_id, encode(now), encode(now), True, True)
                )
        return found > 0

    async def list_schedule_runs(
        self, schedule_id: str, limit: int, offset: int
    ) -> tuple[list[ScheduleRun], int]:
        """Read the page of runs and their count, then all their tasks in one query."""
        rows = await self._db.fetch_all(
            "SELECT task_id, scheduled_for, triggered_at, manual FROM schedule_runs"
            " WHERE schedule_id = ? ORDER BY position DESC LIMIT ? OFFSET ?",
            (schedule_id, limit, offset),
        )
        count = await self._db.fetch_one(
            "SELECT COUNT(*) AS total FROM schedule_runs WHERE schedule_id = ?", (schedule_id,)
        )
        task_ids = [row["task_id"] for row in rows]
        tasks = {}
        if task_ids:
            task_rows = await self._db.fetch_all(
                f"SELECT {TASK_COLUMNS} FROM tasks WHERE task_id IN ({marks(task_ids)})",  # noqa: S608
                task_ids,
            )
            tasks = {task_row["task_id"]: task_from_row(task_row) for task_row in task_rows}
        runs = [
            ScheduleRun(
                task_id=row["task_id"],
                scheduled_for=stored_time(row["scheduled_for"]),
                triggered_at=stored_time(row["triggered_at"]),
                manual=bool(row["manual"]),
                task=tasks.get(row["task_id"]),
            )
            for row in rows
        ]
        return runs, count["total"] if count else 0

    async def unconfirmed_schedule_runs(
        self, triggered_before: datetime.datetime, limit: int
    ) -> list[UnconfirmedRun]:
        """Join each run to its schedule's user and, if stored, its task (runs of earlier versions only)."""
        dialect = self._db.dialect
        # A literal, not a parameter: only then does every plan (a generic one too) match the
        # partial index of unconfirmed runs, and read those rather than every run ever made.
        rows = await self._db.fetch_all(
            "SELECT r.task_id, r.schedule_id, s.user_id, t.task_id IS NOT NULL AS task_stored"
            " FROM schedule_runs r JOIN schedules s ON s.id = r.schedule_id"
            " LEFT JOIN tasks t ON t.task_id = r.task_id"
            f" WHERE r.task_stored = {dialect.false} AND r.triggered_at < ? ORDER BY r.position LIMIT ?",
            (dialect.encode_time(triggered_before), limit),
        )
        return [
            UnconfirmedRun(row["task_id"], row["schedule_id"], row["user_id"], bool(row["task_stored"]))
            for row in rows
        ]

    async def confirm_schedule_run(self, task_id: str) -> None:
        await self._db.execute("UPDATE schedule_runs SET task_stored = ? WHERE task_id = ?", (True, task_id))


async def _insert_run_task(transaction: Transaction, dialect: Dialect, task: NewTask) -> None:
    """Insert a run's task and the new session it starts, created now like any submitted task."""
    now = utc_now()
    await insert_session(transaction, dialect, session_for_task(task, now))
    await insert_task(transaction, dialect, task, now)
