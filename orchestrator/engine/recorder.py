"""Recording a task's events: numbered, stored, then published; with its status transitions and recoveries."""

import asyncio
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

from orchestrator.bus import EventBus
from orchestrator.domain.task_control import Interruption
from orchestrator.domain.task_control import recovery_transition
from orchestrator.domain.tasks import Checkpoint
from orchestrator.domain.tasks import Claim
from orchestrator.domain.tasks import NewEvent
from orchestrator.domain.tasks import TaskOutcome
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskTransition
from orchestrator.events import Event
from orchestrator.store.base import Store
from taskgate.rfc3339 import utc_now


class ClaimLost(BaseException):  # noqa: N818 (a signal, like asyncio.CancelledError, not an error)
    """Raised into a runner whose task is no longer this worker's (another replica took it over).

    The run ends without recording anything: the task's new holder decides what happens to it. A
    BaseException, so a runner's ``except Exception`` cannot swallow it.
    """


class EventRecorder:
    """Gives a workflow's events their gap-free seq, stores each, then publishes it.

    Storing first means any watcher that sees an event live can also find it on replay, which is
    what lets a stream hand over from replay to live without a gap. Only one recorder exists per
    running task, so the seq is counted here rather than in the database.

    Every write runs to its end even when the run that asked for it is interrupted (a cancel
    stops a run at once): the write is shielded and holds the recorder's lock, so the run's end,
    recorded next, always comes after it and never beside a half-known event.
    """

    def __init__(
        self, store: Store, bus: EventBus, workflow_id: str, last_seq: int = 0, claim: Claim | None = None
    ) -> None:
        self._store = store
        self._bus = bus
        self._workflow_id = workflow_id
        self._last_seq = last_seq
        self._claim = claim
        self._lock = asyncio.Lock()

    @classmethod
    async def resume(
        cls, store: Store, bus: EventBus, workflow_id: str, claim: Claim | None = None
    ) -> "EventRecorder":
        """Return a recorder continuing after the stored events, for the worker of ``claim``."""
        return cls(store, bus, workflow_id, await store.last_event_seq(workflow_id), claim)

    @property
    def last_seq(self) -> int:
        """The seq of the last event recorded."""
        return self._last_seq

    async def emit(
        self,
        event_type: str,
        message: str = "",
        payload: Mapping[str, Any] | None = None,
        agent_id: str = "",
        checkpoint: Checkpoint | None = None,
    ) -> Event:
        """Record one event and return it; with ``checkpoint``, the step it ends (see ``record_step``).

        Raises ClaimLost when the checkpoint cannot be saved because the worker's claim was taken over.
        """
        return await asyncio.shield(self._emit(event_type, message, payload, agent_id, checkpoint))

    async def _emit(
        self,
        event_type: str,
        message: str,
        payload: Mapping[str, Any] | None,
        agent_id: str,
        checkpoint: Checkpoint | None,
    ) -> Event:
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
            if checkpoint is None:
                await self._store.append_event(event)
            elif self._claim is None or not await self._store.record_step(event, self._claim, checkpoint):
                raise ClaimLost()
            self._last_seq = event.seq
            await self._bus.publish(event)
        return event

    async def settled(self) -> None:
        """Wait until no write of this recorder is under way (one may outlive the run that asked for it)."""
        async with self._lock:
            pass

    async def record_transition(self, transition: TaskTransition) -> bool:
        """Apply a guarded transition of the task with its events (the next seqs); False if it did not."""
        return await self._record_stored(lambda: self._store.transition_task(self._workflow_id, transition))

    async def record_finish(self, claim: Claim, outcome: TaskOutcome, new_events: Sequence[NewEvent]) -> bool:
        """End the task with its outcome and events (the next seqs), if ``claim`` still holds it.

        False when the claim was lost (another worker took the task over): nothing was written.
        """
        return await self._record_stored(
            lambda: self._store.finish_task(self._workflow_id, claim, outcome, new_events)
        )

    async def _record_stored(self, store_change: Callable[[], Awaitable[list[Event] | None]]) -> bool:
        """Make a change that stores its events under the next seqs, then publish them; False if not made."""
        return await asyncio.shield(self._record_stored_locked(store_change))

    async def _record_stored_locked(self, store_change: Callable[[], Awaitable[list[Event] | None]]) -> bool:
        async with self._lock:
            stored = await store_change()
            if stored is None:
                return False
            for event in stored:
                self._last_seq = event.seq
                await self._bus.publish(event)
        return True


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


async def recovery_for(
    store: Store, task: TaskRecord, interruption: Interruption, max_attempts: int
) -> TaskTransition:
    """Return ``task_control.recovery_transition`` of a task, naming its last checkpoint's seq."""
    saved = await store.last_checkpoint(task.task_id)
    return recovery_transition(task, interruption, max_attempts, saved.seq if saved else 0)


async def recover_tasks(
    store: Store,
    bus: EventBus,
    tasks: Iterable[TaskRecord],
    interruption: Interruption,
    max_attempts: int,
    log: logging.Logger,
) -> int:
    """Recover tasks whose runner is gone, each as its control state says; return how many.

    Each gets ``task_control.recovery_transition`` (most are queued again to resume from their
    checkpoint) and its events are published; a task that changed since it was read is left alone.
    Each recovered one is logged (a warning) on the caller's ``log``.
    """
    recovered = 0
    for task in tasks:
        transition = await recovery_for(store, task, interruption, max_attempts)
        if await apply_transition(store, bus, task.task_id, transition):
            recovered += 1
            log.warning(
                "task recovered from an interrupted run",
                extra={
                    "workflow_id": task.task_id,
                    "status": str(transition.status or task.status),
                    "reason": interruption.value,
                    "attempt": transition.attempt or task.attempt,
                },
            )
    return recovered
