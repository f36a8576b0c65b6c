"""Workflow events and task control in the store, the same contract on SQLite and on a real PostgreSQL.

Events are stored under the seq they carry and read back in seq order; a guarded transition changes
a task and records its events under the workflow's next seqs, or changes nothing.
"""

import dataclasses

import pytest

from orchestrator import events
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.events import Event
from taskgate.rfc3339 import utc_now
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import event
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run
from tests.integration.store_fixtures import start_task

pytestmark = pytest.mark.integration


def test_events_are_stored_under_their_seq_and_read_back_in_pages(database_url):
    async def scenario(store):
        await store.create_task(new_task("task-1"))
        await store.create_task(new_task("task-2", owner=BOB, session_id="session-bob"))
        assert await store.list_events("task-1") == []
        assert (await store.count_events("task-1"), await store.last_event_seq("task-1")) == (0, 0)

        stored = [
            event("task-1", 1, events.WORKFLOW_STARTED),
            event("task-1", 2, events.LLM_PARTIAL, payload={"delta": "Grüße, 世界"}),
            event(
                "task-1", 3, events.LLM_PARTIAL, payload={"delta": "!", "nested": {"list": [1, 2.5, None]}}
            ),
            event("task-1", 4, events.LLM_OUTPUT, payload={}),
            event("task-1", 5, events.WORKFLOW_COMPLETED),
        ]
        for each in stored:
            await store.append_event(each)
        await store.append_event(event("task-2", 1, events.WORKFLOW_STARTED))

        # Read back whole: type, message, payload, agent and timestamp as written.
        assert await store.list_events("task-1") == stored
        assert await store.list_events("task-1", after_seq=3) == stored[3:]
        assert await store.list_events("task-1", limit=2) == stored[:2]
        assert await store.list_events("task-1", limit=2, offset=2) == stored[2:4]
        assert await store.list_events("task-1", after_seq=1, limit=2, offset=3) == stored[4:]
        assert await store.list_events("task-1", after_seq=5) == []
        assert await store.list_events("no-such-task") == []
        assert (await store.count_events("task-1"), await store.count_events("task-2")) == (5, 1)
        assert await store.count_events("no-such-task") == 0

        assert await store.last_event_seq("task-1") == 5
        assert await store.last_event_seq("task-1", events.LLM_PARTIAL) == 3
        assert await store.last_event_seq("task-1", events.STREAM_END) == 0
        assert await store.last_event_seq("no-such-task", events.LLM_PARTIAL) == 0

        # A seq already taken is an error, and the stored event stays as it was.
        with pytest.raises(Exception):  # noqa: B017 (the interface promises an error, not its type)
            await store.append_event(event("task-1", 3, events.ERROR_OCCURRED, "again"))
        assert (await store.list_events("task-1", after_seq=2, limit=1)) == [stored[2]]
        assert await store.count_events("task-1") == 5

        assert await store.workflow_owner("task-1") == ALICE.user_id
        assert await store.workflow_owner("task-2") == BOB.user_id
        assert await store.workflow_owner("no-such-task") is None

    run(database_url, scenario)


def test_a_transition_applies_with_its_events_only_while_its_guard_holds(database_url):
    async def scenario(store):
        queued = (await store.create_task(new_task("task-1"))).task
        await store.append_event(event("task-1", 1, events.WORKFLOW_STARTED))
        paused_control = ControlState(
            pause_requested=True, paused_at=utc_now(), pause_reason="lunch", paused_by=ALICE.user_id
        )
        pause = TaskTransition(
            guard=TaskGuard.of(queued),
            control=paused_control,
            status=TaskStatus.PAUSED,
            events=(
                NewEvent(events.WORKFLOW_PAUSED, "Workflow paused", {"reason": "lunch"}, agent_id="control"),
                NewEvent(events.AGENT_THINKING),
            ),
        )
        before = utc_now()
        recorded = await store.transition_task("task-1", pause)
        after = utc_now()
        assert [(e.workflow_id, e.seq, e.type) for e in recorded] == [
            ("task-1", 2, events.WORKFLOW_PAUSED),
            ("task-1", 3, events.AGENT_THINKING),
        ]
        assert (recorded[0].message, dict(recorded[0].payload), recorded[0].agent_id) == (
            "Workflow paused",
            {"reason": "lunch"},
            "control",
        )
        assert (recorded[1].message, dict(recorded[1].payload), recorded[1].agent_id) == ("", {}, "")
        assert all(before <= e.timestamp <= after for e in recorded)
        assert await store.list_events("task-1", after_seq=1) == recorded

        paused = await store.get_task("task-1", ALICE.user_id)
        assert (paused.status, paused.control) == (TaskStatus.PAUSED, paused_control)
        assert before <= paused.updated_at <= after and paused.completed_at is None
        assert await store.get_control_states(["task-1", "no-such-task", "task-1"]) == {
            "task-1": paused_control
        }
        # A paused task is not in the queue.
        assert await store.claim_next("worker-1", 60) is None

        # The same transition again finds its guard broken: nothing is written.
        assert await store.transition_task("task-1", pause) is None
        assert await store.transition_task("no-such-task", pause) is None
        assert await store.count_events("task-1") == 3
        assert await store.get_task("task-1", ALICE.user_id) == paused

        resume = TaskTransition(
            guard=TaskGuard.of(paused),
            control=ControlState(),
            status=TaskStatus.QUEUED,
            release=True,
            events=(NewEvent(events.WORKFLOW_RESUMED, "Workflow resumed"),),
        )
        [resumed_event] = await store.transition_task("task-1", resume)
        assert (resumed_event.seq, resumed_event.type) == (4, events.WORKFLOW_RESUMED)
        assert (await store.claim_next("worker-1", 60)).task_id == "task-1"

    run(database_url, scenario)


def test_each_part_of_the_guard_is_checked(database_url):
    async def scenario(store):
        running = await start_task(store, new_task("task-1"), "worker-1")
        guard = TaskGuard.of(running)
        asked = ControlState(cancel_requested=True, cancel_reason="stop", cancelled_by=ALICE.user_id)
        for stale in (
            dataclasses.replace(guard, status=TaskStatus.QUEUED),
            dataclasses.replace(guard, claimed_by="worker-2"),
            dataclasses.replace(guard, claimed_by=None),
            dataclasses.replace(guard, pause_requested=True),
            dataclasses.replace(guard, cancel_requested=True),
        ):
            assert await store.transition_task("task-1", TaskTransition(stale, asked)) is None, stale
        assert await store.get_task("task-1", ALICE.user_id) == running

        # A running task is only asked: its control state changes, its status and holder do not.
        assert await store.transition_task("task-1", TaskTransition(guard, asked)) == []
        asked_task = await store.get_task("task-1", ALICE.user_id)
        assert (asked_task.status, asked_task.claimed_by, asked_task.control) == (
            TaskStatus.RUNNING,
            "worker-1",
            asked,
        )
        assert asked_task.lease_expires_at == running.lease_expires_at
        assert await store.count_events("task-1") == 0

        # Its runner ends it: a terminal status sets completed_at and ends the lease.
        cancel = TaskTransition(
            guard=TaskGuard.of(asked_task),
            control=asked,
            status=TaskStatus.CANCELLED,
            error="The task was cancelled",
            run_seconds=4.5,
            events=(NewEvent(events.WORKFLOW_CANCELLED), NewEvent(events.STREAM_END)),
        )
        assert [e.seq for e in await store.transition_task("task-1", cancel)] == [1, 2]
        cancelled = await store.get_task("task-1", ALICE.user_id)
        assert (cancelled.status, cancelled.error, cancelled.run_seconds) == (
            TaskStatus.CANCELLED,
            "The task was cancelled",
            4.5,
        )
        assert cancelled.completed_at is not None and cancelled.lease_expires_at is None
        assert await store.last_event_seq("task-1", events.STREAM_END) == 2
        assert await store.list_claimed_tasks() == []

    run(database_url, scenario)


def test_claimed_tasks_are_the_running_ones_and_the_paused_ones_still_held(database_url):
    async def scenario(store):
        await start_task(store, new_task("running"), "worker-1")
        held = await start_task(store, new_task("held", owner=BOB, session_id="session-bob"), "worker-2")
        parked = await start_task(store, new_task("parked", session_id="session-2"), "worker-1")
        finished = await start_task(store, new_task("finished", session_id="session-3"), "worker-2")
        await store.create_task(new_task("queued", session_id="session-4"))

        hold = TaskTransition(
            TaskGuard.of(held), ControlState(pause_requested=True), status=TaskStatus.PAUSED
        )
        assert await store.transition_task("held", hold) == []
        park = TaskTransition(
            TaskGuard.of(parked),
            ControlState(pause_requested=True),
            status=TaskStatus.PAUSED,
            release=True,
            run_seconds=12.5,
        )
        assert await store.transition_task("parked", park) == []
        parked = await store.get_task("parked", ALICE.user_id)
        assert (parked.status, parked.claimed_by, parked.lease_expires_at, parked.run_seconds) == (
            TaskStatus.PAUSED,
            None,
            None,
            12.5,
        )
        done = TaskOutcome(TaskStatus.COMPLETED, "done")
        assert await store.finish_task("finished", finished.claim, done, ()) == []

        claimed = await store.list_claimed_tasks()
        assert [(task.task_id, task.status, task.claimed_by) for task in claimed] == [
            ("running", TaskStatus.RUNNING, "worker-1"),
            ("held", TaskStatus.PAUSED, "worker-2"),
        ]
        assert claimed[0] == await store.get_task("running", ALICE.user_id)

        # Control states of many tasks at once: only the ones that exist.
        many = [f"missing-{number}" for number in range(1200)] + ["running", "held", "parked"]
        states = await store.get_control_states(many)
        assert states == {
            "running": ControlState(),
            "held": ControlState(pause_requested=True),
            "parked": ControlState(pause_requested=True),
        }
        assert await store.get_control_states([]) == {}

    run(database_url, scenario)


def test_events_recorded_by_a_transition_follow_events_appended_by_the_runner(database_url):
    async def scenario(store):
        running = await start_task(store, new_task("task-1"), "worker-1")
        for seq in range(1, 4):
            await store.append_event(event("task-1", seq))
        timeout = TaskTransition(
            TaskGuard.of(running),
            running.control,
            status=TaskStatus.TIMEOUT,
            error="ran too long",
            events=(NewEvent(events.WORKFLOW_TIMEOUT, "Workflow timed out"), NewEvent(events.STREAM_END)),
        )
        recorded = await store.transition_task("task-1", timeout)
        assert [e.seq for e in recorded] == [4, 5]
        listed = await store.list_events("task-1")
        assert [e.seq for e in listed] == [1, 2, 3, 4, 5] and listed[3:] == recorded
        # The runner's next append under a seq the transition took fails.
        with pytest.raises(Exception):  # noqa: B017 (the interface promises an error, not its type)
            await store.append_event(Event("task-1", 4, events.LLM_OUTPUT))
        assert await store.list_events("task-1", after_seq=3) == recorded

    run(database_url, scenario)
