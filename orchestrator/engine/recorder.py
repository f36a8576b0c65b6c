"""Recording a running task's events: numbered, stored, then published."""

import asyncio
from collections.abc import Mapping
from typing import Any

from orchestrator.bus import EventBus
from orchestrator.events import Event
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now


class EventRecorder:
    """Gives a workflow's events their gap-free seq, stores each, then publishes it.

    Storing first means any watcher that sees an event live can also find it on replay, which is
    what lets a stream hand over from replay to live without a gap. Only one recorder exists per
    running task, so the seq is counted here rather than in the database.
    """

    def __init__(self, store: Store, bus: EventBus, workflow_id: str, last_seq: int = 0) -> None:
        self._store = store
        self._bus = bus
        self._workflow_id = workflow_id
        self._last_seq = last_seq
        self._lock = asyncio.Lock()

    @classmethod
    async def resume(cls, store: Store, bus: EventBus, workflow_id: str) -> "EventRecorder":
        """Return a recorder that continues after the workflow's stored events."""
        return cls(store, bus, workflow_id, await store.last_event_seq(workflow_id))

    @property
    def last_seq(self) -> int:
        """The seq of the last event recorded."""
        return self._last_seq

    async def emit(
        self, event_type: str, message: str = "", payload: Mapping[str, Any] | None = None, agent_id: str = ""
    ) -> Event:
        """Record one event and return it."""
        async with self._lock:
            event = Event(
                workflow_id=self._workflow_id,
                seq=self._last_seq + 1,
                type=event_type,
                message=message,
                payload=dict(payload or {}),
                agent_id=agent_id,
                timestamp=utc_now(),
            )
            await self._store.append_event(event)
            self._last_seq = event.seq
            await self._bus.publish(event)
        return event
