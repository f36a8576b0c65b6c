"""Tasks as the orchestrator knows them: statuses, records, outcomes and the transitions between them."""

import dataclasses
import datetime
import enum
from collections.abc import Sequence
from typing import Any

from orchestrator.events import Event


class TaskStatus(enum.StrEnum):
    """The lifecycle state of a task, spelled exactly as the API spells it."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"

    @property
    def is_terminal(self) -> bool:
        """Whether the task will never change state again."""
        return self in (TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.TIMEOUT)


@dataclasses.dataclass(frozen=True)
class TokenUsage:
    """Tokens and money a task consumed."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def total_tokens(self) -> int:
        """Prompt and completion tokens together."""
        return self.prompt_tokens + self.completion_tokens


@dataclasses.dataclass(frozen=True)
class NewTask:
    """What a submission stores: a validated request and who made it."""

    task_id: str
    user_id: str
    tenant_id: str
    session_id: str
    query: str
    mode: str
    context: dict[str, Any]
    options: dict[str, Any]
    # The token budget of the session, used only when this task starts it.
    session_token_budget: int | None = None
    # What this turn does to the session's turns still active (``orchestrator.domain.turns``):
    # enqueue, reject, interrupt or rollback.
    multitask_strategy: str = "enqueue"
    # The API key it was submitted with ('' for none): its usage counts against that key's budgets.
    api_key_id: str = ""


@dataclasses.dataclass(frozen=True)
class ControlState:
    """What a task's owner has asked of it: a pause, a cancellation, each with who asked and why.

    ``pause_requested`` is set by a pause and cleared by a resume; the task's status tells whether
    its runner has reached the pause yet (RUNNING until its next checkpoint, PAUSED from then on).
    """

    pause_requested: bool = False
    paused_at: datetime.datetime | None = None
    pause_reason: str = ""
    paused_by: str = ""
    cancel_requested: bool = False
    cancel_reason: str = ""
    cancelled_by: str = ""


@dataclasses.dataclass(frozen=True)
class TaskRecord:
    """A task as stored; ``task_id`` is also its workflow id."""

    task_id: str
    user_id: str
    tenant_id: str
    session_id: str
    query: str
    status: TaskStatus
    progress: float
    result: str
    error: str
    mode: str
    context: dict[str, Any]
    options: dict[str, Any]
    model_used: str
    provider: str
    usage: TokenUsage
    created_at: datetime.datetime
    updated_at: datetime.datetime
    started_at: datetime.datetime | None = None
    completed_at: datetime.datetime | None = None
    claimed_by: str | None = None
    lease_expires_at: datetime.datetime | None = None
    control: ControlState = ControlState()
    # Seconds the task ran (paused time excluded) before its current run: what its timeout has used.
    run_seconds: float = 0.0
    # Counts the claims of the task: each claim and each take-over of an expired lease adds one, so
    # a worker that lost its claim can never change the task, even if it claims it again later.
    claim_epoch: int = 0
    # Which run of the task this is (one more after each interruption), and how many runs ended
    # because their replica died: those are what TASKGATE_MAX_ATTEMPTS caps.
    attempt: int = 1
    lost_attempts: int = 0
    # The seq of the task's last event (0: none) as the claim that returned this record read it;
    # None when not read with the record. A run starts its recorder from it without a read of its own.
    last_event_seq: int | None = dataclasses.field(default=None, compare=False)

    @property
    def claim(self) -> "Claim":
        """The claim a worker holds on this task as it was read."""
        return Claim(self.claimed_by or "", self.claim_epoch)

    @property
    def workflow_id(self) -> str:
        """The workflow id, which is the task id."""
        return self.task_id


@dataclasses.dataclass(frozen=True)
class TaskFilter:
    """Which of a user's tasks a list shows: those of one session, of one status, or both (None: any)."""

    session_id: str | None = None
    status: TaskStatus | None = None


@dataclasses.dataclass(frozen=True)
class Claim:
    """Which worker runs a task, and in which of the task's claims (its fencing token)."""

    worker_id: str
    epoch: int


@dataclasses.dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: the terminal status and what the run produced."""

    status: TaskStatus
    result: str = ""
    error: str = ""
    usage: TokenUsage = TokenUsage()
    model_used: str = ""
    provider: str = ""


@dataclasses.dataclass(frozen=True)
class TaskGuard:
    """What a task must still look like for a transition to apply."""

    status: TaskStatus
    claimed_by: str | None
    pause_requested: bool
    cancel_requested: bool
    claim_epoch: int = 0

    @classmethod
    def of(cls, task: TaskRecord) -> "TaskGuard":
        """Return the guard that holds as long as the task is as it was read."""
        control = task.control
        return cls(
            task.status, task.claimed_by, control.pause_requested, control.cancel_requested, task.claim_epoch
        )


@dataclasses.dataclass(frozen=True)
class NewEvent:
    """An event to record with a transition; the store gives it its seq and timestamp."""

    type: str
    message: str = ""
    payload: dict[str, Any] = dataclasses.field(default_factory=dict)
    agent_id: str = ""


def number_events(
    workflow_id: str, last_seq: int, new_events: Sequence[NewEvent], now: datetime.datetime
) -> list[Event]:
    """Return new events of a workflow numbered after ``last_seq``, stamped ``now``."""
    return [
        Event(
            workflow_id=workflow_id,
            seq=last_seq + index,
            type=new_event.type,
            message=new_event.message,
            payload=dict(new_event.payload),
            agent_id=new_event.agent_id,
            timestamp=now,
        )
        for index, new_event in enumerate(new_events, start=1)
    ]


@dataclasses.dataclass(frozen=True)
class TaskTransition:
    """A change of a task's status and control state, and the events that record it.

    It applies only while ``guard`` still describes the task, in one transaction with its events.
    A terminal ``status`` also sets ``completed_at`` and ends the lease; ``release`` ends the claim
    of a task that keeps no runner (parked PAUSED, or QUEUED again). None leaves a field as it is.
    """

    guard: TaskGuard
    control: ControlState
    status: TaskStatus | None = None
    release: bool = False
    run_seconds: float | None = None
    error: str | None = None
    events: tuple[NewEvent, ...] = ()
    # A new attempt of an interrupted task (its number), and the count of attempts lost so far.
    attempt: int | None = None
    lost_attempts: int | None = None


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A runner's state after a finished step, stored with that step's event so neither is repeated.

    ``state`` is the runner's own (JSON); ``run_seconds`` the running time used so far, so a task
    resumed elsewhere keeps what its timeout has used.
    """

    state: dict[str, Any]
    run_seconds: float


@dataclasses.dataclass(frozen=True)
class SavedCheckpoint(Checkpoint):
    """A task's last checkpoint as stored: with the seq of the event that ended its step."""

    seq: int = 0
