"""The Redis Streams event bus and the Redis control signals, between two "replicas" on a real Redis."""

import asyncio

import pytest

from orchestrator import events
from orchestrator.events import Event
from orchestrator.redis_bus import RedisStreamsEventBus
from orchestrator.redis_bus import stream_key
from orchestrator.redis_client import connect
from orchestrator.redis_control_signals import RedisControlSignals
from tests.integration.servers import ServerUnavailableError
from tests.integration.servers import start_redis

pytestmark = pytest.mark.integration
WAIT = 5.0


def event(workflow_id: str, seq: int, event_type: str = "LLM_PARTIAL") -> Event:
    return Event(
        workflow_id, seq, event_type, message=f"part {seq}", payload={"delta": f"d{seq}", "z": 1, "a": 2}
    )


async def open_bus(url: str, origin: str) -> RedisStreamsEventBus:
    bus = RedisStreamsEventBus(connect(url), origin)
    await bus.start()
    return bus


async def next_events(subscription, count: int) -> list[Event]:
    return [await asyncio.wait_for(subscription.next_event(), WAIT) for _ in range(count)]


@pytest.fixture()
def own_redis():
    """A redis-server of this test's own, which it may stop and start."""
    try:
        server = start_redis()
    except ServerUnavailableError as ex:
        pytest.skip(str(ex))
    yield server
    server.stop()


def test_a_watcher_on_one_replica_sees_events_published_on_another(redis_server):
    async def scenario():
        one, two = await open_bus(redis_server.url, "one"), await open_bus(redis_server.url, "two")
        try:
            watcher = one.subscribe("wf-cross", 100)
            local = two.subscribe("wf-cross", 100)
            for seq in range(1, 4):
                await two.publish(event("wf-cross", seq))
            await two.publish(event("wf-cross", 4, events.STREAM_END))
            remote_seen = await next_events(watcher, 4)
            local_seen = await next_events(local, 4)
            # A copy coming back through Redis would arrive within this wait.
            duplicate = await local.next_event(timeout=0.5)
            ttl = await two._client.ttl(stream_key("wf-cross"))
            watcher.close()
            local.close()
            return remote_seen, local_seen, duplicate, ttl
        finally:
            await one.close()
            await two.close()

    remote_seen, local_seen, duplicate, ttl = asyncio.run(scenario())
    assert [e.seq for e in remote_seen] == [1, 2, 3, 4]
    assert remote_seen[0].payload == {"delta": "d1", "z": 1, "a": 2}
    assert remote_seen[0].message == "part 1" and remote_seen[0].timestamp.tzinfo is not None
    assert remote_seen[-1].type == events.STREAM_END
    # The publishing replica's own watcher got each event once, directly, not again through Redis.
    assert [e.seq for e in local_seen] == [1, 2, 3, 4]
    assert duplicate is None
    # The stream of an ended workflow expires soon.
    assert 0 < ttl <= 300


def test_events_published_while_redis_is_down_reach_other_replicas_when_it_is_back(own_redis):
    async def scenario():
        one, two = await open_bus(own_redis.url, "one"), await open_bus(own_redis.url, "two")
        try:
            watcher = one.subscribe("wf-outage", 100)
            local = two.subscribe("wf-outage", 100)
            await two.publish(event("wf-outage", 1))
            before = await next_events(watcher, 1)

            own_redis.halt()
            for seq in (2, 3):
                await asyncio.wait_for(two.publish(event("wf-outage", seq)), 1.0)
            during_local = await next_events(local, 3)
            await asyncio.sleep(0.5)
            pending_during = two.pending_count

            own_redis.start()
            after = await next_events(watcher, 2)
            return before, during_local, pending_during, after, two.pending_count
        finally:
            await one.close()
            await two.close()

    before, during_local, pending_during, after, pending_after = asyncio.run(scenario())
    assert [e.seq for e in before] == [1]
    # Publishing never waits on Redis, and this replica's own watchers are served without it.
    assert [e.seq for e in during_local] == [1, 2, 3]
    assert pending_during == 2
    assert [e.seq for e in after] == [2, 3]
    assert pending_after == 0


def test_a_control_signal_reaches_every_replica_once(redis_server):
    async def scenario():
        received = {"one": [], "two": []}
        one = RedisControlSignals(connect(redis_server.url), "one")
        two = RedisControlSignals(connect(redis_server.url), "two")
        await one.start()
        await two.start()
        try:
            one.listen(received["one"].append)
            two.listen(received["two"].append)
            await one.notify("task-1")
            for _ in range(100):
                if received["two"]:
                    break
                await asyncio.sleep(0.02)
            await asyncio.sleep(0.2)
            return received
        finally:
            await one.close()
            await two.close()

    assert asyncio.run(scenario()) == {"one": ["task-1"], "two": ["task-1"]}
