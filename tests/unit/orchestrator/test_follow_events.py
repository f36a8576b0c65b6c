"""EventFollower: replay then live, with no gap and no duplicate across the hand-over."""

import asyncio
from collections.abc import AsyncIterator

import pytest

from orchestrator.bus import InProcessEventBus
from orchestrator.domain.tasks import NewTask
from orchestrator.engine.recorder import EventRecorder
from orchestrator.events import Event
from orchestrator.store import open_store as open_sql_store
from orchestrator.store.base import Store
from orchestrator.streaming import EventFollower
from orchestrator.streaming import StreamOverflowError

WORKFLOW = "task-1"


async def open_store(tmp_path) -> Store:
    store = await open_sql_store(f"sqlite:///{tmp_path}/db/taskgate.db")
    await store.migrate()
    await store.create_task(NewTask(WORKFLOW, "u1", "t1", "s1", "query", "standard", {}, {}))
    return store


def follow(store, bus: InProcessEventBus, **options) -> AsyncIterator[Event | None]:
    """The events of WORKFLOW as a watcher follows them (never None: no idle cue is asked)."""
    return EventFollower(store, bus, WORKFLOW, **options).events()


async def collect(events) -> list[tuple[int, str]]:
    return [(event.seq, event.type) for event in [item async for item in events]]


def test_finished_workflow_replays_and_ends(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        for event_type in ("WORKFLOW_STARTED", "LLM_PARTIAL", "WORKFLOW_COMPLETED", "STREAM_END"):
            await recorder.emit(event_type)
        seen = await collect(follow(store, bus))
        resumed = await collect(follow(store, bus, after_seq=2))
        subscribers = bus.subscriber_count(WORKFLOW)
        await store.close()
        return seen, resumed, subscribers

    seen, resumed, subscribers = asyncio.run(scenario())
    assert seen == [(1, "WORKFLOW_STARTED"), (2, "LLM_PARTIAL"), (3, "WORKFLOW_COMPLETED"), (4, "STREAM_END")]
    assert resumed == [(3, "WORKFLOW_COMPLETED"), (4, "STREAM_END")]
    assert subscribers == 0


def test_resuming_after_the_end_ends_at_once(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        await recorder.emit("STREAM_END")
        seen = await asyncio.wait_for(collect(follow(store, bus, after_seq=2)), timeout=2)
        await store.close()
        return seen

    assert asyncio.run(scenario()) == []


def test_live_events_follow_the_replay_in_order(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        await recorder.emit("AGENT_STARTED")
        follower = asyncio.create_task(collect(follow(store, bus)))
        await asyncio.sleep(0.05)
        for event_type in ("LLM_PARTIAL", "LLM_OUTPUT", "WORKFLOW_COMPLETED", "STREAM_END"):
            await recorder.emit(event_type)
        seen = await asyncio.wait_for(follower, timeout=2)
        await store.close()
        return seen

    assert [seq for seq, _ in asyncio.run(scenario())] == [1, 2, 3, 4, 5, 6]


class HandOverStore:
    """Wraps a store so events arrive while the first replay page is being read.

    It plays a recorder that had stored seq 3 but not yet published it when the watcher
    subscribed, and that stores and publishes seq 4 and 5 during the replay.
    """

    def __init__(self, store: Store, bus: InProcessEventBus) -> None:
        self._store = store
        self._bus = bus
        self._reads = 0

    def __getattr__(self, name):
        return getattr(self._store, name)

    async def list_events(self, workflow_id, after_seq=0, limit=500, offset=0):
        page = await self._store.list_events(workflow_id, after_seq, limit, offset)
        self._reads += 1
        if self._reads == 1:
            await self._bus.publish(page[-1])
            for seq, event_type in ((4, "LLM_PARTIAL"), (5, "LLM_OUTPUT")):
                event = Event(workflow_id, seq, event_type)
                await self._store.append_event(event)
                await self._bus.publish(event)
        return page


def test_events_arriving_during_replay_are_delivered_once_in_order(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        for seq, event_type in ((1, "WORKFLOW_STARTED"), (2, "AGENT_STARTED"), (3, "AGENT_THINKING")):
            await store.append_event(Event(WORKFLOW, seq, event_type))
        wrapped = HandOverStore(store, bus)
        follower = asyncio.create_task(collect(follow(wrapped, bus)))
        await asyncio.sleep(0.05)
        recorder = await EventRecorder.resume(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_COMPLETED")
        await recorder.emit("STREAM_END")
        seen = await asyncio.wait_for(follower, timeout=2)
        await store.close()
        return seen

    assert asyncio.run(scenario()) == [
        (1, "WORKFLOW_STARTED"),
        (2, "AGENT_STARTED"),
        (3, "AGENT_THINKING"),
        (4, "LLM_PARTIAL"),
        (5, "LLM_OUTPUT"),
        (6, "WORKFLOW_COMPLETED"),
        (7, "STREAM_END"),
    ]


def test_type_filter_hides_events_but_the_stream_still_ends(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        follower = asyncio.create_task(collect(follow(store, bus, types=["LLM_OUTPUT"])))
        await asyncio.sleep(0.05)
        for event_type in ("LLM_PARTIAL", "LLM_OUTPUT", "STREAM_END"):
            await recorder.emit(event_type)
        seen = await asyncio.wait_for(follower, timeout=2)
        await store.close()
        return seen

    assert asyncio.run(scenario()) == [(3, "LLM_OUTPUT")]


def test_a_watcher_that_falls_behind_is_cut_off_with_its_resume_point(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        events = follow(store, bus, buffer=2)
        first = await anext(events)
        for _ in range(5):
            await recorder.emit("LLM_PARTIAL")
        with pytest.raises(StreamOverflowError) as caught:
            await anext(events)
        subscribers = bus.subscriber_count(WORKFLOW)
        await store.close()
        return first.seq, caught.value.last_seq, subscribers

    assert asyncio.run(scenario()) == (1, 1, 0)


def test_closing_the_follower_closes_its_subscription(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        events = follow(store, bus)
        await anext(events)
        during = bus.subscriber_count(WORKFLOW)
        await events.aclose()
        after = bus.subscriber_count(WORKFLOW)
        await store.close()
        return during, after

    assert asyncio.run(scenario()) == (1, 0)


def test_an_idle_follower_yields_a_heartbeat_and_keeps_following(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        recorder = EventRecorder(store, bus, WORKFLOW)
        await recorder.emit("WORKFLOW_STARTED")
        events = EventFollower(store, bus, WORKFLOW, idle_seconds=0.05).events()
        seen = [await anext(events), await anext(events)]
        await recorder.emit("STREAM_END")
        seen += [item async for item in events]
        await store.close()
        return [item.type if item is not None else None for item in seen]

    assert asyncio.run(scenario()) == ["WORKFLOW_STARTED", None, "STREAM_END"]


def test_stopping_a_follower_ends_a_pending_wait_at_once_and_frees_its_subscription(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        await EventRecorder(store, bus, WORKFLOW).emit("WORKFLOW_STARTED")
        follower = EventFollower(store, bus, WORKFLOW)
        reader = asyncio.create_task(collect(follower.events()))
        while bus.subscriber_count(WORKFLOW) == 0:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.05)
        follower.stop()
        seen = await asyncio.wait_for(reader, timeout=1)
        await store.close()
        return seen, bus.subscriber_count(WORKFLOW)

    assert asyncio.run(scenario()) == ([(1, "WORKFLOW_STARTED")], 0)


def test_a_follower_stopped_before_it_starts_yields_nothing(tmp_path):
    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        await EventRecorder(store, bus, WORKFLOW).emit("WORKFLOW_STARTED")
        follower = EventFollower(store, bus, WORKFLOW)
        follower.stop()
        seen = await collect(follower.events())
        await store.close()
        return seen, bus.subscriber_count(WORKFLOW)

    assert asyncio.run(scenario()) == ([], 0)


@pytest.mark.parametrize("idle_seconds", [None, 0.02])
def test_events_stored_but_never_published_reach_the_watcher_after_a_silence(
    tmp_path, monkeypatch, idle_seconds
):
    # The replica that stored them died before it published them: only the store has them.
    monkeypatch.setattr("orchestrator.streaming.STORE_CHECK_SECONDS", 0.05)

    async def scenario():
        store = await open_store(tmp_path)
        bus = InProcessEventBus()
        await EventRecorder(store, bus, WORKFLOW).emit("WORKFLOW_STARTED")
        follower = EventFollower(store, bus, WORKFLOW, idle_seconds=idle_seconds).events()
        watched = asyncio.create_task(collect_events(follower))
        await asyncio.sleep(0.05)
        for seq, event_type in ((2, "WORKFLOW_COMPLETED"), (3, "STREAM_END")):
            await store.append_event(Event(WORKFLOW, seq, event_type))
        seen = await asyncio.wait_for(watched, timeout=10)
        await store.close()
        return seen

    assert asyncio.run(scenario()) == [(1, "WORKFLOW_STARTED"), (2, "WORKFLOW_COMPLETED"), (3, "STREAM_END")]


async def collect_events(events) -> list[tuple[int, str]]:
    return [(event.seq, event.type) async for event in events if event is not None]
