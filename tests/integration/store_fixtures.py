"""What the store contract tests share: both databases, a scenario runner, a clock, record builders.

The contract tests (``test_store_*.py``) reach the store only through ``open_store`` and the
``Store`` interface, so that the store can be rewritten under them. A test module takes the
fixtures with ``from tests.integration.store_fixtures import database_url as database_url``: the
redundant alias marks a name imported for pytest to find, not for the module's code.
"""

import asyncio
import dataclasses
import datetime
import types
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import pytest

import taskgate.rfc3339
from orchestrator import events
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.schedules import ACTIVE
from orchestrator.domain.schedules import ScheduleRecord
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskRecord
from orchestrator.events import Event
from orchestrator.store import Store
from orchestrator.store import open_store
from taskgate.rfc3339 import utc_now

Scenario = Callable[[Store], Awaitable[None]]

# A fixed, whole-second instant for the records whose times the caller chooses (schedules, approvals).
BASE = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)


@dataclasses.dataclass(frozen=True)
class Owner:
    """A user as the orchestrator's callers name one: the store needs no users row for tasks."""

    user_id: str
    tenant_id: str


ALICE = Owner("user-alice", "tenant-alice")
BOB = Owner("user-bob", "tenant-bob")


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path) -> str:
    """An empty database of each kind: a SQLite file, then a new database on the session's PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("postgres_server").create_database()


def run(database_url: str, scenario: Scenario, **store_options: Any) -> None:
    """Open and migrate the store of ``database_url`` (with ``store_options``), run the scenario, close it."""

    async def main() -> None:
        store = await open_store(database_url, **store_options)
        try:
            await store.migrate()
            await scenario(store)
        finally:
            await store.close()

    asyncio.run(main())


class FrozenClock:
    """The instant ``taskgate.rfc3339.utc_now()`` returns while the ``frozen_clock`` fixture is active."""

    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def advance(self, seconds: float) -> None:
        """Move the clock on."""
        self.now += datetime.timedelta(seconds=seconds)


@pytest.fixture()
def frozen_clock(monkeypatch) -> FrozenClock:
    """Stop the clock both services read (``taskgate.rfc3339.utc_now``), so records can share an instant.

    Only the times the store takes from that shared clock stop; a database's own clock (PostgreSQL's
    ``now()`` for leases) runs on.
    """
    clock = FrozenClock(utc_now().replace(microsecond=0))

    class FrozenDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return clock.now.astimezone(tz or datetime.UTC)

    monkeypatch.setattr(
        taskgate.rfc3339, "datetime", types.SimpleNamespace(datetime=FrozenDatetime, UTC=datetime.UTC)
    )
    return clock


def new_task(
    task_id: str,
    owner: Owner = ALICE,
    session_id: str = "session-1",
    query: str = "",
    budget: int | None = None,
    context: dict[str, Any] | None = None,
    options: dict[str, Any] | None = None,
) -> NewTask:
    """Return a submission of ``owner``'s (its query, unless given, names the task)."""
    return NewTask(
        task_id=task_id,
        user_id=owner.user_id,
        tenant_id=owner.tenant_id,
        session_id=session_id,
        query=query or f"query of {task_id}",
        mode="standard",
        context=context or {},
        options=options or {},
        session_token_budget=budget,
    )


async def start_task(
    store: Store, task: NewTask, worker: str = "worker-1", lease_seconds: float = 60.0
) -> TaskRecord:
    """Store a task and claim it for ``worker`` (no other task may be QUEUED); return it RUNNING.

    The record returned carries the claim (``.claim``) that ``Store.finish_task`` asks for.
    """
    await store.create_task(task)
    claimed = await store.claim_next(worker, lease_seconds)
    assert claimed is not None and claimed.task_id == task.task_id
    return claimed


def event(
    workflow_id: str,
    seq: int,
    event_type: str = events.AGENT_THINKING,
    message: str = "",
    payload: dict[str, Any] | None = None,
) -> Event:
    """Return an event of a workflow, stamped now."""
    return Event(
        workflow_id=workflow_id,
        seq=seq,
        type=event_type,
        message=message or f"event {seq}",
        payload=payload if payload is not None else {"seq": seq},
        agent_id="agent-1",
    )


def schedule(
    schedule_id: str,
    owner: Owner = ALICE,
    created_at: datetime.datetime = BASE,
    next_run_at: datetime.datetime | None = BASE,
    status: str = ACTIVE,
) -> ScheduleRecord:
    """Return a new schedule of ``owner``'s, hourly, with every optional field set."""
    return ScheduleRecord(
        schedule_id=schedule_id,
        user_id=owner.user_id,
        tenant_id=owner.tenant_id,
        name=f"name of {schedule_id}",
        description="runs every hour",
        cron_expression="0 * * * *",
        timezone="Europe/Paris",
        task_query=f"query of {schedule_id}",
        task_context={"source": "schedule", "depth": 2},
        max_budget_per_run_usd=1.5,
        timeout_seconds=600,
        status=status,
        created_at=created_at,
        updated_at=created_at,
        next_run_at=next_run_at,
    )


def approval(
    approval_id: str,
    task: TaskRecord,
    step: str = "send-email",
    requested_at: datetime.datetime = BASE,
    expires_at: datetime.datetime | None = None,
) -> NewApproval:
    """Return an approval a task asks for at one step; unless given, it expires an hour after asked."""
    return NewApproval(
        approval_id=approval_id,
        task_id=task.task_id,
        user_id=task.user_id,
        tenant_id=task.tenant_id,
        step=step,
        proposed_action={"tool": "email", "to": ["ops@example.com"]},
        reason=f"{step} needs a human",
        requested_at=requested_at,
        expires_at=expires_at or requested_at + datetime.timedelta(hours=1),
    )
