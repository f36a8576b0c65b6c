"""A new turn's ``multitask_strategy`` in ``Store.create_task``, the same on SQLite and a real PostgreSQL.

``enqueue`` stores the turn behind the active ones; ``reject`` refuses it while one is active;
``interrupt`` and ``rollback`` cancel the active turns in the new turn's transaction: one no runner
holds ends at once with its events, a running one is asked to stop; ``rollback`` also takes them
out of the session's history, its aggregates and the search.
"""

import dataclasses

import pytest

from orchestrator import events
from orchestrator.domain.task_control import CANCELLED_ERROR
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskFilter
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.turns import INTERRUPTED_REASON
from orchestrator.domain.turns import ROLLED_BACK_REASON
from orchestrator.errors import SessionBusyError
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import approval
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

COMPLETED_EVENTS = (NewEvent(events.WORKFLOW_COMPLETED, "Workflow completed"), stream_end_event())


def turn(task_id: str, strategy: str = "enqueue", query: str = "") -> NewTask:
    """Return a turn of Alice's session-1 submitted with a strategy."""
    return dataclasses.replace(new_task(task_id, query=query), multitask_strategy=strategy)


async def running_turn(store, task_id: str, query: str = ""):
    """Submit a turn and claim it (no other may be claimable); return it RUNNING."""
    await store.create_task(turn(task_id, query=query))
    claimed = await store.claim_next("worker-1", 60)
    assert claimed.task_id == task_id
    return claimed


async def complete(store, task) -> None:
    """End a running turn COMPLETED with its answer."""
    outcome = TaskOutcome(TaskStatus.COMPLETED, f"answer of {task.task_id}")
    assert await store.finish_task(task.task_id, task.claim, outcome, COMPLETED_EVENTS)


def test_enqueue_stores_the_turn_behind_the_active_ones(database_url):
    async def scenario(store):
        first = await running_turn(store, "turn-1")
        submitted = await store.create_task(turn("turn-2"))
        assert (submitted.task.status, submitted.ended_events, submitted.interrupted_runs) == (
            TaskStatus.QUEUED,
            (),
            (),
        )
        assert await store.claim_next("worker-1", 60) is None
        await complete(store, first)
        assert (await store.claim_next("worker-1", 60)).task_id == "turn-2"

    run(database_url, scenario)


def test_reject_refuses_a_turn_while_one_is_active_and_stores_nothing(database_url):
    async def scenario(store):
        # A new session has no active turn.
        first = (await store.create_task(turn("turn-1", "reject"))).task
        assert first.status == TaskStatus.QUEUED
        with pytest.raises(SessionBusyError):
            await store.create_task(turn("while-queued", "reject"))
        claimed = await store.claim_next("worker-1", 60)
        with pytest.raises(SessionBusyError):
            await store.create_task(turn("while-running", "reject"))
        for refused in ("while-queued", "while-running"):
            assert await store.get_task(refused, ALICE.user_id) is None
        assert (await store.get_session("session-1", ALICE.user_id)).task_count == 1
        await complete(store, claimed)
        accepted = await store.create_task(turn("turn-2", "reject"))
        assert accepted.task.status == TaskStatus.QUEUED

    run(database_url, scenario)


def test_interrupt_ends_waiting_turns_at_once_and_asks_running_ones_to_stop(database_url):
    async def scenario(store):
        first = await running_turn(store, "turn-1")
        await store.create_task(turn("turn-2"))
        submitted = await store.create_task(turn("turn-3", "interrupt"))

        # The queued turn ended in the new turn's transaction, with its events.
        assert [(e.workflow_id, e.seq, e.type) for e in submitted.ended_events] == [
            ("turn-2", 1, events.WORKFLOW_CANCELLED),
            ("turn-2", 2, events.STREAM_END),
        ]
        assert submitted.ended_events[0].payload == {
            "reason": INTERRUPTED_REASON,
            "cancelled_by": ALICE.user_id,
        }
        assert await store.list_events("turn-2") == list(submitted.ended_events)
        ended = await store.get_task("turn-2", ALICE.user_id)
        assert (ended.status, ended.error, ended.control.cancel_reason) == (
            TaskStatus.CANCELLED,
            CANCELLED_ERROR,
            INTERRUPTED_REASON,
        )
        assert ended.completed_at is not None
        # The running turn is asked to stop; its runner is to be told.
        assert submitted.interrupted_runs == ("turn-1",)
        asked = await store.get_task("turn-1", ALICE.user_id)
        assert (asked.status, asked.claimed_by, asked.control.cancel_requested) == (
            TaskStatus.RUNNING,
            "worker-1",
            True,
        )
        assert (asked.control.cancel_reason, asked.control.cancelled_by) == (
            INTERRUPTED_REASON,
            ALICE.user_id,
        )
        # The new turn runs once the interrupted one has ended.
        assert await store.claim_next("worker-1", 60) is None
        outcome = TaskOutcome(TaskStatus.CANCELLED, error=CANCELLED_ERROR)
        assert await store.finish_task("turn-1", first.claim, outcome, ()) is not None
        assert (await store.claim_next("worker-1", 60)).task_id == "turn-3"
        # Interrupting a session with nothing active changes nothing.
        await complete(store, await store.get_task("turn-3", ALICE.user_id))
        quiet = await store.create_task(turn("turn-4", "interrupt"))
        assert (quiet.ended_events, quiet.interrupted_runs) == ((), ())

    run(database_url, scenario)


def test_interrupt_ends_a_turn_waiting_for_an_approval_and_closes_the_approval(database_url):
    async def scenario(store):
        asking = await running_turn(store, "turn-1")
        asked = approval("approval-1", asking)
        assert await store.park_for_approval(asked, asking.claim, 1.0, NewEvent("APPROVAL_REQUESTED"))
        submitted = await store.create_task(turn("turn-2", "interrupt"))
        assert [(e.seq, e.type) for e in submitted.ended_events] == [
            (2, events.WORKFLOW_CANCELLED),
            (3, events.STREAM_END),
        ]
        assert submitted.interrupted_runs == ()
        assert (await store.get_task("turn-1", ALICE.user_id)).status == TaskStatus.CANCELLED
        assert (await store.get_approval("approval-1", ALICE.user_id)).status == "cancelled"
        assert (await store.claim_next("worker-1", 60)).task_id == "turn-2"

    run(database_url, scenario)


def test_rollback_takes_the_cancelled_turns_out_of_the_session_but_not_out_of_reach(database_url):
    async def scenario(store):
        await complete(store, await running_turn(store, "turn-1", query="Plan the billing migration"))
        second = await running_turn(store, "turn-2", query="Draft the billing migration runbook")
        await store.create_task(turn("turn-3", query="Another billing question"))
        submitted = await store.create_task(turn("turn-4", "rollback", query="Billing, once more"))
        assert submitted.interrupted_runs == ("turn-2",)
        assert [e.workflow_id for e in submitted.ended_events] == ["turn-3", "turn-3"]
        assert submitted.ended_events[0].payload["reason"] == ROLLED_BACK_REASON

        # The runner of turn-2 completes before it sees the cancel: it stays rolled back.
        await complete(store, second)
        claimed = await store.claim_next("worker-1", 60)
        assert claimed.task_id == "turn-4"

        listed, total = await store.list_session_tasks("session-1", ALICE.user_id, 10, 0)
        assert ([task.task_id for task in listed], total) == (["turn-1", "turn-4"], 2)
        history = await store.session_history("session-1", ALICE.user_id, claimed.created_at, 10)
        assert [task.task_id for task in history] == ["turn-1"]
        summary = await store.get_session_summary("session-1", ALICE.user_id)
        assert (summary.session.task_count, summary.successful_tasks, summary.failed_tasks) == (2, 1, 0)
        assert (summary.latest_task_query, summary.latest_task_status) == (
            "Billing, once more",
            TaskStatus.RUNNING,
        )
        all_tasks, all_count = await store.list_tasks(ALICE.user_id, TaskFilter(), 10, 0)
        assert ([task.task_id for task in all_tasks], all_count) == (["turn-4", "turn-1"], 2)
        hits, hit_count = await store.search_tasks(ALICE.user_id, ["billing"], 10, 0)
        assert (sorted(hit.task_id for hit in hits), hit_count) == (["turn-1", "turn-4"], 2)
        # Each rolled-back turn is still readable by its id.
        assert (await store.get_task("turn-2", ALICE.user_id)).status == TaskStatus.COMPLETED
        assert (await store.get_task("turn-3", ALICE.user_id)).status == TaskStatus.CANCELLED

    run(database_url, scenario)


def test_an_unknown_strategy_is_a_programming_error(database_url):
    async def scenario(store):
        with pytest.raises(ValueError, match="multitask strategy"):
            await store.create_task(turn("turn-1", "overwrite"))
        assert await store.get_session("session-1", ALICE.user_id) is None

    run(database_url, scenario)
