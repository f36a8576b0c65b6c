"""Submitting a task: stored QUEUED as the next turn of its session, in one transaction.

The session row is inserted unless it exists and then locked, so two submissions to one session
are stored one after the other: each sees the turns the other stored, and the turns' order is the
order of their submissions (a turn is never stamped before the latest one, whatever the clock of the
replica storing it says). What the new turn does to the session's active turns
(``orchestrator.domain.turns``) happens under that lock, in the same transaction as its insert.

``insert_task`` and ``session_for_task`` are how anything else that stores a task (a schedule's
run, ``store/schedules.py``) writes it, inside its own transaction.
"""

import dataclasses
import datetime
from collections.abc import Sequence

from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.sessions import token_budget_exhausted
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.domain.tasks import TokenUsage
from orchestrator.domain.turns import ACTIVE_STATUSES
from orchestrator.domain.turns import ENQUEUE
from orchestrator.domain.turns import REJECT
from orchestrator.domain.turns import ROLLBACK
from orchestrator.domain.turns import SubmittedTask
from orchestrator.domain.turns import check_strategy
from orchestrator.domain.turns import interruption
from orchestrator.errors import SessionBudgetExhaustedError
from orchestrator.errors import SessionBusyError
from orchestrator.errors import SessionNotFoundError
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.database import named_list
from orchestrator.store.dialect import Dialect
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import stored_time
from orchestrator.store.rows import task_from_row
from orchestrator.store.sessions import counted_session
from orchestrator.store.sessions import new_session
from orchestrator.store.sessions import session_insert
from orchestrator.store.task_control import apply_transition
from orchestrator.store.writer_transactions import run_transaction
from taskgate.rfc3339 import utc_now
from taskgate.session_titles import title_from_query

_ACTIVE, _ACTIVE_VALUES = named_list("active", [status.value for status in ACTIVE_STATUSES])


def session_for_task(task: NewTask, now: datetime.datetime) -> SessionRecord:
    """Return the session a task starts when its session does not exist yet."""
    session = new_session(task.session_id, task.user_id, task.tenant_id, title_from_query(task.query), now)
    return dataclasses.replace(session, token_budget=task.session_token_budget, context=task.context)


async def insert_task(
    transaction: Transaction, dialect: Dialect, task: NewTask, now: datetime.datetime, counted: bool = False
) -> TaskRecord:
    """Insert a QUEUED task into its session (which must exist) and count it there; return its record.

    ``counted``: the session's row counts it already (``counted_session``).
    """
    stored_now = dialect.encode_time(now)
    await transaction.execute(
        f"INSERT INTO tasks ({_TASK_INSERTED}) VALUES ({_TASK_VALUES})", _task_values(task, stored_now)
    )
    if not counted:
        await transaction.execute(
            "UPDATE sessions SET task_count = task_count + 1, updated_at = ? WHERE user_id = ? AND id = ?",
            (stored_now, task.user_id, task.session_id),
        )
    return _queued_record(task, now)


# The columns a submission gives a task, and the values of a statement inserting them.
_TASK_INSERTED = (
    "task_id, user_id, tenant_id, session_id, query, status, mode, context_json, options_json,"
    " created_at, updated_at, api_key_id"
)
_TASK_VALUES = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?"
# The same where the values are not those of an INSERT (whose columns give them their types).
_TASK_SELECTED = "?, ?, ?, ?, ?, ?, ?, CAST(? AS json), CAST(? AS json), ?, ?, ?"


def _task_values(task: NewTask, stored_now: object) -> tuple[object, ...]:
    return (
        task.task_id,
        task.user_id,
        task.tenant_id,
        task.session_id,
        task.query,
        TaskStatus.QUEUED.value,
        task.mode,
        compact_json(task.context),
        compact_json(task.options),
        stored_now,
        stored_now,
        task.api_key_id,
    )


def _queued_record(task: NewTask, now: datetime.datetime) -> TaskRecord:
    """The record of a task just stored QUEUED at ``now``."""
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


class TaskSubmissions:
    """Stores submitted tasks as turns of their sessions."""

    def __init__(self, database: Database) -> None:
        self._db = database

    async def create_task(self, task: NewTask) -> SubmittedTask:
        """Insert the session unless it exists, lock and check it, apply the strategy, insert the task.

        One transaction, one hop to the writer on SQLite (``writer_transactions.py``).
        """
        strategy = check_strategy(task.multitask_strategy)
        now = utc_now()
        if self._db.dialect.writes_in_with:
            started = await self._start_session(task, now)
            if started is not None:
                return started
        return await run_transaction(
            self._db, lambda transaction: self._submit(transaction, task, strategy, now)
        )

    async def _start_session(self, task: NewTask, now: datetime.datetime) -> SubmittedTask | None:
        """Store a task that starts its session in one statement (PostgreSQL); None if the session exists.

        A session this statement inserts has no turns, no tokens used and is not deleted, so nothing
        is checked and the strategy has nothing to act on: the session row (counting the task) and the
        task are inserted together, one round trip instead of a transaction's five. When the session
        exists nothing is written, and the submission is stored as a turn of it (``_submit``): a
        continuing session's turn pays this one statement more.
        """
        dialect = self._db.dialect
        session_sql, session_values = session_insert(dialect, session_for_task(task, now), task_count=1)
        inserted = await self._db.fetch_all(
            f"WITH started AS ({session_sql} ON CONFLICT (user_id, id) DO NOTHING RETURNING id),"
            f" queued AS (INSERT INTO tasks ({_TASK_INSERTED}) SELECT {_TASK_SELECTED} FROM started)"
            " SELECT id FROM started",
            (*session_values, *_task_values(task, dialect.encode_time(now))),
        )
        return SubmittedTask(_queued_record(task, now), (), ()) if inserted else None

    async def _submit(
        self, transaction: Transaction, task: NewTask, strategy: str, now: datetime.datetime
    ) -> SubmittedTask:
        dialect = self._db.dialect
        # Insert the session counting this turn, or count it in the session that exists: either way
        # its row is locked until the commit, so two tasks starting one session at once never both
        # insert it, a task never joins a session being deleted, and the session's turns are
        # stored one at a time. One statement for what was an insert, a locking read and an update.
        session_row = await transaction.fetch_one(*counted_session(dialect, session_for_task(task, now)))
        if session_row["deleted_at"] is not None:
            raise SessionNotFoundError()
        if token_budget_exhausted(session_row["tokens_used"], session_row["token_budget"]):
            raise SessionBudgetExhaustedError()
        latest = None
        if dialect.inserted_by_upsert is None or not session_row["inserted"]:
            # Read after the lock, so it sees the turns of the submissions stored before this one.
            latest = stored_time(
                await transaction.fetch_value(
                    "SELECT MAX(created_at) AS latest FROM tasks WHERE user_id = ? AND session_id = ?",
                    (task.user_id, task.session_id),
                )
            )
        created_at = max(now, latest) if latest is not None else now
        ended: list[Event] = []
        interrupted: list[str] = []
        if strategy != ENQUEUE:
            active = await _active_turns(transaction, dialect, task)
            if active and strategy == REJECT:
                raise SessionBusyError()
            for turn in active:
                decision = interruption(turn, strategy, task.user_id, now)
                if decision.transition is not None:
                    ended.extend(await _cancel_turn(transaction, dialect, turn, decision.transition, now))
                if decision.notify_runner:
                    interrupted.append(turn.task_id)
            if active and strategy == ROLLBACK:
                await _roll_back(transaction, task, [turn.task_id for turn in active])
        if created_at != now:
            # Another replica's clock stamped the latest turn later than this one's now.
            await transaction.execute(
                "UPDATE sessions SET updated_at = ? WHERE user_id = ? AND id = ?",
                (dialect.encode_time(created_at), task.user_id, task.session_id),
            )
        record = await insert_task(transaction, dialect, task, created_at, counted=True)
        return SubmittedTask(record, tuple(ended), tuple(interrupted))


async def _active_turns(transaction: Transaction, dialect: Dialect, task: NewTask) -> list[TaskRecord]:
    """Read the active turns of the task's session, oldest first, locked (PostgreSQL) until the commit."""
    rows = await transaction.fetch_all(
        f"SELECT {TASK_COLUMNS} FROM tasks WHERE user_id = :user_id AND session_id = :session_id"
        f" AND status IN ({_ACTIVE}) ORDER BY created_at, {dialect.insertion_order}{dialect.for_update}",
        {"user_id": task.user_id, "session_id": task.session_id, **_ACTIVE_VALUES},
    )
    return [task_from_row(row) for row in rows]


async def _cancel_turn(
    transaction: Transaction,
    dialect: Dialect,
    turn: TaskRecord,
    transition: TaskTransition,
    now: datetime.datetime,
) -> Sequence[Event]:
    """Store a turn's cancellation: asked of its runner, or ended at once with its events if it has none.

    The turn's row is locked since it was read in this transaction, so its guard holds.
    """
    stored = await apply_transition(transaction, dialect, turn.task_id, transition, now)
    if stored is None:
        raise RuntimeError(f"turn {turn.task_id} changed although it was locked")
    return stored


async def _roll_back(transaction: Transaction, task: NewTask, task_ids: list[str]) -> None:
    """Mark turns rolled back (left out of the session's history) and uncount them from the session."""
    id_list, id_values = named_list("task", task_ids)
    await transaction.execute(
        f"UPDATE tasks SET rolled_back = :rolled_back WHERE task_id IN ({id_list})",
        {"rolled_back": True, **id_values},
    )
    await transaction.execute(
        "UPDATE sessions SET task_count = task_count - :turns WHERE user_id = :user_id AND id = :session_id",
        {"turns": len(task_ids), "user_id": task.user_id, "session_id": task.session_id},
    )
