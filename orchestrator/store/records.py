"""The values the store reads and writes: users, API keys, sessions, tasks."""

import dataclasses
import datetime
import enum
from typing import Any


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
