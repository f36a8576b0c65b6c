"""Sessions: conversations of tasks, their summaries, search hits and usage statistics."""

import dataclasses
import datetime
from typing import Any

from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage


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
        return token_budget_exhausted(self.tokens_used, self.token_budget)


def token_budget_exhausted(tokens_used: int, token_budget: int | None) -> bool:
    """Whether a session with this budget (None: none) takes no more tasks after using these tokens."""
    return token_budget is not None and tokens_used >= token_budget


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
    """What a user's tasks and sessions amounted to over a window of time, and on each UTC day of it.

    ``by_day`` holds the days that had tasks, by the UTC date their tasks were created.
    """

    tasks_by_status: dict[TaskStatus, int]
    sessions_total: int
    sessions_active: int
    usage: TokenUsage
    by_day: tuple["DayUsage", ...] = ()


@dataclasses.dataclass(frozen=True)
class DayUsage:
    """The tasks created on one UTC day (``date``: YYYY-MM-DD) and what they used."""

    date: str
    tasks: int
    usage: TokenUsage
