"""The task engine: what the servicers ask of the orchestrator, every call scoped to the caller."""

from collections.abc import Callable

from orchestrator.bus import EventBus
from orchestrator.caller import Caller
from orchestrator.control_signals import ControlSignals
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.task_control import ControlDecision
from orchestrator.domain.task_control import ControlRequest
from orchestrator.domain.task_control import decide_cancel
from orchestrator.domain.task_control import decide_pause
from orchestrator.domain.task_control import decide_resume
from orchestrator.domain.task_control import visible_control_state
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskFilter
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.turns import DEFAULT_MULTITASK_STRATEGY
from orchestrator.domain.turns import MULTITASK_OPTION
from orchestrator.engine.approvals import pending_approval
from orchestrator.engine.budgets import BudgetEngine
from orchestrator.engine.continuation import session_token_budget
from orchestrator.engine.recorder import apply_transition
from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.engine.timeline import Timeline
from orchestrator.engine.timeline import summarise_timeline
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import TaskNotFoundError
from orchestrator.errors import TaskStateError
from orchestrator.events import Event
from orchestrator.identifiers import new_session_id
from orchestrator.identifiers import new_task_id
from orchestrator.store.base import Store
from orchestrator.streaming import WorkflowStreams
from taskgate.rfc3339 import utc_now
from taskgate.task_rules import MAX_REASON_CHARACTERS

# A control request re-reads the task and decides again when the task changed under it; more
# attempts than this means it keeps changing, and the caller is told to try again.
CONTROL_ATTEMPTS = 5
CHANGED_MESSAGE = "Task changed while the request was applied; try again"
TIMELINE_PAGE_SIZE = 500


class TaskEngine:
    """Submits, reads and follows tasks; another user's task is reported exactly like a missing one."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        wake_workers: Callable[[], None],
        stream_buffer: int,
        signals: ControlSignals,
        budgets: BudgetEngine,
    ) -> None:
        self._store = store
        self._budgets = budgets
        self._bus = bus
        self._wake_workers = wake_workers
        # The workflows' owners and events, as the admin app's and StreamEvents' streams read them.
        self.streams = WorkflowStreams(store, bus, stream_buffer)
        self._signals = signals

    async def submit(self, caller: Caller, submission: TaskSubmission) -> TaskRecord:
        """Check a task and the caller's budgets, and queue it as the next turn of its session."""
        valid = validate_submission(submission)
        token_budget = session_token_budget(submission.token_budget, valid.context)
        await self._budgets.admit(caller)
        return await self.submit_turn(
            NewTask(
                task_id=new_task_id(),
                user_id=caller.user_id,
                tenant_id=caller.tenant_id,
                session_id=valid.session_id or new_session_id(),
                query=valid.query,
                mode=valid.mode,
                context=valid.context,
                options=valid.options,
                session_token_budget=token_budget,
                multitask_strategy=valid.options.get(MULTITASK_OPTION, DEFAULT_MULTITASK_STRATEGY),
                api_key_id=caller.api_key_id,
            )
        )

    async def submit_turn(self, task: NewTask) -> TaskRecord:
        """Store a checked task as its session's next turn, then carry out what its strategy did there.

        The store cancelled the session's active turns in the task's own transaction (``interrupt``,
        ``rollback``): the events of those it ended are published now, and the replicas running the
        others are told, so their runners stop at once. The workers are woken for the new task.
        """
        submitted = await self._store.create_task(task)
        for event in submitted.ended_events:
            await self._bus.publish(event)
        for task_id in submitted.interrupted_runs:
            await self._signals.notify(task_id)
        self._wake_workers()
        return submitted.task

    async def get_task(self, caller: Caller, task_id: str) -> TaskRecord:
        """Return one of the caller's tasks; raise TaskNotFoundError otherwise."""
        task = await self._store.get_task(task_id, caller.user_id)
        if task is None:
            raise TaskNotFoundError()
        return task

    async def pending_approval(self, task: TaskRecord) -> ApprovalRecord | None:
        """Return the approval one of the caller's tasks (read with ``get_task``) waits for, if any."""
        return await pending_approval(self._store, task)

    async def list_tasks(
        self, caller: Caller, which: TaskFilter, limit: int, offset: int
    ) -> tuple[list[TaskRecord], int]:
        """Return one page of the caller's tasks, newest first, and the total matching."""
        return await self._store.list_tasks(caller.user_id, which, limit, offset)

    async def list_events(
        self, caller: Caller, workflow_id: str, limit: int, offset: int
    ) -> tuple[list[Event], int]:
        """Return one page of a workflow's stored events in seq order, and how many it has."""
        await self.require_workflow(caller, workflow_id)
        page = await self._store.list_events(workflow_id, limit=limit, offset=offset)
        return page, await self._store.count_events(workflow_id)

    async def require_workflow(self, caller: Caller, workflow_id: str) -> None:
        """Raise TaskNotFoundError unless the workflow exists and is the caller's."""
        await self.streams.require_workflow(caller, workflow_id)

    # Task control.

    async def pause(self, caller: Caller, task_id: str, reason: str) -> str:
        """Pause a queued task at once, or ask a running one to pause at its next checkpoint."""
        return await self._control(caller, task_id, reason, decide_pause)

    async def resume(self, caller: Caller, task_id: str, reason: str) -> str:
        """Resume a paused task (or withdraw a pause not reached yet); return the answer's message."""
        return await self._control(caller, task_id, reason, decide_resume)

    async def cancel(self, caller: Caller, task_id: str, reason: str) -> str:
        """Cancel a task without a runner at once, or ask its runner to stop; return the message."""
        return await self._control(caller, task_id, reason, decide_cancel)

    async def control_state(self, caller: Caller, task_id: str) -> ControlState:
        """Return whether one of the caller's tasks is paused or cancelled, by whom and why."""
        return visible_control_state(await self.get_task(caller, task_id))

    async def timeline(self, caller: Caller, workflow_id: str) -> Timeline:
        """Return one of the caller's workflows' events summarised, with their statistics."""
        await self.require_workflow(caller, workflow_id)
        workflow_events: list[Event] = []
        while True:
            after_seq = workflow_events[-1].seq if workflow_events else 0
            page = await self._store.list_events(workflow_id, after_seq=after_seq, limit=TIMELINE_PAGE_SIZE)
            workflow_events.extend(page)
            if len(page) < TIMELINE_PAGE_SIZE:
                return summarise_timeline(workflow_id, workflow_events)

    async def _control(
        self,
        caller: Caller,
        task_id: str,
        reason: str,
        decide: Callable[[TaskRecord, ControlRequest], ControlDecision],
    ) -> str:
        """Decide on a control request and apply it, stored before it is acknowledged; return the message."""
        reason = reason.strip()
        if len(reason) > MAX_REASON_CHARACTERS:
            raise InvalidArgumentError("reason", f"reason must be at most {MAX_REASON_CHARACTERS} characters")
        for _ in range(CONTROL_ATTEMPTS):
            task = await self.get_task(caller, task_id)
            decision = decide(task, ControlRequest(caller.user_id, reason, utc_now()))
            if decision.transition is None:
                return decision.message
            if await apply_transition(self._store, self._bus, task.task_id, decision.transition):
                if decision.notify_runner:
                    await self._signals.notify(task.task_id)
                if decision.requeued:
                    self._wake_workers()
                return decision.message
        raise TaskStateError(CHANGED_MESSAGE)
