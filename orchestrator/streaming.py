"""Following a workflow's events: replay what is stored, then live ones, without gap or duplicate."""

from collections.abc import AsyncIterator
from collections.abc import Collection

from orchestrator import events
from orchestrator.bus import EventBus
from orchestrator.bus import SubscriptionOverflowError
from orchestrator.events import Event
from orchestrator.store.base import Store

REPLAY_PAGE_SIZE = 500


class StreamOverflowError(Exception):
    """The watcher fell behind the live events; it can resume after ``last_seq``."""

    def __init__(self, workflow_id: str, last_seq: int) -> None:
        super().__init__(f"watcher of {workflow_id} cut off after seq {last_seq}")
        self.workflow_id = workflow_id
        self.last_seq = last_seq


async def follow_events(
    store: Store,
    bus: EventBus,
    workflow_id: str,
    after_seq: int = 0,
    types: Collection[str] | None = None,
    buffer: int = 1000,
) -> AsyncIterator[Event]:
    """Yield the workflow's events with seq > after_seq, stored then live, until its STREAM_END.

    The bus subscription comes first and the replay second: an event is stored before it is
    published, so every event is either in the replay or arrives live (or both, and the live copy
    is dropped by seq). ``types`` filters what is yielded, never what is tracked, so the stream
    still ends at STREAM_END when the filter hides it. Raises StreamOverflowError when the
    watcher falls more than ``buffer`` events behind.
    """
    wanted = frozenset(types) if types else None
    subscription = bus.subscribe(workflow_id, buffer)
    try:
        last_seq = after_seq
        while True:
            page = await store.list_events(workflow_id, after_seq=last_seq, limit=REPLAY_PAGE_SIZE)
            for event in page:
                last_seq = event.seq
                if wanted is None or event.type in wanted:
                    yield event
                if event.type == events.STREAM_END:
                    return
            if len(page) < REPLAY_PAGE_SIZE:
                break
        # A client resuming after the end (its last id is STREAM_END's) has nothing left to wait for.
        if 0 < await store.last_event_seq(workflow_id, events.STREAM_END) <= last_seq:
            return
        while True:
            try:
                event = await subscription.next_event()
            except SubscriptionOverflowError:
                raise StreamOverflowError(workflow_id, last_seq) from None
            if event.seq <= last_seq:
                continue
            if event.seq > last_seq + 1:
                # Live events can arrive late or out of order across replicas (or be lost in a
                # Redis outage); the store has every one, so the gap is filled from there.
                gap = event.seq - last_seq - 1
                missed = await store.list_events(workflow_id, after_seq=last_seq, limit=gap)
                for earlier in missed:
                    last_seq = earlier.seq
                    if wanted is None or earlier.type in wanted:
                        yield earlier
                    if earlier.type == events.STREAM_END:
                        return
                if last_seq != event.seq - 1:
                    continue
            last_seq = event.seq
            if wanted is None or event.type in wanted:
                yield event
            if event.type == events.STREAM_END:
                return
    finally:
        subscription.close()
