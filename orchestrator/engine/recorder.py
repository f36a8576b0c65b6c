"""Recording a task's events: numbered, stored, then published; with its status transitions too."""

import asyncio
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from orchestrator.bus import EventBus
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskTransition
from orchestrator.events import Event
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now


class EventRecorder:
    """Gives a workflow's events their gap-free seq, stores each, then publishes it.

    Storing first means any watcher that sees an event live can also find it on replay, which is
    what lets a stream hand over from replay to live without a gap. Only one recorder exists per
    running task, so the seq is counted here rather than in the database. The one exception is a
    task its runner holds at a pause: a resume records its event meanwhile (see
    ``orchestrator.domain.task_control``), and the runner calls ``resync`` before going on.
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

    async def record_transition(self, transition: TaskTransition) -> bool:
        """Apply a guarded transition of the task with its events (the next seqs); False if it did not."""
        async with self._lock:
            stored = await self._store.transition_task(self._workflow_id, transition)
            if stored is None:
                return False
            for event in stored:
                self._last_seq = event.seq
                await self._bus.publish(event)
        return True

    async def record_finish(self, claim: Claim, outcome: TaskOutcome, new_events: Sequence[NewEvent]) -> bool:
        """End the task with its outcome and events (the next seqs), if ``claim`` still holds it.

        False when the claim was lost (another worker took the task over): nothing was written.
        """
        async with self._lock:
            stored = await self._store.finish_task(self._workflow_id, claim, outcome, new_events)
            if stored is None:
                return False
            for event in stored:
                self._last_seq = event.seq
                await self._bus.publish(event)
        return True

    async def resync(self) -> None:
        """Continue after the events someone else stored while the runner held the task at a pause."""
        async with self._lock:
            self._last_seq = await self._store.last_event_seq(self._workflow_id)


async def apply_transition(store: Store, bus: EventBus, task_id: str, transition: TaskTransition) -> bool:
    """Apply a guarded transition of a task no runner is recording, then publish its events.

    Return whether it applied (False: the task changed since it was read, nothing was written).
    """
    stored = await store.transition_task(task_id, transition)
    if stored is None:
        return False
    for event in stored:
        await bus.publish(event)
    return True
