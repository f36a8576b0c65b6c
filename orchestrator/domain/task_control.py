"""The task-control rules: what pause, resume and cancel do in each state, and how a task whose
runner is gone is recovered. Pure: each rule reads a task and returns the transition to apply.

Who changes a task's status writes the events that record the change. A task with no runner
(QUEUED, or PAUSED: a paused task is "parked", no worker holds it or its slot) is changed here,
with its events, in one guarded store transaction. A task that is running is only *asked*: the
request is stored in its control state, and its runner acts on it: a pause at its next checkpoint
(the runner parks the task there), a cancel at once (see ``orchestrator.engine.run_control``).
"""

import dataclasses
import datetime
import enum

from orchestrator import events
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.errors import TaskStateError

FINISHED_MESSAGE = "Task has already finished"
ALREADY_PAUSED_MESSAGE = "Task is already paused"
NOT_PAUSED_MESSAGE = "Task is not paused"
CANCELLING_MESSAGE = "Task is being cancelled"

PAUSED_MESSAGE = "Task paused"
PAUSE_REQUESTED_MESSAGE = "Pause requested; the task pauses at its next checkpoint"
RESUMED_MESSAGE = "Task resumed"
CANCELLED_MESSAGE = "Task cancelled"
CANCEL_REQUESTED_MESSAGE = "Cancellation requested; the task stops at its next checkpoint"

CANCELLED_ERROR = "The task was cancelled"
STREAM_END_MESSAGE = "Stream ended"
LOST_REASON = "The replica running the task stopped"
HANDED_OVER_REASON = "The replica running the task was shut down and handed it over"
DEFAULT_MAX_ATTEMPTS = 3


class Interruption(enum.Enum):
    """Why a running task lost its runner: its replica died (lost) or stopped gracefully (handed over)."""

    LOST = LOST_REASON
    HANDED_OVER = HANDED_OVER_REASON


def attempts_exhausted_error(lost_attempts: int) -> str:
    """Return the error of a task that is not resumed again: its replica died in each of its attempts."""
    times = "once" if lost_attempts == 1 else f"{lost_attempts} times"
    return f"The replica running the task stopped {times}; it is not resumed again"


@dataclasses.dataclass(frozen=True)
class ControlRequest:
    """A pause, resume or cancel as the owner asked for it."""

    user_id: str
    reason: str
    at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class ControlDecision:
    """What a control request does.

    ``transition`` is None when nothing needs to change (a repeated cancel). ``notify_runner``:
    the replica running the task must look at its control state again. ``requeued``: the task is
    QUEUED again, so a worker should claim it.
    """

    message: str
    transition: TaskTransition | None = None
    notify_runner: bool = False
    requeued: bool = False


def decide_pause(task: TaskRecord, request: ControlRequest) -> ControlDecision:
    """Pause a queued task at once, or ask a running one to pause at its next checkpoint."""
    control = task.control
    _require_unfinished(task)
    if control.cancel_requested:
        raise TaskStateError(CANCELLING_MESSAGE)
    if task.status == TaskStatus.PAUSED or control.pause_requested:
        raise TaskStateError(ALREADY_PAUSED_MESSAGE)
    paused = dataclasses.replace(
        control,
        pause_requested=True,
        paused_at=request.at,
        pause_reason=request.reason,
        paused_by=request.user_id,
    )
    guard = TaskGuard.of(task)
    if task.status == TaskStatus.QUEUED:
        transition = TaskTransition(guard, paused, status=TaskStatus.PAUSED, events=(paused_event(paused),))
        return ControlDecision(PAUSED_MESSAGE, transition)
    return ControlDecision(PAUSE_REQUESTED_MESSAGE, TaskTransition(guard, paused), notify_runner=True)


def decide_resume(task: TaskRecord, request: ControlRequest) -> ControlDecision:
    """Resume a paused task, or withdraw a pause its runner has not reached yet."""
    control = task.control
    _require_unfinished(task)
    if control.cancel_requested:
        raise TaskStateError(CANCELLING_MESSAGE)
    if not control.pause_requested:
        raise TaskStateError(NOT_PAUSED_MESSAGE)
    resumed = _without_pause(control)
    guard = TaskGuard.of(task)
    if task.status == TaskStatus.RUNNING:
        return ControlDecision(RESUMED_MESSAGE, TaskTransition(guard, resumed), notify_runner=True)
    # Parked (no runner holds a paused task): a worker claims it again and, if it had started, it
    # continues from its last checkpoint. A paused task a worker still claims is one whose runner
    # has gone (a replica of an earlier version held its paused tasks); it is released the same way.
    event = resumed_event(request, task)
    transition = TaskTransition(guard, resumed, status=TaskStatus.QUEUED, release=True, events=(event,))
    return ControlDecision(RESUMED_MESSAGE, transition, requeued=True)


def decide_cancel(task: TaskRecord, request: ControlRequest) -> ControlDecision:
    """Cancel a task without a runner at once, or ask a running or held one to stop."""
    control = task.control
    _require_unfinished(task)
    if control.cancel_requested:
        return ControlDecision(CANCEL_REQUESTED_MESSAGE)
    cancelled = dataclasses.replace(
        control, cancel_requested=True, cancel_reason=request.reason, cancelled_by=request.user_id
    )
    guard = TaskGuard.of(task)
    if task.status == TaskStatus.QUEUED or _is_parked(task):
        transition = TaskTransition(
            guard,
            cancelled,
            status=TaskStatus.CANCELLED,
            error=CANCELLED_ERROR,
            events=(cancelled_event(cancelled), stream_end_event()),
        )
        return ControlDecision(CANCELLED_MESSAGE, transition)
    return ControlDecision(CANCEL_REQUESTED_MESSAGE, TaskTransition(guard, cancelled), notify_runner=True)


def recovery_transition(
    task: TaskRecord,
    interruption: Interruption,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    checkpoint_seq: int = 0,
) -> TaskTransition:
    """Resume, park or end a RUNNING or PAUSED task whose runner is gone, honouring its control state.

    A task asked to cancel ends CANCELLED; a task paused (or asked to pause) is parked PAUSED, to
    continue from its last checkpoint when resumed. Any other is queued again as its next attempt,
    recording WORKFLOW_RESUMED, to continue from its last checkpoint on any replica; but a task
    whose replica died in ``max_attempts`` attempts ends FAILED instead (it may be what kills them).
    A graceful hand-over is not counted against that limit. ``checkpoint_seq`` is the seq of the
    event that ended the step of the task's last checkpoint (0: none), which the resume names.
    """
    control = task.control
    guard = TaskGuard.of(task)
    if control.cancel_requested:
        return TaskTransition(
            guard,
            control,
            status=TaskStatus.CANCELLED,
            error=CANCELLED_ERROR,
            events=(cancelled_event(control), stream_end_event()),
        )
    if task.status == TaskStatus.PAUSED:
        return TaskTransition(guard, control, release=True)
    if control.pause_requested:
        return TaskTransition(
            guard, control, status=TaskStatus.PAUSED, release=True, events=(paused_event(control),)
        )
    lost_attempts = task.lost_attempts + (1 if interruption is Interruption.LOST else 0)
    if lost_attempts >= max_attempts:
        error = attempts_exhausted_error(lost_attempts)
        return TaskTransition(
            guard,
            control,
            status=TaskStatus.FAILED,
            error=error,
            events=(
                NewEvent(events.WORKFLOW_FAILED, error, {"error": error, "attempt": task.attempt}),
                stream_end_event(),
            ),
        )
    attempt = task.attempt + 1
    resumed = NewEvent(
        events.WORKFLOW_RESUMED,
        f"Workflow resumes from its last checkpoint as attempt {attempt}",
        {
            "attempt": attempt,
            "checkpoint_seq": checkpoint_seq,
            "reason": interruption.value,
            "resumed_by": "",
        },
    )
    return TaskTransition(
        guard,
        control,
        status=TaskStatus.QUEUED,
        release=True,
        attempt=attempt,
        lost_attempts=lost_attempts,
        events=(resumed,),
    )


def visible_control_state(task: TaskRecord) -> ControlState:
    """Return the control state as the owner sees it: a finished task is no longer paused."""
    control = task.control
    if task.status.is_terminal and control.pause_requested:
        return _without_pause(control)
    return control


def paused_event(control: ControlState) -> NewEvent:
    """Return the WORKFLOW_PAUSED event of a pause."""
    return NewEvent(
        events.WORKFLOW_PAUSED,
        "Workflow paused",
        {"reason": control.pause_reason, "paused_by": control.paused_by},
    )


def resumed_event(request: ControlRequest, task: TaskRecord) -> NewEvent:
    """Return the WORKFLOW_RESUMED event of a resume; a task that had started goes on from its checkpoint."""
    started = task.started_at is not None
    message = "Workflow resumed; it continues from its last checkpoint" if started else "Workflow resumed"
    payload = {
        "reason": request.reason,
        "resumed_by": request.user_id,
        "attempt": task.attempt,
    }
    return NewEvent(events.WORKFLOW_RESUMED, message, payload)


def cancelled_event(control: ControlState) -> NewEvent:
    """Return the WORKFLOW_CANCELLED event of a cancellation."""
    return NewEvent(
        events.WORKFLOW_CANCELLED,
        "Workflow cancelled",
        {"reason": control.cancel_reason, "cancelled_by": control.cancelled_by},
    )


def stream_end_event() -> NewEvent:
    """Return the STREAM_END event that follows a terminal one."""
    return NewEvent(events.STREAM_END, STREAM_END_MESSAGE)


def _require_unfinished(task: TaskRecord) -> None:
    if task.status.is_terminal:
        raise TaskStateError(FINISHED_MESSAGE)


def _without_pause(control: ControlState) -> ControlState:
    return dataclasses.replace(control, pause_requested=False, paused_at=None, pause_reason="", paused_by="")


def _is_parked(task: TaskRecord) -> bool:
    # A RUNNING task no worker holds waits for an approval (orchestrator.engine.approvals).
    return task.status in (TaskStatus.PAUSED, TaskStatus.RUNNING) and task.claimed_by is None
