"""Records of schedules and their runs, as the store keeps them."""

import dataclasses
import datetime
from typing import Any

from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskRecord

ACTIVE = "ACTIVE"
PAUSED = "PAUSED"


@dataclasses.dataclass(frozen=True)
class ScheduleRecord:
    """A schedule as stored; the run counts are read from its runs' tasks."""

    schedule_id: str
    user_id: str
    tenant_id: str
    name: str
    description: str
    cron_expression: str
    timezone: str
    task_query: str
    task_context: dict[str, Any]
    max_budget_per_run_usd: float | None
    timeout_seconds: int | None
    status: str
    created_at: datetime.datetime
    updated_at: datetime.datetime
    next_run_at: datetime.datetime | None
    last_run_at: datetime.datetime | None = None
    paused_at: datetime.datetime | None = None
    pause_reason: str = ""
    total_runs: int = 0
    successful_runs: int = 0
    failed_runs: int = 0


@dataclasses.dataclass(frozen=True)
class ScheduleRun:
    """One task a schedule started, with the task itself (None until the task is stored)."""

    task_id: str
    scheduled_for: datetime.datetime
    triggered_at: datetime.datetime
    manual: bool
    task: TaskRecord | None


@dataclasses.dataclass(frozen=True)
class RunClaim:
    """A replica's claim of a schedule's due run: the task the run starts, and when the next run is."""

    schedule_id: str
    # When the run was due: the schedule's next_run_at as the replica read it.
    due: datetime.datetime
    # The run after it, which becomes the schedule's next_run_at.
    next_run_at: datetime.datetime
    # Stored with the claim, in a session of its own.
    task: NewTask
    triggered_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class UnconfirmedRun:
    """A run claimed by an earlier version and not marked as having its task stored, and whether it is there.

    Runs are now stored with their task; only a replica of a version before migration 0012 (during
    a rolling upgrade, or one that stopped between its two writes) leaves such a run.
    """

    task_id: str
    schedule_id: str
    user_id: str
    task_stored: bool
