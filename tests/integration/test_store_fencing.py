"""Ending a task is one compare-and-set on its claim, committed with its events: on both databases.

A worker whose lease was taken over must never overwrite the outcome the new holder recorded, and
no task may end without its STREAM_END, whatever fails between the writes.
"""

import asyncio

import pytest

from orchestrator import events
from orchestrator.domain.task_control import Interruption
from orchestrator.domain.task_control import recovery_transition
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import SavedCheckpoint
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event
from tests.integration.store_fixtures import approval
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

EXPIRED = -1.0
LEASE = 300.0
COMPLETED_EVENTS = (NewEvent(events.WORKFLOW_COMPLETED, "Workflow completed"), stream_end_event())

# A STREAM_END that cannot be written stands in for a crash between the status and its events.
FAIL_STREAM_END = {
    "sqlite": [
        "CREATE TRIGGER fail_stream_end BEFORE INSERT ON events WHEN NEW.type = 'STREAM_END'"
        " BEGIN SELECT RAISE(ABORT, 'the process died here'); END"
    ],
    "postgres": [
        "CREATE FUNCTION fail_stream_end() RETURNS trigger LANGUAGE plpgsql AS"
        " $body$ BEGIN RAISE EXCEPTION 'the process died here'; END $body$",
        "CREATE TRIGGER fail_stream_end BEFORE INSERT ON events FOR EACH ROW"
        " WHEN (NEW.type = 'STREAM_END') EXECUTE FUNCTION fail_stream_end()",
    ],
}
ALLOW_STREAM_END = {
    "sqlite": ["DROP TRIGGER fail_stream_end"],
    "postgres": ["DROP TRIGGER fail_stream_end ON events", "DROP FUNCTION fail_stream_end()"],
}


async def queued_task(store, task_id: str = "task-1") -> None:
    await store.create_task(
        NewTask(task_id, "user-1", "tenant-1", "session-1", "What is 2+2?", "simple", {}, {})
    )


async def event_types(store, task_id: str = "task-1") -> list[str]:
    return [event.type for event in await store.list_events(task_id)]


def test_a_late_finisher_that_lost_its_claim_records_nothing(database_url):

    async def scenario(store):
        await queued_task(store)
        first = await store.claim_next("replica-a", EXPIRED)
        [taken] = await store.take_over_expired_leases("replica-b", LEASE, limit=10)
        assert (taken.claimed_by, taken.claim_epoch) == ("replica-b", first.claim_epoch + 1)
        assert (
            await store.transition_task(taken.task_id, recovery_transition(taken, Interruption.LOST))
            is not None
        )

        usage = TokenUsage(100, 50, 0.01)
        late = TaskOutcome(TaskStatus.COMPLETED, "4", usage=usage)
        assert await store.finish_task(first.task_id, first.claim, late, COMPLETED_EVENTS) is None

        task = await store.get_task("task-1", "user-1")
        assert (task.status, task.result, task.usage) == (TaskStatus.QUEUED, "", TokenUsage())
        assert await event_types(store) == [events.WORKFLOW_RESUMED]
        assert (await store.get_session("session-1", "user-1")).tokens_used == 0

    run(database_url, scenario)


def test_a_worker_that_takes_its_own_expired_task_over_fences_its_earlier_claim(database_url):

    async def scenario(store):
        await queued_task(store)
        first = await store.claim_next("replica-a", EXPIRED)
        [again] = await store.take_over_expired_leases("replica-a", LEASE, limit=10)
        outcome = TaskOutcome(TaskStatus.COMPLETED, "4")
        assert await store.finish_task(first.task_id, first.claim, outcome, COMPLETED_EVENTS) is None
        assert (
            await store.transition_task(first.task_id, recovery_transition(first, Interruption.LOST)) is None
        )
        asked = approval("approval-1", first)
        assert await store.park_for_approval(asked, first.claim, 1.0, NewEvent("APPROVAL_REQUESTED")) is None

        stored = await store.finish_task(again.task_id, again.claim, outcome, COMPLETED_EVENTS)
        assert [(event.seq, event.type) for event in stored] == [
            (1, events.WORKFLOW_COMPLETED),
            (2, events.STREAM_END),
        ]
        task = await store.get_task("task-1", "user-1")
        assert (task.status, task.result, task.progress) == (TaskStatus.COMPLETED, "4", 1.0)
        assert await store.finish_task(again.task_id, again.claim, outcome, COMPLETED_EVENTS) is None

    run(database_url, scenario)


def test_a_finish_by_a_claim_that_never_held_the_task_changes_nothing(database_url):

    async def scenario(store):
        await queued_task(store)
        held = await store.claim_next("replica-a", LEASE)
        outcome = TaskOutcome(TaskStatus.COMPLETED, "4")
        for stranger in (Claim("replica-b", held.claim_epoch), Claim("replica-a", held.claim_epoch + 1)):
            assert await store.finish_task(held.task_id, stranger, outcome, COMPLETED_EVENTS) is None
        assert (await store.get_task("task-1", "user-1")).status == TaskStatus.RUNNING
        assert await event_types(store) == []

    run(database_url, scenario)


def test_no_task_ends_without_its_stream_end_whatever_fails_between_the_writes(database_url):
    name = "sqlite" if database_url.startswith("sqlite") else "postgres"

    async def scenario(store):
        await queued_task(store)
        held = await store.claim_next("replica-a", LEASE)
        outcome = TaskOutcome(TaskStatus.COMPLETED, "4", usage=TokenUsage(10, 5, 0.001))
        for statement in FAIL_STREAM_END[name]:
            await store.database.execute(statement)
        with pytest.raises(Exception, match="the process died here"):
            await store.finish_task(held.task_id, held.claim, outcome, COMPLETED_EVENTS)

        task = await store.get_task("task-1", "user-1")
        assert (task.status, task.completed_at, task.usage) == (TaskStatus.RUNNING, None, TokenUsage())
        assert await event_types(store) == []
        assert (await store.get_session("session-1", "user-1")).tokens_used == 0

        for statement in ALLOW_STREAM_END[name]:
            await store.database.execute(statement)
        stored = await store.finish_task(held.task_id, held.claim, outcome, COMPLETED_EVENTS)
        assert [event.type for event in stored] == [events.WORKFLOW_COMPLETED, events.STREAM_END]
        assert (await store.get_task("task-1", "user-1")).status == TaskStatus.COMPLETED
        assert (await store.get_session("session-1", "user-1")).tokens_used == 15

    run(database_url, scenario)


def test_parallel_finishers_of_one_task_record_one_outcome(database_url):

    async def scenario(store):
        await queued_task(store)
        held = await store.claim_next("replica-a", LEASE)
        outcomes = [TaskOutcome(TaskStatus.COMPLETED, str(number)) for number in range(8)]
        results = await asyncio.gather(
            *(store.finish_task(held.task_id, held.claim, outcome, COMPLETED_EVENTS) for outcome in outcomes),
            return_exceptions=True,
        )
        assert sum(isinstance(result, list) for result in results) == 1
        assert await event_types(store) == [events.WORKFLOW_COMPLETED, events.STREAM_END]

    run(database_url, scenario)


def test_a_step_is_stored_with_its_checkpoint_only_while_the_claim_holds(database_url):

    async def scenario(store):
        assert await store.last_checkpoint("task-1") is None
        await queued_task(store)
        first = await store.claim_next("replica-a", EXPIRED)
        step = Event("task-1", 1, "AGENT_STARTED")
        assert await store.record_step(step, first.claim, Checkpoint({"step": 1}, 0.5))
        plain = Event("task-1", 2, "LLM_PARTIAL")
        await store.append_event(plain)
        assert await store.last_checkpoint("task-1") == SavedCheckpoint({"step": 1}, 0.5, seq=1)

        # Another replica takes the task over: the first worker's next step is not written at all.
        [taken] = await store.take_over_expired_leases("replica-b", LEASE, limit=10)
        late = Event("task-1", 3, "AGENT_THINKING")
        assert not await store.record_step(late, first.claim, Checkpoint({"step": 2}, 1.0))
        assert await event_types(store) == ["AGENT_STARTED", "LLM_PARTIAL"]
        assert await store.record_step(late, taken.claim, Checkpoint({"step": 2}, 1.5))
        assert await store.last_checkpoint("task-1") == SavedCheckpoint({"step": 2}, 1.5, seq=3)

        # A task no worker runs (parked, queued again, finished) takes no step either.
        requeued = recovery_transition(taken, Interruption.HANDED_OVER, checkpoint_seq=3)
        assert await store.transition_task("task-1", requeued) is not None
        assert not await store.record_step(Event("task-1", 5, "X"), taken.claim, Checkpoint({}, 2.0))
        task = await store.get_task("task-1", "user-1")
        assert (task.status, task.attempt, task.lost_attempts) == (TaskStatus.QUEUED, 2, 0)

    run(database_url, scenario)
