"""Approvals (human in the loop): a run asks, the task waits parked, a human (or the clock) decides.

A runner asks with ``RunContext.request_approval(step, action, reason)``. The first time a step
asks, the engine stores the approval, records APPROVAL_REQUESTED and parks the task: it stays
RUNNING, but no worker holds it (``claimed_by`` NULL, no lease), so it costs nothing while it
waits and survives restarts. It waits ``approval_timeout_seconds`` if the task was submitted with
one, else the deployment's default. The decision resolves the approval and moves the task on in one
transaction: approved → QUEUED, and the run resumes from its last checkpoint, which is where it
asked: the same step's ``request_approval`` now returns the decision at once (the approved or
modified action, and the approver's feedback); rejected → FAILED with
the feedback in ``error``; no decision before ``expires_at`` → TIMEOUT, by a periodic sweep on
every replica, where the conditional UPDATE of the approval decides who ends the task.
"""

import asyncio
import dataclasses
import datetime
import json
import logging
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.caller import Caller
from orchestrator.domain.approvals import Action
from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import ApprovalResolution
from orchestrator.domain.approvals import ApprovalStatus
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.approvals import plain_action
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import NotFoundError
from orchestrator.errors import TaskStateError
from orchestrator.events import Event
from orchestrator.runners.base import ApprovedAction
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import RunTask
from orchestrator.store.base import Store
from taskgate.approval_rules import MAX_ACTION_BYTES
from taskgate.approval_rules import MAX_FEEDBACK_CHARACTERS
from taskgate.approval_rules import json_type_name
from taskgate.rfc3339 import format_datetime
from taskgate.rfc3339 import utc_now

logger = logging.getLogger(__name__)

APPROVAL_REQUESTED = "APPROVAL_REQUESTED"
APPROVAL_DECISION = "APPROVAL_DECISION"
#: The step a task submitted with ``require_approval`` asks about before its run does anything.
TASK_STEP = "task"
TASK_REASON = "The task was submitted with require_approval"
DEFAULT_TIMEOUT_SECONDS = 86_400.0
EXPIRY_BATCH = 100
# A task may set its own approval timeout, as short as a second, so the sweep (one indexed query of
# pending approvals past their expiry) runs every second whatever the deployment's default.
MAX_SWEEP_SECONDS = 1.0
MIN_SWEEP_SECONDS = 0.5

APPROVAL_NOT_FOUND = "Approval not found"
ALREADY_DECIDED = "Approval has already been decided"
TASK_FINISHED = "Task has already finished"
APPROVED_MESSAGE = "Approval sent; the task continues"
REJECTED_MESSAGE = "Rejection sent; the task ends"
REJECTED_ERROR = "The proposed action was rejected"


class ApprovalNeeded(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """Raised from ``request_approval`` into the runner: the run ends here and the task waits parked.

    A BaseException, so a runner's ``except Exception`` cannot swallow it.
    """

    def __init__(self, step: str, proposed_action: Mapping[str, Any], reason: str) -> None:
        super().__init__(step)
        self.step = step
        self.proposed_action = dict(proposed_action)
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class Decision:
    """A human's decision on an approval, as the caller sent it (checked)."""

    approved: bool
    decided_by: str
    feedback: str = ""
    modified_action: Action | None = None
    # The API key the decider used; empty for an access token.
    decided_by_api_key_id: str = ""


def task_action(query: str, mode: str) -> dict[str, Any]:
    """Return the action a task submitted with ``require_approval`` proposes: to run its query."""
    return {"action": "run_task", "query": query, "mode": mode}


async def approve_task(ctx: RunContext) -> RunTask:
    """Have a task submitted with ``require_approval`` approved before any runner starts it.

    Returns the task as approved: the approved action's ``query`` (the approver may have changed
    it) replaces the task's, and so does a modified action that is a string (the query to run).
    Until a decision it ends the run here (ApprovalNeeded), so a runner, whichever it is, never
    does anything unapproved. The event that says the approved action is carried out saves the
    first checkpoint (an empty runner state), so a resumed run does not say it again.
    """
    task = ctx.task
    approved = await ctx.request_approval(TASK_STEP, task_action(task.query, task.mode), TASK_REASON)
    if task.checkpoint is None:
        await ctx.emit(
            events.AGENT_THINKING,
            "Carrying out the approved action",
            {
                "approved_action": plain_action(approved.action),
                "modified": approved.modified,
                "feedback": approved.feedback,
            },
            checkpoint={},
        )
    return dataclasses.replace(task, query=approved_query(approved.action, task.query))


def approved_query(action: Action, query: str) -> str:
    """Return the query an approved action asks to answer: its ``query`` if it has a usable one.

    A string is the query itself, as an approver who rewrote the task's request sends it.
    """
    approved = action if isinstance(action, str) else action.get("query")
    return approved if isinstance(approved, str) and approved.strip() else query


def approved_action(approvals: list[ApprovalRecord], step: str) -> ApprovedAction | None:
    """Return the approval of a step (its action as the approver left it); None if not approved."""
    for approval in approvals:
        if approval.step == step and approval.status == ApprovalStatus.APPROVED:
            return ApprovedAction(
                approval.action_to_run, approval.feedback, modified=approval.modified_action is not None
            )
    return None


def parse_modified_action(text: str) -> Action | None:
    """Return a decision's modified action, given as JSON: an object, or a string.

    None when there is none: the text is empty, or it is a string of only blanks (which changes
    nothing). InvalidArgumentError for anything else: text that is not JSON, another JSON type
    (number, list, boolean, null), or more than 64 KiB.
    """
    if not text:
        return None
    if len(text.encode()) > MAX_ACTION_BYTES:
        raise InvalidArgumentError("modified_action", "modified_action must be at most 64 KiB as JSON")
    try:
        value = json.loads(text)
    except ValueError:
        message = "modified_action must be JSON: an object or a string (a string JSON-encoded)"
        raise InvalidArgumentError("modified_action", message) from None
    if isinstance(value, str):
        return value if value.strip() else None
    if not isinstance(value, dict):
        message = f"modified_action must be a JSON object or a string, not {json_type_name(value)}"
        raise InvalidArgumentError("modified_action", message)
    return value


def check_feedback(feedback: str) -> str:
    """Return the feedback trimmed; InvalidArgumentError when it is too long."""
    feedback = feedback.strip()
    if len(feedback) > MAX_FEEDBACK_CHARACTERS:
        message = f"feedback must be at most {MAX_FEEDBACK_CHARACTERS} characters"
        raise InvalidArgumentError("feedback", message)
    return feedback


def requested_event(approval: NewApproval) -> NewEvent:
    """Return the APPROVAL_REQUESTED event of a new approval."""
    return NewEvent(
        APPROVAL_REQUESTED,
        "Waiting for approval",
        {
            "approval_id": approval.approval_id,
            "proposed_action": dict(approval.proposed_action),
            "reason": approval.reason,
            "step": approval.step,
            "expires_at": format_datetime(approval.expires_at),
        },
    )


def decision_resolution(
    approval: ApprovalRecord, decision: Decision, at: datetime.datetime
) -> ApprovalResolution:
    """Return how a decision resolves an approval: approved queues the task again, rejected fails it."""
    payload: dict[str, Any] = {
        "approval_id": approval.approval_id,
        "approved": decision.approved,
        "decided_by": decision.decided_by,
        "decided_by_api_key_id": decision.decided_by_api_key_id,
        "feedback": decision.feedback,
    }
    if decision.modified_action is not None:
        payload["modified_action"] = plain_action(decision.modified_action)
    if decision.approved:
        status, task_status, error = ApprovalStatus.APPROVED, TaskStatus.QUEUED, ""
        decision_events: tuple[NewEvent, ...] = (NewEvent(APPROVAL_DECISION, "Approved", payload),)
    else:
        status, task_status = ApprovalStatus.REJECTED, TaskStatus.FAILED
        error = f"{REJECTED_ERROR}: {decision.feedback}" if decision.feedback else REJECTED_ERROR
        decision_events = (
            NewEvent(APPROVAL_DECISION, "Rejected", payload),
            NewEvent(events.WORKFLOW_FAILED, error, {"error": error}),
            stream_end_event(),
        )
    return ApprovalResolution(
        status=status,
        decided_by=decision.decided_by,
        decided_by_api_key_id=decision.decided_by_api_key_id,
        decided_at=at,
        feedback=decision.feedback,
        modified_action=decision.modified_action,
        task_status=task_status,
        task_error=error,
        events=decision_events,
    )


def expiry_resolution(approval: ApprovalRecord, at: datetime.datetime) -> ApprovalResolution:
    """Return how an approval nobody decided in time resolves: the task ends TIMEOUT."""
    waited = (approval.expires_at - approval.requested_at).total_seconds()
    error = f"No approval decision within {waited:g} seconds"
    return ApprovalResolution(
        status=ApprovalStatus.EXPIRED,
        decided_by="",
        decided_at=at,
        feedback="",
        modified_action=None,
        task_status=TaskStatus.TIMEOUT,
        task_error=error,
        events=(
            NewEvent(
                events.WORKFLOW_TIMEOUT,
                "Workflow timed out waiting for approval",
                {"error": error, "approval_id": approval.approval_id},
            ),
            stream_end_event(),
        ),
    )


def sweep_interval(timeout_seconds: float) -> float:
    """Return how often to look for expired approvals: a quarter of the default timeout, at most a second."""
    return min(MAX_SWEEP_SECONDS, max(MIN_SWEEP_SECONDS, timeout_seconds / 4))


async def park_for_approval(
    store: Store,
    bus: EventBus,
    task: TaskRecord,
    run_seconds: float,
    needed: ApprovalNeeded,
    timeout_seconds: float,
) -> bool:
    """Store the approval a run asked for and park its task; False if its claim no longer holds it."""
    now = utc_now()
    approval = NewApproval(
        approval_id=f"approval-{uuid.uuid4().hex}",
        task_id=task.task_id,
        user_id=task.user_id,
        tenant_id=task.tenant_id,
        step=needed.step,
        proposed_action=needed.proposed_action,
        reason=needed.reason,
        requested_at=now,
        expires_at=now + datetime.timedelta(seconds=timeout_seconds),
    )
    stored = await store.park_for_approval(approval, task.claim, run_seconds, requested_event(approval))
    if stored is None:
        return False
    await _publish(bus, stored)
    return True


async def pending_approval(store: Store, task: TaskRecord) -> ApprovalRecord | None:
    """Return the approval a task waits for, if it waits for one (RUNNING, held by no worker)."""
    if task.status != TaskStatus.RUNNING or task.claimed_by is not None:
        return None
    for approval in await store.list_task_approvals(task.task_id):
        if approval.status == ApprovalStatus.PENDING:
            return approval
    return None


class ApprovalEngine:
    """Lists and decides the caller's approvals, and ends tasks whose approval expired."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        wake_workers: Callable[[], None],
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        self._store = store
        self._bus = bus
        self._wake_workers = wake_workers
        self._timeout_seconds = timeout_seconds

    async def list(
        self, caller: Caller, which: ApprovalFilter, limit: int, offset: int
    ) -> tuple[list[ApprovalRecord], int]:
        """Return one page of the caller's approvals, newest first, and the total."""
        return await self._store.list_approvals(caller.user_id, which, limit, offset)

    async def decide(self, caller: Caller, workflow_id: str, approval_id: str, decision: Decision) -> str:
        """Record a decision on one of the caller's pending approvals; return the answer's message."""
        approval = await self._store.get_approval(approval_id, caller.user_id)
        if approval is None or approval.task_id != workflow_id:
            raise NotFoundError(APPROVAL_NOT_FOUND)
        if approval.status != ApprovalStatus.PENDING:
            raise TaskStateError(ALREADY_DECIDED)
        task = await self._store.get_task(workflow_id, caller.user_id)
        if task is None or task.status.is_terminal:
            raise TaskStateError(TASK_FINISHED)
        resolution = decision_resolution(approval, decision, utc_now())
        stored = await self._store.resolve_approval(approval_id, resolution)
        if stored is None:
            raise TaskStateError(ALREADY_DECIDED)
        await _publish(self._bus, stored)
        if decision.approved:
            self._wake_workers()
            return APPROVED_MESSAGE
        return REJECTED_MESSAGE

    async def expire_due(self) -> int:
        """End the tasks whose approval expired; return how many approvals this replica resolved."""
        now = utc_now()
        resolved = 0
        for approval in await self._store.list_expired_approvals(now, EXPIRY_BATCH):
            resolution = expiry_resolution(approval, now)
            stored = await self._store.resolve_approval(approval.approval_id, resolution)
            if stored is None:
                continue  # another replica, or a decision, resolved it first
            resolved += 1
            await _publish(self._bus, stored)
            logger.info("approval expired", extra={"workflow_id": approval.task_id})
        return resolved

    async def expire_forever(self) -> None:
        """Look for expired approvals every few seconds until cancelled."""
        interval = sweep_interval(self._timeout_seconds)
        while True:
            await asyncio.sleep(interval)
            try:
                await self.expire_due()
            except Exception:
                logger.exception("ending tasks whose approval expired failed")


async def _publish(bus: EventBus, stored: list[Event]) -> None:
    for event in stored:
        await bus.publish(event)
