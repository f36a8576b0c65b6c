"""The values the store reads and writes: users, API keys, sessions, tasks."""

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
class UserRecord:
    """A user; every user belongs to one tenant."""

    id: str
    tenant_id: str
    email: str
    username: str
    role: str
    tier: str
    created_at: datetime.datetime
    # The display name given at registration.
    name: str = ""


@dataclasses.dataclass(frozen=True)
class ApiKeyRecord:
    """A stored API key: its lookup prefix and hash, never the key itself."""

    id: str
    user_id: str
    tenant_id: str
    name: str
    key_prefix: str
    key_hash: str
    created_at: datetime.datetime
    last_used_at: datetime.datetime | None = None
    expires_at: datetime.datetime | None = None
    revoked_at: datetime.datetime | None = None
    description: str = ""
    scopes: tuple[str, ...] = ()
    # Overrides of the tier's limits an admin set on this key; None: the tier's.
    rate_limit_per_minute: int | None = None
    rate_limit_per_hour: int | None = None

    def is_usable(self, now: datetime.datetime) -> bool:
        """Whether the key is neither revoked nor expired at ``now``."""
        if self.revoked_at is not None:
            return False
        return self.expires_at is None or self.expires_at > now


@dataclasses.dataclass(frozen=True)
class SessionRecord:
    """A conversation: the tasks submitted with the same session id, and what they consumed."""

    id: str
    user_id: str
    tenant_id: str
    title: str
    tokens_used: int
    cost_usd: float
    task_count: int
    created_at: datetime.datetime
    updated_at: datetime.datetime
    deleted_at: datetime.datetime | None = None
    # No budget when None; otherwise tasks stop being accepted once tokens_used reaches it.
    token_budget: int | None = None
    # The context of the task that started the session.
    context: dict[str, Any] = dataclasses.field(default_factory=dict)
    # When a task of the session was last submitted or changed status.
    last_activity_at: datetime.datetime | None = None

    @property
    def budget_exhausted(self) -> bool:
        """Whether the session has a token budget and has used all of it."""
        return self.token_budget is not None and self.tokens_used >= self.token_budget


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


# Task control: what the owner asked of a task (records of the transitions are at the end).


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

    @property
    def workflow_id(self) -> str:
        """The workflow id, which is the task id."""
        return self.task_id


@dataclasses.dataclass(frozen=True)
class TaskOutcome:
    """How a task ended: the terminal status and what the run produced."""

    status: TaskStatus
    result: str = ""
    error: str = ""
    usage: TokenUsage = TokenUsage()
    model_used: str = ""
    provider: str = ""


# Sessions.

# A session's successful tasks completed; its failed ones failed or timed out. Cancelled tasks are
# neither: stopping one was the user's choice.
SUCCESSFUL_STATUSES = (TaskStatus.COMPLETED,)
FAILED_STATUSES = (TaskStatus.FAILED, TaskStatus.TIMEOUT)


@dataclasses.dataclass(frozen=True)
class SessionSummary:
    """A session with the aggregates of its tasks, as the session list shows it."""

    session: SessionRecord
    successful_tasks: int = 0
    failed_tasks: int = 0
    latest_task_query: str = ""
    latest_task_status: TaskStatus | None = None


@dataclasses.dataclass(frozen=True)
class SearchHit:
    """A task whose query or result matched a full-text search, with the matching passage."""

    task_id: str
    session_id: str
    snippet: str
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class UsageStats:
    """What a user's tasks and sessions amounted to over a window of time."""

    tasks_by_status: dict[TaskStatus, int]
    sessions_total: int
    sessions_active: int
    usage: TokenUsage


# Task control: the compare-and-set transitions of a task's status and control state.


@dataclasses.dataclass(frozen=True)
class TaskGuard:
    """What a task must still look like for a transition to apply."""

    status: TaskStatus
    claimed_by: str | None
    pause_requested: bool
    cancel_requested: bool

    @classmethod
    def of(cls, task: TaskRecord) -> "TaskGuard":
        """Return the guard that holds as long as the task is as it was read."""
        return cls(task.status, task.claimed_by, task.control.pause_requested, task.control.cancel_requested)


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
