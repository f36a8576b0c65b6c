"""Following a workflow's events: replay what is stored, then live ones, without gap or duplicate."""

import contextlib
from collections.abc import AsyncIterator
from collections.abc import Collection
from typing import Protocol

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.bus import Subscription
from orchestrator.bus import SubscriptionClosedError
from orchestrator.bus import SubscriptionOverflowError
from orchestrator.caller import Caller
from orchestrator.errors import TaskNotFoundError
from orchestrator.events import Event
from orchestrator.store.base import Store
from orchestrator.task_feed import TaskFeed

REPLAY_PAGE_SIZE = 500
#: How long a stream waits without a live event before it looks in the store for events it missed:
#: a replica that dies between storing an event and publishing it (its task's STREAM_END, say)
#: leaves them only in the store.
STORE_CHECK_SECONDS = 20.0


class StreamOverflowError(Exception):
    """The watcher fell behind the live events; it can resume after ``last_seq``."""

    def __init__(self, workflow_id: str, last_seq: int) -> None:
        super().__init__(f"watcher of {workflow_id} cut off after seq {last_seq}")
        self.workflow_id = workflow_id
        self.last_seq = last_seq


class EventFollower:
    """One watcher's view of a workflow: its events with seq > after_seq, stored then live.

    ``events()`` yields them until the workflow's STREAM_END, and yields None whenever no event
    came for ``idle_seconds`` (a stream's cue for a keep-alive ping). ``stop()`` ends it from
    outside — the client left — at once, even while it waits for the next live event: no task and
    no timer per event is needed to notice a disconnect.

    The bus subscription comes first and the replay second: an event is stored before it is
    published, so every event is either in the replay or arrives live (or both, and the live copy
    is dropped by seq). ``types`` filters what is yielded, never what is tracked, so the stream
    still ends at STREAM_END when the filter hides it. Raises StreamOverflowError when the
    watcher falls more than ``buffer`` events behind.
    """

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        workflow_id: str,
        after_seq: int = 0,
        types: Collection[str] | None = None,
        buffer: int = 1000,
        idle_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._workflow_id = workflow_id
        self._after_seq = after_seq
        self._wanted = frozenset(types) if types else None
        self._buffer = buffer
        self._idle_seconds = idle_seconds
        self._subscription: Subscription | None = None
        self._stopped = False

    def stop(self) -> None:
        """End the stream: a pending wait for the next event returns, and nothing more is yielded."""
        self._stopped = True
        if self._subscription is not None:
            self._subscription.close()

    async def events(self) -> AsyncIterator[Event | None]:
        """Yield the events (None when idle); see the class docstring."""
        if self._stopped:
            return
        subscription = self._subscription = self._bus.subscribe(self._workflow_id, self._buffer)
        try:
            async for event in self._follow(subscription):
                yield event
        finally:
            subscription.close()

    async def _follow(self, subscription: Subscription) -> AsyncIterator[Event | None]:
        wanted = self._wanted
        async with contextlib.aclosing(self._in_seq_order(subscription)) as ordered:
            async for event in ordered:
                if event is None or wanted is None or event.type in wanted:
                    yield event
                if event is not None and event.type == events.STREAM_END:
                    return

    async def _in_seq_order(self, subscription: Subscription) -> AsyncIterator[Event | None]:
        """Yield each event after ``after_seq`` once, in seq order: stored ones, then live ones.

        A gap in the live events is filled from the store, and so is a silence of
        ``STORE_CHECK_SECONDS`` (events stored but never published); None comes whenever no event
        came for ``idle_seconds``. The caller stops at STREAM_END.
        """
        workflow_id = self._workflow_id
        last_seq = self._after_seq
        while not self._stopped:
            page = await self._store.list_events(workflow_id, after_seq=last_seq, limit=REPLAY_PAGE_SIZE)
            for event in page:
                last_seq = event.seq
                yield event
            if len(page) < REPLAY_PAGE_SIZE:
                break
        # This generator's frame lives as long as the stream: holding the last page here kept every
        # replayed event (with its frame and JSON) for hours, most of a stream's memory.
        page = event = None
        # A client resuming after the end (its last id is STREAM_END's) has nothing left to wait for.
        if self._stopped or 0 < await self._store.last_event_seq(workflow_id, events.STREAM_END) <= last_seq:
            return
        wait = self._idle_seconds if self._idle_seconds is not None else STORE_CHECK_SECONDS
        quiet = 0.0
        while True:
            try:
                event = await subscription.next_event(wait)
            except SubscriptionOverflowError:
                raise StreamOverflowError(workflow_id, last_seq) from None
            except SubscriptionClosedError:
                return
            if event is None:
                quiet += wait
                if quiet >= STORE_CHECK_SECONDS:
                    quiet = 0.0
                    for missed in await self._store.list_events(
                        workflow_id, after_seq=last_seq, limit=REPLAY_PAGE_SIZE
                    ):
                        last_seq = missed.seq
                        yield missed
                if self._idle_seconds is not None:
                    yield None
                continue
            quiet = 0.0
            if event.seq <= last_seq:
                continue
            if event.seq > last_seq + 1:
                # Live events can arrive late or out of order across replicas (or be lost in a
                # Redis outage); the store has every one, so the gap is filled from there.
                gap = event.seq - last_seq - 1
                missed = await self._store.list_events(workflow_id, after_seq=last_seq, limit=gap)
                for earlier in missed:
                    last_seq = earlier.seq
                    yield earlier
                missed = earlier = None
                if last_seq != event.seq - 1:
                    continue
            last_seq = event.seq
            yield event


class StreamSource(Protocol):
    """What the admin app's stream routes need: an ownership check, a follower, the task feed.

    ``WorkflowStreams`` is the one both the orchestrator (its ``TaskEngine.streams``) and a stream
    process (``orchestrator.stream_server``) pass.
    """

    feed: TaskFeed

    async def require_workflow(self, caller: Caller, workflow_id: str) -> None:
        """Raise TaskNotFoundError unless the workflow exists and is the caller's."""

    def follow(
        self,
        workflow_id: str,
        after_seq: int,
        types: Collection[str] | None,
        idle_seconds: float | None = None,
    ) -> EventFollower:
        """Follow a workflow's events (the ownership already checked)."""


class WorkflowStreams:
    """Streams of workflows: their owners and events read from the store, live events from the bus.

    All a stream needs and nothing else of the orchestrator's engine, so a stream process serves
    streams with it alone.
    """

    def __init__(self, store: Store, bus: EventBus, buffer: int) -> None:
        self._store = store
        self._bus = bus
        self._buffer = buffer
        self.feed = TaskFeed(store, buffer)

    async def require_workflow(self, caller: Caller, workflow_id: str) -> None:
        """Raise TaskNotFoundError unless the workflow exists and is the caller's."""
        if await self._store.workflow_owner(workflow_id) != caller.user_id:
            raise TaskNotFoundError()

    def follow(
        self,
        workflow_id: str,
        after_seq: int,
        types: Collection[str] | None,
        idle_seconds: float | None = None,
    ) -> EventFollower:
        """Follow a workflow's events (check ownership with ``require_workflow`` first)."""
        return EventFollower(
            self._store, self._bus, workflow_id, after_seq, types, self._buffer, idle_seconds
        )
