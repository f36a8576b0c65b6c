"""The schedule engine: the caller's schedules, their runs, and firing the ones that are due.

Every call of the API is scoped to the caller: another user's schedule is reported exactly like a
missing one (ScheduleNotFoundError). ``fire_due`` is what each replica's scheduler loop calls: a
due run is claimed by a compare-and-set on the schedule's next_run_at, so it fires exactly once
however many replicas look at once, and runs missed while nothing ran fire once, not once per tick.
A run due while its owner is over a token or cost budget waits (unclaimed) until the budget allows
it, then fires once; a manual trigger over budget is refused like a submission.
A run's task is stored in the same transaction as its claim (or a manual run's row).
"""

import dataclasses
import datetime
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from orchestrator.caller import Caller
from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import PAUSED
from orchestrator.domain.schedules import RunClaim
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.schedules import ScheduleRun
from orchestrator.domain.tasks import NewTask
from orchestrator.engine import schedule_rules
from orchestrator.engine.budgets import BudgetEngine
from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import ScheduleNotFoundError
from orchestrator.errors import UnavailableError
from orchestrator.identifiers import new_session_id
from orchestrator.identifiers import new_task_id
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now
from taskgate.task_rules import MAX_REASON_CHARACTERS

logger = logging.getLogger(__name__)

DUE_BATCH = 100
STATUSES = (ACTIVE, PAUSED)
# A change re-reads the schedule when a run was claimed under it; more attempts than this means it
# keeps changing, and the caller is told to try again.
CHANGE_ATTEMPTS = 5
# A run of an earlier version (which stored the task after claiming the run) still without its task
# after this long was left by a replica that stopped in between.
ORPHAN_AGE = datetime.timedelta(seconds=30)
CHANGED_MESSAGE = "Schedule changed while the request was applied; try again"
UNCOMPUTABLE_REASON = "Paused by the scheduler: its next run cannot be computed"


@dataclasses.dataclass(frozen=True)
class ScheduleDraft:
    """The fields of a create or update request; None means absent (kept as is on update)."""

    name: str | None = None
    description: str | None = None
    cron_expression: str | None = None
    timezone: str | None = None
    task_query: str | None = None
    task_context_json: str | None = None
    max_budget_per_run_usd: float | None = None
    timeout_seconds: int | None = None


@dataclasses.dataclass(frozen=True)
class _TaskFields:
    """The checked task fields of a schedule."""

    query: str
    context: dict[str, Any]
    timeout_seconds: int | None


def _task_fields(query: str, context_json: str, timeout_seconds: int | None) -> _TaskFields:
    """Check a schedule's task the way a task submission is checked, naming the schedule's fields."""
    try:
        valid = validate_submission(
            TaskSubmission(query=query, context_json=context_json, timeout_seconds=timeout_seconds or 0)
        )
    except InvalidArgumentError as ex:
        field = {"query": "task_query", "context": "task_context"}.get(ex.field, ex.field)
        raise InvalidArgumentError(field, ex.public_message.replace(ex.field, field, 1)) from None
    return _TaskFields(valid.query, valid.context, valid.options.get("timeout_seconds"))


class ScheduleEngine:
    """Creates, reads, changes and fires schedules."""

    def __init__(
        self,
        store: Store,
        wake_workers: Callable[[], None],
        min_interval_seconds: int,
        max_per_user: int,
        budgets: BudgetEngine,
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._store = store
        self._budgets = budgets
        self._wake_workers = wake_workers
        self._min_interval = min_interval_seconds
        self._max_per_user = max_per_user
        self._clock = clock

    async def create(self, caller: Caller, draft: ScheduleDraft) -> ScheduleRecord:
        """Check and store a new ACTIVE schedule with its first run computed from now."""
        now = self._clock()
        schedule = ScheduleRecord(
            schedule_id=f"sched-{uuid.uuid4()}",
            user_id=caller.user_id,
            tenant_id=caller.tenant_id,
            name="",
            description="",
            cron_expression="",
            timezone="UTC",
            task_query="",
            task_context={},
            max_budget_per_run_usd=None,
            timeout_seconds=None,
            status=ACTIVE,
            created_at=now,
            updated_at=now,
            next_run_at=None,
        )
        draft = dataclasses.replace(
            draft,
            name=draft.name if draft.name is not None else "",
            cron_expression=draft.cron_expression if draft.cron_expression is not None else "",
            task_query=draft.task_query if draft.task_query is not None else "",
        )
        schedule = self._apply(schedule, draft, now)
        if not await self._store.create_schedule(schedule, self._max_per_user):
            raise InvalidArgumentError(
                "schedules", f"a user may have at most {self._max_per_user} schedules; delete one first"
            )
        return await self.get(caller, schedule.schedule_id)

    async def list_schedules(
        self, caller: Caller, status: str | None, limit: int, offset: int
    ) -> tuple[list[ScheduleRecord], int]:
        """Return one page of the caller's schedules (ACTIVE or PAUSED, None for all) and the total."""
        if status is not None and status not in STATUSES:
            raise InvalidArgumentError("status", "status must be ACTIVE, PAUSED or ALL")
        return await self._store.list_schedules(caller.user_id, status, limit, offset)

    async def get(self, caller: Caller, schedule_id: str) -> ScheduleRecord:
        """Return one of the caller's schedules; raise ScheduleNotFoundError otherwise."""
        schedule = await self._store.get_schedule(schedule_id, caller.user_id)
        if schedule is None:
            raise ScheduleNotFoundError()
        return schedule

    async def update(self, caller: Caller, schedule_id: str, draft: ScheduleDraft) -> ScheduleRecord:
        """Change the fields present in ``draft``; a new cron or zone recomputes the next run."""
        await self._change(caller, schedule_id, lambda schedule, now: self._apply(schedule, draft, now))
        return await self.get(caller, schedule_id)

    async def pause(self, caller: Caller, schedule_id: str, reason: str) -> ScheduleRecord:
        """Stop a schedule from firing (pausing a paused one changes nothing)."""
        reason = _reason(reason)

        def paused(schedule: ScheduleRecord, now: datetime.datetime) -> ScheduleRecord:
            if schedule.status == PAUSED:
                return schedule
            return dataclasses.replace(
                schedule, status=PAUSED, next_run_at=None, paused_at=now, pause_reason=reason, updated_at=now
            )

        return await self._change(caller, schedule_id, paused)

    async def resume(self, caller: Caller, schedule_id: str, reason: str) -> ScheduleRecord:
        """Let a paused schedule fire again from its next tick after now (an active one stays as it is)."""
        _reason(reason)

        def resumed(schedule: ScheduleRecord, now: datetime.datetime) -> ScheduleRecord:
            if schedule.status == ACTIVE:
                return schedule
            return dataclasses.replace(
                schedule,
                status=ACTIVE,
                next_run_at=following_tick(schedule, now),
                paused_at=None,
                pause_reason="",
                updated_at=now,
            )

        return await self._change(caller, schedule_id, resumed)

    async def trigger(self, caller: Caller, schedule_id: str) -> str:
        """Start one run now, whatever the status, leaving next_run_at alone; return its task id."""
        schedule = await self.get(caller, schedule_id)
        await self._budgets.admit(caller)
        task = run_task(schedule, new_task_id())
        if not await self._store.add_manual_run(schedule_id, caller.user_id, task, self._clock()):
            raise ScheduleNotFoundError()
        self._wake_workers()
        return task.task_id

    async def delete(self, caller: Caller, schedule_id: str) -> None:
        """Delete one of the caller's schedules; the tasks it started stay."""
        if not await self._store.delete_schedule(schedule_id, caller.user_id):
            raise ScheduleNotFoundError()

    async def runs(
        self, caller: Caller, schedule_id: str, limit: int, offset: int
    ) -> tuple[list[ScheduleRun], int]:
        """Return one page of a schedule's runs, newest first, with their tasks, and the total."""
        await self.get(caller, schedule_id)
        return await self._store.list_schedule_runs(schedule_id, limit, offset)

    async def fire_due(self) -> int:
        """Claim and start every run due now that no other replica claimed first; return how many."""
        now = self._clock()
        fired = 0
        for schedule in await self._store.due_schedules(now, DUE_BATCH):
            if schedule.next_run_at is None:
                continue
            try:
                following = following_tick(schedule, now)
            except InvalidArgumentError as ex:
                await self._pause_uncomputable(schedule, ex.public_message, now)
                continue
            if await self._budgets.refusal(Caller(schedule.user_id, schedule.tenant_id), now) is not None:
                # Left due: it fires once its owner's budget allows again (ticks missed meanwhile
                # are not made up, as for a run missed while nothing ran).
                continue
            task = run_task(schedule, new_task_id())
            claimed = await self._store.claim_schedule_run(
                RunClaim(schedule.schedule_id, schedule.next_run_at, following, task, now)
            )
            if not claimed:
                continue
            self._wake_workers()
            fired += 1
            logger.info(
                "schedule fired",
                extra={"schedule_id": schedule.schedule_id, "workflow_id": task.task_id},
            )
        return fired

    async def _pause_uncomputable(self, schedule: ScheduleRecord, why: str, now: datetime.datetime) -> None:
        """Pause a due schedule whose next run cannot be computed, so it is looked at (and logged) once.

        Its due run does not fire. The pause is guarded by the next_run_at read, like any change: if
        another replica paused it first, or a change came in between, this one does nothing.
        """
        reason = f"{UNCOMPUTABLE_REASON}: {why}"[:MAX_REASON_CHARACTERS]
        paused = dataclasses.replace(
            schedule, status=PAUSED, next_run_at=None, paused_at=now, pause_reason=reason, updated_at=now
        )
        if await self._store.save_schedule(paused, schedule.next_run_at):
            logger.error(
                "schedule paused: its next run cannot be computed",
                extra={"schedule_id": schedule.schedule_id, "reason": why},
            )

    async def start_orphaned_runs(self) -> int:
        """Store the task of each run an earlier version claimed a while ago without it; return how many.

        This version stores a run with its task, in one transaction. A replica of a version before
        migration 0012 (still running during a rolling upgrade) claimed the run first and stored the
        task after it: one that stopped (or lost the database) in between left the run without its
        task, which still fires once, late, with the task id it was given; one that stopped after
        storing the task but before marking the run only needs the mark. Only unmarked runs are
        read, so the sweep costs one index probe a poll, which finds nothing once no such run is left.
        """
        before = self._clock() - ORPHAN_AGE
        started = 0
        for run in await self._store.unconfirmed_schedule_runs(before, DUE_BATCH):
            if run.task_stored:
                await self._confirm(run.task_id)
                continue
            schedule = await self._store.get_schedule(run.schedule_id, run.user_id)
            if schedule is None:  # deleted since: there is nothing to start
                await self._confirm(run.task_id)
                continue
            try:
                await self._store.create_task(run_task(schedule, run.task_id))
                self._wake_workers()
                await self._confirm(run.task_id)
            except Exception:
                # Another replica stored it first (the task id is taken), or the store is away.
                logger.warning("could not start an orphaned schedule run", extra={"workflow_id": run.task_id})
                continue
            started += 1
        return started

    async def _confirm(self, task_id: str) -> None:
        """Mark a run's task as stored; if the store is away, the next sweep marks it instead."""
        try:
            await self._store.confirm_schedule_run(task_id)
        except UnavailableError:
            logger.warning("could not mark a schedule run as started", extra={"workflow_id": task_id})

    async def _change(
        self,
        caller: Caller,
        schedule_id: str,
        change: Callable[[ScheduleRecord, datetime.datetime], ScheduleRecord],
    ) -> ScheduleRecord:
        """Read, change and write a schedule, reading again when a run was claimed in between.

        The write is guarded by the next_run_at read, so a change never puts back a run that a
        replica has just claimed (which would fire it twice).
        """
        for _ in range(CHANGE_ATTEMPTS):
            schedule = await self.get(caller, schedule_id)
            changed = change(schedule, self._clock())
            if changed is schedule or await self._store.save_schedule(changed, schedule.next_run_at):
                return changed
        raise UnavailableError(CHANGED_MESSAGE)

    def _apply(
        self, schedule: ScheduleRecord, draft: ScheduleDraft, now: datetime.datetime
    ) -> ScheduleRecord:
        """Return the schedule with the draft's fields checked and applied, next_run_at recomputed."""
        changes: dict[str, Any] = {"updated_at": now}
        if draft.name is not None:
            changes["name"] = schedule_rules.check_text(
                "name", draft.name, schedule_rules.MAX_NAME_CHARACTERS, True
            )
        if draft.description is not None:
            changes["description"] = schedule_rules.check_text(
                "description", draft.description, schedule_rules.MAX_DESCRIPTION_CHARACTERS, False
            )
        cron = schedule.cron_expression
        if draft.cron_expression is not None:
            cron = schedule_rules.check_cron(draft.cron_expression)
        timezone = draft.timezone if draft.timezone is not None else schedule.timezone
        zone = schedule_rules.check_timezone(timezone or "UTC")
        timing_changed = draft.cron_expression is not None or draft.timezone is not None
        if timing_changed:
            schedule_rules.check_interval(cron, zone, now, self._min_interval)
            changes.update(cron_expression=cron, timezone=zone.key)
            if schedule.status == ACTIVE:
                changes["next_run_at"] = schedule_rules.next_tick(cron, zone, now)
        if draft.max_budget_per_run_usd is not None:
            changes["max_budget_per_run_usd"] = schedule_rules.check_budget(draft.max_budget_per_run_usd)
        if (
            draft.task_query is not None
            or draft.task_context_json is not None
            or draft.timeout_seconds is not None
        ):
            context_json = (
                draft.task_context_json
                if draft.task_context_json is not None
                else json.dumps(schedule.task_context)
            )
            task = _task_fields(
                draft.task_query if draft.task_query is not None else schedule.task_query,
                context_json,
                draft.timeout_seconds if draft.timeout_seconds is not None else schedule.timeout_seconds,
            )
            changes.update(
                task_query=task.query, task_context=task.context, timeout_seconds=task.timeout_seconds
            )
        return dataclasses.replace(schedule, **changes)


def following_tick(schedule: ScheduleRecord, now: datetime.datetime) -> datetime.datetime:
    """Return the tick a schedule waits for next, from its due run (if any) or from now.

    The stored expression and zone are checked again (an expression stored by an earlier version
    may use a random token; a zone may leave the time zone database): InvalidArgumentError when
    they no longer pass, or when no tick can be computed.
    """
    expression = schedule_rules.check_cron(schedule.cron_expression)
    zone = schedule_rules.check_timezone(schedule.timezone)
    if schedule.next_run_at is None:
        return schedule_rules.next_tick(expression, zone, now)
    return schedule_rules.next_after_due(expression, zone, schedule.next_run_at, now)


def run_task(schedule: ScheduleRecord, task_id: str) -> NewTask:
    """Return the task a run of the schedule starts: its owner's, in a new session of its own."""
    options: dict[str, Any] = {"model_tier": "small", "require_approval": False}
    if schedule.timeout_seconds:
        options["timeout_seconds"] = schedule.timeout_seconds
    if schedule.max_budget_per_run_usd is not None:
        options["max_budget_usd"] = schedule.max_budget_per_run_usd
    options["schedule_id"] = schedule.schedule_id
    return NewTask(
        task_id=task_id,
        user_id=schedule.user_id,
        tenant_id=schedule.tenant_id,
        session_id=new_session_id(),
        query=schedule.task_query,
        mode="standard",
        context=schedule.task_context,
        options=options,
    )


def _reason(reason: str) -> str:
    text = reason.strip()
    if len(text) > MAX_REASON_CHARACTERS:
        raise InvalidArgumentError("reason", f"reason must be at most {MAX_REASON_CHARACTERS} characters")
    return text
