"""Task leases: how replicas sharing a database run each task once and leave none stuck RUNNING.

A claim gives the claiming worker a lease on the task until ``now + lease_seconds`` (database
clock). While the task runs, or is held at a pause, its replica's ``LeaseKeeper`` renews the lease
every third of that time. A replica that dies (even with SIGKILL) stops renewing; once the lease
has expired, any other replica's keeper takes the task over with one conditional UPDATE (so two
replicas recovering at once never both get it) and deals with it as its control state says
(``task_control.recovery_transition``): queued again with a WORKFLOW_RESUMED event, to continue
from its last checkpoint as its next attempt on whichever replica claims it (this one is woken at
once); CANCELLED if a cancel was asked; parked PAUSED if it was paused; FAILED once its replica has
died in ``max_attempts`` attempts.

Never run twice at once: every claim and take-over moves the task's claim epoch on, every change a
worker makes is conditional on its claim, and a replica that finds at renewal that another took one
of its tasks over (it stalled longer than the lease) stops running it at once.
"""

import asyncio
import logging
from typing import Protocol

from orchestrator.bus import EventBus
from orchestrator.domain.task_control import Interruption
from orchestrator.engine.recorder import recover_tasks
from orchestrator.store.base import Store

logger = logging.getLogger(__name__)

RECOVERY_BATCH = 50


class LeaseHolder(Protocol):
    """What the keeper needs of the worker pool."""

    def held_task_ids(self) -> list[str]:
        """Return the ids of the tasks run or held at a pause here now."""

    def abandon(self, task_id: str) -> None:
        """Stop running a task at once, recording nothing more."""

    def wake(self) -> None:
        """Claim now: a task was queued again."""

    @property
    def max_attempts(self) -> int:
        """How many attempts of a task may end with their replica dying before it ends FAILED."""


class LeaseKeeper:
    """Renews this replica's leases and recovers the tasks of replicas whose leases expired."""

    def __init__(
        self,
        store: Store,
        bus: EventBus,
        holder: LeaseHolder,
        worker_id: str,
        lease_seconds: float,
        interval_seconds: float | None = None,
    ) -> None:
        self._store = store
        self._bus = bus
        self._holder = holder
        self._worker_id = worker_id
        self._lease_seconds = lease_seconds
        self._interval = interval_seconds if interval_seconds is not None else lease_seconds / 3
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start renewing and recovering every ``interval_seconds``."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="lease-keeper")

    async def stop(self) -> None:
        """Stop the loop (the leases of tasks still running then simply expire)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    async def renew(self) -> list[str]:
        """Renew the leases of the tasks held here; stop and return those another replica took over."""
        held = self._holder.held_task_ids()
        lost = await self._store.renew_leases(self._worker_id, held, self._lease_seconds)
        for task_id in lost:
            logger.error(
                "task taken over by another replica after its lease expired; stopping it here",
                extra={"workflow_id": task_id},
            )
            self._holder.abandon(task_id)
        return lost

    async def recover_expired(self) -> int:
        """End the tasks whose lease has expired and that no runner here holds; return how many."""
        recovered = 0
        while True:
            tasks = await self._store.take_over_expired_leases(
                self._worker_id, self._lease_seconds, RECOVERY_BATCH
            )
            held = set(self._holder.held_task_ids())
            # A task still running here is left alone: its renewal failed (the database was away),
            # and the take-over has just renewed its lease.
            recovered += await recover_tasks(
                self._store,
                self._bus,
                [task for task in tasks if task.task_id not in held],
                Interruption.LOST,
                self._holder.max_attempts,
                logger,
            )
            if recovered:
                self._holder.wake()
            if len(tasks) < RECOVERY_BATCH:
                return recovered

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            for step in (self.renew, self.recover_expired):
                try:
                    await step()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("lease upkeep failed; retrying", extra={"step": step.__name__})
