"""What replicas rely on: a stream fills gaps in live events from the store, and the lease keeper
renews its own tasks, stops those taken over, and recovers only tasks no runner here holds."""

import asyncio

from orchestrator import events
from orchestrator.bus import InProcessEventBus
from orchestrator.domain.tasks import NewTask
from orchestrator.domain.tasks import TaskStatus
from orchestrator.engine.leases import LeaseKeeper
from orchestrator.events import Event
from orchestrator.store import open_store as open_sql_store
from orchestrator.store.base import Store
from orchestrator.streaming import EventFollower

WORKFLOW = "task-1"


async def open_store(tmp_path, *task_ids: str) -> Store:
    store = await open_sql_store(f"sqlite:///{tmp_path}/db/taskgate.db")
    await store.migrate()
    for task_id in task_ids or (WORKFLOW,):
        await store.create_task(
            NewTask(task_id, "u1", "t1", f"session-{task_id}", "query", "standard", {}, {})
        )
    return store


class Holder:
    """The worker pool's side of the keeper: the tasks it runs, and those it was told to drop."""

    def __init__(self, *task_ids: str) -> None:
        self.held = list(task_ids)
        self.abandoned: list[str] = []

    def held_task_ids(self) -> list[str]:
        return list(self.held)

    def abandon(self, task_id: str) -> None:
        self.abandoned.append(task_id)

    def wake(self) -> None:
        self.woken = True

    max_attempts = 3


def test_a_live_event_after_a_gap_brings_the_missing_ones_from_the_store(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        await store.append_event(Event(WORKFLOW, 1, events.WORKFLOW_STARTED))
        follower = asyncio.create_task(
            asyncio.wait_for(
                _collect(EventFollower(store, bus, WORKFLOW, types=["LLM_OUTPUT", "STREAM_END"]).events()), 2
            )
        )
        await asyncio.sleep(0.05)
        # Events 2..4 are stored but their live copies never arrive (lost in an outage); 5 does.
        for seq, event_type in ((2, "LLM_PARTIAL"), (3, "LLM_OUTPUT"), (4, "WORKFLOW_COMPLETED")):
            await store.append_event(Event(WORKFLOW, seq, event_type))
        last = Event(WORKFLOW, 5, events.STREAM_END)
        await store.append_event(last)
        await bus.publish(last)
        seen = await follower
        await store.close()
        return seen

    assert asyncio.run(scenario()) == [(3, "LLM_OUTPUT"), (5, "STREAM_END")]


def test_the_lease_keeper_renews_its_tasks_and_stops_those_another_replica_took_over(tmp_path):
    async def scenario():
        store = await open_store(tmp_path, "task-a", "task-b")
        taken = await store.claim_next("me", 0.05)
        mine = await store.claim_next("me", 0.05)
        holder = Holder(taken.task_id, mine.task_id)
        keeper = LeaseKeeper(store, InProcessEventBus(), holder, "me", lease_seconds=30)
        await asyncio.sleep(0.1)
        # This replica stalled past both leases; another replica takes over the one expired first.
        await store.take_over_expired_leases("other", 30, 1)
        lost = await keeper.renew()
        renewed = await store.get_task(mine.task_id, "u1")
        await store.close()
        return lost, holder.abandoned, renewed, mine.task_id

    lost, abandoned, renewed, mine = asyncio.run(scenario())
    assert lost == abandoned and len(lost) == 1 and mine not in lost
    assert renewed.status == TaskStatus.RUNNING and renewed.claimed_by == "me"


def test_recovery_requeues_expired_tasks_but_not_those_still_running_here(tmp_path):
    async def scenario():
        store = await open_store(tmp_path, "task-dead", "task-mine")
        dead = await store.claim_next("gone", 0.05)
        running = await store.claim_next("me", 0.05)
        await asyncio.sleep(0.1)
        keeper = LeaseKeeper(store, InProcessEventBus(), Holder(running.task_id), "me", lease_seconds=30)
        recovered = await keeper.recover_expired()
        ended = await store.get_task(dead.task_id, "u1")
        still = await store.get_task(running.task_id, "u1")
        dead_events = await store.list_events(dead.task_id)
        await store.close()
        return recovered, ended, still, dead_events

    recovered, ended, still, dead_events = asyncio.run(scenario())
    assert recovered == 1
    assert ended.status == TaskStatus.QUEUED and ended.claimed_by is None
    assert (ended.attempt, ended.lost_attempts) == (2, 1)
    assert [event.type for event in dead_events] == [events.WORKFLOW_RESUMED]
    assert dead_events[0].payload["attempt"] == 2
    assert still.status == TaskStatus.RUNNING and still.lease_expires_at > still.updated_at


async def _collect(stream) -> list[tuple[int, str]]:
    return [(event.seq, event.type) async for event in stream]
