"""The event bus over Redis Streams: every replica's watchers see the events of every replica's tasks.

The store stays the source of truth (an event is stored before it is published, and a stream
replays from the store); Redis only carries live events between replicas:

- ``publish`` hands the event to this replica's own watchers at once (no Redis hop, and no
  dependence on Redis for them), then queues it for Redis. One flusher task XADDs the queue in
  order, pipelined, to the workflow's stream (trimmed with ``MAXLEN ~``, expiring a while after
  the workflow's last event, sooner after ``STREAM_END``). While Redis is unreachable the queue
  holds up to ``PENDING_LIMIT`` events and is retried with backoff, so a blip delays remote
  watchers instead of losing their events.
- One reader task per replica (not one per watcher) XREADs, in one blocking call, the streams of
  the workflows this replica's watchers follow, decodes each entry once, and fans it out to the
  local bounded queues of an ``InProcessEventBus`` (so a slow watcher is cut off exactly as on
  one process). Entries this replica wrote itself are skipped: its watchers already have them.

Keys share the hash tag ``{taskgate:events}``, so the multi-key XREAD is legal on Redis Cluster
(all event streams live in one slot). A watcher whose live events arrive out of order or with a
gap (an outage longer than the queue, a trimmed stream) has the gap filled from the store by
its ``EventFollower``.
"""

import asyncio
import collections
import json
import logging
import time

import redis.asyncio
import redis.exceptions

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.bus import InProcessEventBus
from orchestrator.bus import Subscription
from orchestrator.events import Event
from orchestrator.events import compact_json
from orchestrator.redis_client import Backoff
from orchestrator.redis_client import stop_loops
from taskgate.rfc3339 import parse_datetime

logger = logging.getLogger(__name__)

KEY_PREFIX = "taskgate:{taskgate:events}:"
STREAM_MAXLEN = 1000
LIVE_TTL_SECONDS = 24 * 3600
ENDED_TTL_SECONDS = 300
READ_BLOCK_MS = 200
READ_COUNT = 500
FLUSH_BATCH = 200
PENDING_LIMIT = 10_000
# A new watcher's stream is read from this long before "now" (Redis clock): events published
# between its subscription and its first read are not missed; older ones are dropped by seq.
START_MARGIN_MS = 2000
CLOSE_FLUSH_SECONDS = 2.0
STOP_SECONDS = 1.0
_ORIGIN = b"o"
_EVENT = b"e"


def stream_key(workflow_id: str) -> str:
    """Return the Redis key of a workflow's live event stream."""
    return KEY_PREFIX + workflow_id


def encode_event(event: Event) -> bytes:
    """Return the JSON an event travels as (full timestamp precision, unlike the API's form)."""
    return compact_json(
        {
            "workflow_id": event.workflow_id,
            "seq": event.seq,
            "type": event.type,
            "message": event.message,
            "payload": dict(event.payload),
            "agent_id": event.agent_id,
            "timestamp": event.timestamp.isoformat(),
        }
    ).encode("utf-8")


def decode_event(data: bytes) -> Event:
    """Return the event of a stream entry's JSON; raise ValueError when it is not one."""
    try:
        body = json.loads(data)
        return Event(
            workflow_id=str(body["workflow_id"]),
            seq=int(body["seq"]),
            type=str(body["type"]),
            message=str(body["message"]),
            payload=dict(body["payload"]),
            agent_id=str(body["agent_id"]),
            timestamp=parse_datetime(body["timestamp"]),
        )
    except (KeyError, TypeError, AttributeError) as ex:
        raise ValueError("not an event entry") from ex


class RedisStreamsEventBus(EventBus):
    """Live events between replicas through one Redis stream per workflow."""

    def __init__(self, client: redis.asyncio.Redis, origin: str) -> None:
        self._client = client
        self._origin = origin.encode("utf-8")
        self._local = InProcessEventBus()
        self._positions: dict[str, str] = {}
        self._streams_changed = asyncio.Event()
        self._pending: collections.deque[Event] = collections.deque()
        self._pending_changed = asyncio.Event()
        self._clock_offset_ms = 0
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    async def start(self) -> None:
        """Check that Redis answers (ConnectionError if not), then start the reader and the flusher."""
        try:
            await self._measure_clock()
        except redis.exceptions.RedisError as ex:
            raise ConnectionError(f"Redis did not answer ({type(ex).__name__})") from ex
        self._tasks = [
            asyncio.create_task(self._read_loop(), name="redis-bus-reader"),
            asyncio.create_task(self._flush_loop(), name="redis-bus-flusher"),
        ]

    async def close(self) -> None:
        """Give queued events a moment to reach Redis, stop both tasks, and close the client."""
        deadline = time.monotonic() + CLOSE_FLUSH_SECONDS
        while self._pending and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        if self._pending:
            logger.warning("events not sent to Redis at shutdown", extra={"event_count": len(self._pending)})
        self._stopping = True
        self._pending_changed.set()
        self._streams_changed.set()
        await stop_loops(self._tasks, STOP_SECONDS)
        self._tasks = []
        await self._client.aclose()

    def subscribe(self, workflow_id: str, maxsize: int) -> Subscription:
        """Start receiving the workflow's events (from any replica), buffering at most ``maxsize``."""
        subscription = self._local.subscribe(workflow_id, maxsize)
        if workflow_id not in self._positions:
            self._positions[workflow_id] = self._start_id()
            self._streams_changed.set()
        return subscription

    async def publish(self, event: Event) -> None:
        """Deliver to this replica's watchers now and queue for the others; never waits on Redis."""
        await self._local.publish(event)
        if len(self._pending) >= PENDING_LIMIT:
            dropped = self._pending.popleft()
            logger.error(
                "Redis unreachable too long: live event dropped (watchers recover it from the store)",
                extra={"workflow_id": dropped.workflow_id, "seq": dropped.seq},
            )
        self._pending.append(event)
        self._pending_changed.set()

    def watcher_count(self) -> int:
        """Return how many subscriptions are open on this replica, over every workflow."""
        return self._local.watcher_count()

    @property
    def pending_count(self) -> int:
        """How many published events wait to be written to Redis."""
        return len(self._pending)

    def _start_id(self) -> str:
        now_ms = int(time.time() * 1000) + self._clock_offset_ms
        return f"{max(now_ms - START_MARGIN_MS, 0)}-0"

    async def _measure_clock(self) -> None:
        """Learn how far Redis's clock (which stamps entry ids) is from ours."""
        seconds, microseconds = await self._client.time()
        self._clock_offset_ms = seconds * 1000 + microseconds // 1000 - int(time.time() * 1000)

    async def _flush_loop(self) -> None:
        backoff = Backoff("writing events to Redis")
        while not self._stopping:
            if not self._pending:
                self._pending_changed.clear()
                await self._pending_changed.wait()
                continue
            batch = [self._pending[index] for index in range(min(FLUSH_BATCH, len(self._pending)))]
            try:
                await self._write(batch)
            except (redis.exceptions.RedisError, OSError) as ex:
                await backoff.failed(ex)
                continue
            backoff.succeeded()
            for _ in batch:
                self._pending.popleft()

    async def _write(self, batch: list[Event]) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            for event in batch:
                key = stream_key(event.workflow_id)
                pipe.xadd(key, {_ORIGIN: self._origin, _EVENT: encode_event(event)}, maxlen=STREAM_MAXLEN)
                pipe.expire(key, ENDED_TTL_SECONDS if event.type == events.STREAM_END else LIVE_TTL_SECONDS)
            await pipe.execute()

    async def _read_loop(self) -> None:
        backoff = Backoff("reading events from Redis")
        while not self._stopping:
            self._forget_unwatched()
            if not self._positions:
                self._streams_changed.clear()
                await self._streams_changed.wait()
                continue
            streams = {stream_key(workflow_id): position for workflow_id, position in self._positions.items()}
            try:
                replies = await self._client.xread(streams, count=READ_COUNT, block=READ_BLOCK_MS)
                if backoff.failing:
                    await self._measure_clock()
            except (redis.exceptions.RedisError, OSError) as ex:
                await backoff.failed(ex)
                continue
            backoff.succeeded()
            for key, entries in replies or []:
                await self._dispatch(key.decode("utf-8").removeprefix(KEY_PREFIX), entries)

    async def _dispatch(self, workflow_id: str, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        for entry_id, fields in entries:
            if workflow_id not in self._positions:
                return
            self._positions[workflow_id] = entry_id.decode("ascii")
            if fields.get(_ORIGIN) == self._origin:
                continue
            try:
                event = decode_event(fields[_EVENT])
            except (KeyError, ValueError):
                logger.warning(
                    "malformed entry in an event stream skipped", extra={"workflow_id": workflow_id}
                )
                continue
            await self._local.publish(event)

    def _forget_unwatched(self) -> None:
        for workflow_id in [wf for wf in self._positions if self._local.subscriber_count(wf) == 0]:
            del self._positions[workflow_id]
