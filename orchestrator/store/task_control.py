"""Task control: guarded transitions with their events, a run's end, control states, the tasks workers hold.

A transition is one conditional UPDATE (the guard: status, claim and epoch, control flags) and its
events under the workflow's next seqs, in one transaction. On PostgreSQL the UPDATE locks the task
row, so two replicas changing one task at once are serialised and the second finds the guard broken.
"""

import contextlib
import datetime
from collections.abc import Collection
from collections.abc import Sequence
from typing import Any

from orchestrator.domain.budgets import UsageWindows
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.domain.tasks import number_events
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.store.database import Database
from orchestrator.store.database import Transaction
from orchestrator.store.database import marks
from orchestrator.store.dialect import Dialect
from orchestrator.store.events import insert_next_events
from orchestrator.store.rows import TASK_COLUMNS
from orchestrator.store.rows import control_state_from_row
from orchestrator.store.rows import task_from_row
from orchestrator.store.usage import UsageLedger
from orchestrator.store.usage import has_usage
from orchestrator.store.usage import ledger_upserts
from orchestrator.store.writer_transactions import run_transaction
from taskgate.rfc3339 import utc_now

# A run's end, fenced by its claim: it matches a RUNNING or held PAUSED task of this worker in this epoch.
_FENCED_END = (
    "UPDATE tasks SET status = :status,"
    " progress = CASE WHEN :completed THEN 1.0 ELSE progress END,"
    " result = :result, error = :error, model_used = :model_used, provider = :provider,"
    " prompt_tokens = :prompt_tokens, completion_tokens = :completion_tokens,"
    " total_tokens = :total_tokens, cost_usd = :cost_usd, updated_at = :now,"
    " completed_at = :now, lease_expires_at = NULL"
    " WHERE task_id = :task_id AND status IN (:running, :paused)"
    " AND claimed_by = :worker AND claim_epoch = :epoch"
)

_CONTROL_COLUMNS = (
    "task_id, pause_requested, paused_at, pause_reason, paused_by,"
    " cancel_requested, cancel_reason, cancelled_by"
)
# Well under SQLite's limit on the number of parameters of one statement.
_IDS_PER_QUERY = 500


class TaskControlQueries:
    """Changes of a task's status and control state, each with the events that record it."""

    def __init__(self, database: Database) -> None:
        self._db = database
        self._ledger = UsageLedger()

    async def finish_task(
        self, task_id: str, claim: Claim, outcome: TaskOutcome, new_events: Sequence[NewEvent]
    ) -> list[Event] | None:
        """One compare-and-set on the claim, then the usage (session, ledger) and events, in one transaction.

        The claim matches a RUNNING or held PAUSED task of this worker in this epoch: a worker whose
        lease was taken over records nothing. The status, the usage and the events (the terminal one
        and STREAM_END) commit together, so no task ends without its STREAM_END. One hop to the
        writer on SQLite (``writer_transactions.py``).
        """
        now = utc_now()
        if self._db.dialect.writes_in_with:
            return await self._finish_in_one_statement(task_id, claim, outcome, new_events, now)
        return await run_transaction(
            self._db, lambda transaction: self._finish(transaction, task_id, claim, outcome, new_events, now)
        )

    async def _finish(
        self,
        transaction: Transaction,
        task_id: str,
        claim: Claim,
        outcome: TaskOutcome,
        new_events: Sequence[NewEvent],
        now: datetime.datetime,
    ) -> list[Event] | None:
        dialect = self._db.dialect
        stored_now = dialect.encode_time(now)
        usage = outcome.usage
        # RETURNING says whether the guard held, and names the rows the usage is added to.
        ended = await transaction.fetch_all(
            _FENCED_END + " RETURNING user_id, session_id, api_key_id",
            _end_parameters(task_id, claim, outcome, stored_now),
        )
        if len(ended) != 1:
            return None
        task = ended[0]
        await transaction.execute(
            "UPDATE sessions SET tokens_used = tokens_used + ?, cost_usd = cost_usd + ?, updated_at = ?"
            " WHERE user_id = ? AND id = ?",
            (usage.total_tokens, usage.cost_usd, stored_now, task["user_id"], task["session_id"]),
        )
        await self._ledger.record(transaction, dialect, task["user_id"], task["api_key_id"], usage, now)
        return await insert_next_events(transaction, dialect, task_id, new_events, now)

    async def _finish_in_one_statement(
        self,
        task_id: str,
        claim: Claim,
        outcome: TaskOutcome,
        new_events: Sequence[NewEvent],
        now: datetime.datetime,
    ) -> list[Event] | None:
        """``_finish`` as one statement (PostgreSQL): one round trip instead of a transaction's nine.

        The same fenced UPDATE, then, only for the row it returns, the session's and the ledger's
        additions and the events after the workflow's last seq; all of it commits or fails at once.
        A user's first finish of the minute drops their old ledger rows afterwards, on their own.
        """
        dialect = self._db.dialect
        stored_now = dialect.encode_time(now)
        usage = outcome.usage
        windows = UsageWindows.at(now)
        values = ", ".join(
            f"(CAST(:n{index} AS integer), :type{index}, :agent{index}, :message{index}, :payload{index})"
            for index in range(len(new_events))
        )
        parameters: dict[str, object] = {
            **_end_parameters(task_id, claim, outcome, stored_now),
            "total_tokens": usage.total_tokens,
            "cost_usd": usage.cost_usd,
            "minute_start": dialect.encode_time(windows.minute_start),
            "day_start": dialect.encode_time(windows.day_start),
        }
        for index, new_event in enumerate(new_events):
            parameters |= {
                f"n{index}": index + 1,
                f"type{index}": new_event.type,
                f"agent{index}": new_event.agent_id,
                f"message{index}": new_event.message,
                f"payload{index}": compact_json(dict(new_event.payload)),
            }
        added = f", {ledger_upserts('ended')}" if has_usage(usage) else ""
        stored = (
            ", last AS (SELECT COALESCE(MAX(seq), 0) AS seq FROM events WHERE workflow_id = :task_id),"
            " stored AS (INSERT INTO events"
            " (workflow_id, seq, type, agent_id, message, payload_json, timestamp)"
            " SELECT :task_id, last.seq + v.n, v.type, v.agent_id, v.message,"
            " CAST(v.payload_json AS json), :now FROM ended, last,"
            f" (VALUES {values}) AS v (n, type, agent_id, message, payload_json) RETURNING seq)"
            if new_events
            else ""
        )
        row = await self._db.fetch_one(
            f"WITH ended AS ({_FENCED_END} RETURNING user_id, session_id, api_key_id),"
            " counted AS (UPDATE sessions s SET tokens_used = s.tokens_used + :total_tokens,"
            " cost_usd = s.cost_usd + :cost_usd, updated_at = :now"
            f" FROM ended WHERE s.user_id = ended.user_id AND s.id = ended.session_id){added}{stored}"
            " SELECT ended.user_id"
            + (", (SELECT MIN(seq) FROM stored) AS first_seq" if new_events else "")
            + " FROM ended",
            parameters,
        )
        if row is None:
            return None
        if has_usage(usage) and self._ledger.due_for_pruning(row["user_id"], now):
            # Only room: the task has ended whether or not this works (a later minute tries again).
            with contextlib.suppress(Exception):
                await self._ledger.prune(self._db, row["user_id"], now)
        return number_events(task_id, row["first_seq"] - 1, new_events, now) if new_events else []

    async def transition_task(self, task_id: str, transition: TaskTransition) -> list[Event] | None:
        """Apply the transition in a transaction of its own (``apply_transition``).

        A seq of the events taken meanwhile (a runner recorded one) rolls it all back, and is
        answered None like a guard that failed.
        """
        dialect = self._db.dialect
        try:
            async with self._db.transaction() as transaction:
                return await apply_transition(transaction, dialect, task_id, transition, utc_now())
        except dialect.unique_violation:
            # A runner recorded an event of the task meanwhile: the task changed, nothing was written.
            return None

    async def get_control_states(self, task_ids: Collection[str]) -> dict[str, ControlState]:
        """Read the control columns, a chunk of ``_IDS_PER_QUERY`` ids per query."""
        ids = list(dict.fromkeys(task_ids))
        states: dict[str, ControlState] = {}
        for start in range(0, len(ids), _IDS_PER_QUERY):
            chunk = ids[start : start + _IDS_PER_QUERY]
            rows = await self._db.fetch_all(
                f"SELECT {_CONTROL_COLUMNS} FROM tasks WHERE task_id IN ({marks(chunk)})", chunk
            )
            states.update((row["task_id"], control_state_from_row(row)) for row in rows)
        return states

    async def list_claimed_tasks(self) -> list[TaskRecord]:
        rows = await self._db.fetch_all(
            # A RUNNING task without a worker waits for an approval: no runner of it is gone.
            f"SELECT {TASK_COLUMNS} FROM tasks WHERE status IN (?, ?) AND claimed_by IS NOT NULL"
            f" ORDER BY created_at, {self._db.dialect.insertion_order}",
            (TaskStatus.RUNNING.value, TaskStatus.PAUSED.value),
        )
        return [task_from_row(row) for row in rows]


async def apply_transition(
    transaction: Transaction,
    dialect: Dialect,
    task_id: str,
    transition: TaskTransition,
    now: datetime.datetime,
) -> list[Event] | None:
    """One UPDATE guarded by the task's columns, then the events, in the caller's transaction.

    A terminal status also closes the task's pending approval. None when the guard no longer holds
    (nothing was written).
    """
    assignments, parameters = _assignments(transition, dialect.encode_time(now), dialect)
    guard = transition.guard
    parameters.update(
        task_id=task_id,
        guard_status=guard.status.value,
        guard_claimed_by=guard.claimed_by,
        guard_epoch=guard.claim_epoch,
        guard_pause=guard.pause_requested,
        guard_cancel=guard.cancel_requested,
    )
    changed = await transaction.execute(
        f"UPDATE tasks SET {', '.join(assignments)} WHERE task_id = :task_id"
        " AND status = :guard_status AND claimed_by IS NOT DISTINCT FROM :guard_claimed_by"
        " AND claim_epoch = :guard_epoch"
        " AND pause_requested = :guard_pause AND cancel_requested = :guard_cancel",
        parameters,
    )
    if changed != 1:
        return None
    if transition.status is not None and transition.status.is_terminal:
        await cancel_pending_approval(transaction, task_id, parameters["now"])
    return await insert_next_events(transaction, dialect, task_id, transition.events, now)


async def cancel_pending_approval(transaction: Any, task_id: str, now: Any) -> None:
    """Close the pending approval of a task that ends while it waits for a decision (cancelled)."""
    await transaction.execute(
        "UPDATE approvals SET status = 'cancelled', decided_at = ? WHERE task_id = ? AND status = 'pending'",
        (now, task_id),
    )


def _assignments(transition: TaskTransition, now: Any, dialect: Any) -> tuple[list[str], dict[str, Any]]:
    """Return the SET clauses of a transition and their named parameters."""
    control = transition.control
    assignments = [
        "pause_requested = :pause_requested",
        "paused_at = :paused_at",
        "pause_reason = :pause_reason",
        "paused_by = :paused_by",
        "cancel_requested = :cancel_requested",
        "cancel_reason = :cancel_reason",
        "cancelled_by = :cancelled_by",
        "updated_at = :now",
    ]
    parameters: dict[str, Any] = {
        "pause_requested": control.pause_requested,
        "paused_at": dialect.encode_time(control.paused_at),
        "pause_reason": control.pause_reason,
        "paused_by": control.paused_by,
        "cancel_requested": control.cancel_requested,
        "cancel_reason": control.cancel_reason,
        "cancelled_by": control.cancelled_by,
        "now": now,
    }
    status = transition.status
    if status is not None:
        assignments.append("status = :status")
        parameters["status"] = status.value
        if status.is_terminal:
            assignments.append("completed_at = :now")
    if transition.release:
        assignments.append("claimed_by = NULL")
    if transition.release or (status is not None and status.is_terminal):
        assignments.append("lease_expires_at = NULL")
    if transition.run_seconds is not None:
        assignments.append("run_seconds = :run_seconds")
        parameters["run_seconds"] = transition.run_seconds
    if transition.error is not None:
        assignments.append("error = :error")
        parameters["error"] = transition.error
    if transition.attempt is not None:
        assignments.append("attempt = :attempt")
        parameters["attempt"] = transition.attempt
    if transition.lost_attempts is not None:
        assignments.append("lost_attempts = :lost_attempts")
        parameters["lost_attempts"] = transition.lost_attempts
    return assignments, parameters


def _end_parameters(
    task_id: str, claim: Claim, outcome: TaskOutcome, stored_now: object
) -> dict[str, object]:
    """The parameters of ``_FENCED_END``."""
    usage = outcome.usage
    return {
        "status": outcome.status.value,
        "completed": outcome.status == TaskStatus.COMPLETED,
        "result": outcome.result,
        "error": outcome.error,
        "model_used": outcome.model_used,
        "provider": outcome.provider,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.total_tokens,
        "cost_usd": usage.cost_usd,
        "now": stored_now,
        "task_id": task_id,
        "running": TaskStatus.RUNNING.value,
        "paused": TaskStatus.PAUSED.value,
        "worker": claim.worker_id,
        "epoch": claim.epoch,
    }
