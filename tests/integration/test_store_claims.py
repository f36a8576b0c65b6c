"""Claiming, the same contract on SQLite and on a real PostgreSQL: one turn of a session at a time,
fair across users, under the per-user cap.

A QUEUED task is claimable once no earlier turn of its session is QUEUED, RUNNING or PAUSED; the
claim takes a task of the user holding the fewest running tasks (RUNNING with a worker), then the
oldest; with a cap, a user holding that many gets none.
"""

import asyncio
import collections

import pytest

from orchestrator import events
from orchestrator.domain.task_control import stream_end_event
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskGuard
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TaskTransition
from orchestrator.store import open_store
from tests.integration.store_fixtures import ALICE
from tests.integration.store_fixtures import BOB
from tests.integration.store_fixtures import Owner
from tests.integration.store_fixtures import approval
from tests.integration.store_fixtures import database_url as database_url
from tests.integration.store_fixtures import frozen_clock as frozen_clock
from tests.integration.store_fixtures import new_task
from tests.integration.store_fixtures import run

pytestmark = pytest.mark.integration

CAROL = Owner("user-carol", "tenant-carol")
DONE = TaskOutcome(TaskStatus.COMPLETED, "done")
COMPLETED_EVENTS = (NewEvent(events.WORKFLOW_COMPLETED, "Workflow completed"), stream_end_event())


def run_capped(database_url: str, max_running_per_user: int, scenario) -> None:
    """Run a scenario with a store whose claims hold each user to ``max_running_per_user`` running tasks."""
    run(database_url, scenario, max_running_per_user=max_running_per_user)


async def queue(store, owner: Owner, *task_ids: str) -> None:
    """Queue tasks of one user, each in a session of its own."""
    for task_id in task_ids:
        await store.create_task(new_task(task_id, owner=owner, session_id=f"session-{task_id}"))


async def claimed_ids(store, count: int) -> list[str | None]:
    """Claim ``count`` times; return the ids claimed (None: nothing was claimable)."""
    claims = [await store.claim_next("worker-1", 60) for _ in range(count)]
    return [task.task_id if task else None for task in claims]


def test_a_session_runs_one_turn_at_a_time_in_submission_order(database_url, frozen_clock):
    async def scenario(store):
        for task_id in ("turn-1", "turn-2", "turn-3"):
            await store.create_task(new_task(task_id))
        await store.create_task(new_task("other", session_id="session-2"))
        # One instant for all: the session's order is the insertion order.
        assert await claimed_ids(store, 3) == ["turn-1", "other", None]

        first = await store.get_task("turn-1", ALICE.user_id)
        assert await store.finish_task("turn-1", first.claim, DONE, COMPLETED_EVENTS)
        second = await store.claim_next("worker-1", 60)
        assert second.task_id == "turn-2"

        # A turn parked at a pause (no worker) is still active: the next one waits for it.
        parked = TaskTransition(
            TaskGuard.of(second), ControlState(pause_requested=True), status=TaskStatus.PAUSED, release=True
        )
        assert await store.transition_task("turn-2", parked) == []
        assert await store.claim_next("worker-1", 60) is None
        # A waiting turn cancelled: the one after it still waits for the parked one.
        await store.create_task(new_task("turn-4"))
        queued = await store.get_task("turn-3", ALICE.user_id)
        cancelled = TaskTransition(
            TaskGuard.of(queued), ControlState(cancel_requested=True), status=TaskStatus.CANCELLED
        )
        assert await store.transition_task("turn-3", cancelled) == []
        assert await store.claim_next("worker-1", 60) is None
        # Requeued, the parked turn is the session's first active one again.
        paused = await store.get_task("turn-2", ALICE.user_id)
        requeued = TaskTransition(TaskGuard.of(paused), ControlState(), status=TaskStatus.QUEUED)
        assert await store.transition_task("turn-2", requeued) == []
        assert await claimed_ids(store, 2) == ["turn-2", None]

    run(database_url, scenario)


def test_a_turn_waiting_for_an_approval_holds_back_its_session_but_holds_no_slot(database_url):
    async def scenario(store):
        await store.create_task(new_task("asking"))
        await store.create_task(new_task("next"))
        asking = await store.claim_next("worker-1", 60)
        asked = approval("approval-1", asking)
        assert await store.park_for_approval(asked, asking.claim, 1.0, NewEvent("APPROVAL_REQUESTED"))
        await queue(store, BOB, "bob-1")
        await queue(store, ALICE, "alice-2")
        # Alice holds no running task now, so her oldest claimable task ties with Bob's: the older wins.
        assert await claimed_ids(store, 3) == ["bob-1", "alice-2", None]

    run(database_url, scenario)


def test_the_user_with_the_fewest_running_tasks_goes_first_then_the_oldest_task(database_url):
    async def scenario(store):
        await queue(store, ALICE, *(f"alice-{n}" for n in range(1, 7)))
        assert await claimed_ids(store, 2) == ["alice-1", "alice-2"]
        # Bob's first task, submitted behind Alice's backlog, is the next claimed.
        await queue(store, BOB, "bob-1", "bob-2")
        await queue(store, CAROL, "carol-1")
        assert await claimed_ids(store, 3) == ["bob-1", "carol-1", "bob-2"]
        # Every user now holds two but Carol (one, and nothing queued): Alice's oldest goes next.
        assert await claimed_ids(store, 1) == ["alice-3"]
        # A finished task frees its user's place in the order.
        bob = await store.get_task("bob-1", BOB.user_id)
        assert await store.finish_task("bob-1", bob.claim, DONE, COMPLETED_EVENTS)
        await queue(store, BOB, "bob-3")
        assert await claimed_ids(store, 2) == ["bob-3", "alice-4"]

    run(database_url, scenario)


def test_a_user_holding_the_cap_gets_no_task_until_one_ends(database_url):
    async def scenario(store):
        await queue(store, ALICE, "alice-1", "alice-2", "alice-3")
        assert await claimed_ids(store, 3) == ["alice-1", "alice-2", None]
        await queue(store, BOB, "bob-1")
        assert await claimed_ids(store, 2) == ["bob-1", None]
        first = await store.get_task("alice-1", ALICE.user_id)
        assert await store.finish_task("alice-1", first.claim, DONE, COMPLETED_EVENTS)
        assert await claimed_ids(store, 2) == ["alice-3", None]
        # A task waiting for an approval holds no slot, so it does not count against the cap.
        second = await store.get_task("alice-2", ALICE.user_id)
        asked = approval("approval-1", second)
        assert await store.park_for_approval(asked, second.claim, 1.0, NewEvent("APPROVAL_REQUESTED"))
        await queue(store, ALICE, "alice-4")
        assert await claimed_ids(store, 2) == ["alice-4", None]

    run_capped(database_url, 2, scenario)


def test_the_cap_is_exact_under_claims_at_once_from_every_replica(database_url):
    # Replicas share PostgreSQL; SQLite serves one replica, whose claims share one store.
    replicas = 3 if database_url.startswith("postgres") else 1

    async def main() -> collections.Counter:
        stores = [await open_store(database_url, 3) for _ in range(replicas)]
        try:
            await stores[0].migrate()
            await queue(stores[0], ALICE, *(f"alice-{n:02d}" for n in range(12)))
            await queue(stores[0], BOB, *(f"bob-{n:02d}" for n in range(12)))
            claims = await asyncio.gather(
                *(
                    store.claim_next(f"{index}-{n}", 60)
                    for index, store in enumerate(stores)
                    for n in range(12)
                )
            )
            return collections.Counter(task.user_id for task in claims if task is not None)
        finally:
            for store in stores:
                await store.close()

    assert asyncio.run(main()) == {ALICE.user_id: 3, BOB.user_id: 3}


def test_a_turn_is_never_stamped_before_the_latest_turn_of_its_session(database_url, frozen_clock):
    async def scenario(store):
        first = (await store.create_task(new_task("turn-1"))).task
        # The next turn is stored by a replica whose clock is a minute behind.
        frozen_clock.advance(-60)
        second = (await store.create_task(new_task("turn-2"))).task
        other = (await store.create_task(new_task("other", session_id="session-2"))).task
        assert second.created_at == first.created_at and other.created_at < first.created_at
        tasks, _ = await store.list_session_tasks("session-1", ALICE.user_id, 10, 0)
        assert [task.task_id for task in tasks] == ["turn-1", "turn-2"]
        assert await claimed_ids(store, 3) == ["other", "turn-1", None]

    run(database_url, scenario)


def test_claims_at_once_each_get_a_task_while_any_is_claimable(database_url):
    # Replicas share PostgreSQL; SQLite serves one replica, whose claims share one store.
    replicas = 3 if database_url.startswith("postgres") else 1

    async def main() -> list[str | None]:
        stores = [await open_store(database_url) for _ in range(replicas)]
        try:
            await stores[0].migrate()
            await queue(stores[0], ALICE, *(f"alice-{n:02d}" for n in range(20)))
            claims = await asyncio.gather(
                *(
                    store.claim_next(f"{index}-{n}", 60)
                    for index, store in enumerate(stores)
                    for n in range(12)
                )
            )
            return [task.task_id if task else None for task in claims]
        finally:
            for store in stores:
                await store.close()

    claimed = [task_id for task_id in asyncio.run(main()) if task_id is not None]
    # 12 claims on SQLite, the oldest 12 tasks; 36 on PostgreSQL, all 20 tasks and 16 empty-handed.
    oldest = [f"alice-{n:02d}" for n in range(min(20, 12 * replicas))]
    assert sorted(claimed) == oldest


def test_a_task_never_starts_before_it_was_created(database_url, frozen_clock):
    """A claim reads its time once for all its rounds; a task queued after that starts when created."""

    async def scenario(store):
        claim_time = frozen_clock.now
        frozen_clock.advance(10)
        await store.create_task(new_task("queued-later"))
        created = (await store.get_task("queued-later", ALICE.user_id)).created_at
        frozen_clock.now = claim_time
        claimed = await store.claim_next("worker-1", 60.0)
        assert claimed is not None and claimed.task_id == "queued-later"
        assert claimed.started_at == created > claim_time

    run(database_url, scenario)
