"""The scheduler loop: every replica looks for due schedules and fires them.

Every replica runs one; the store's compare-and-set claim decides which replica starts each run,
so running several changes how soon a run starts, never how many times.
"""

import asyncio
import logging

from orchestrator.engine.schedules import ScheduleEngine
from orchestrator.errors import UnavailableError

logger = logging.getLogger(__name__)


class Scheduler:
    """Calls ``ScheduleEngine.fire_due`` every ``poll_seconds`` until stopped."""

    def __init__(self, engine: ScheduleEngine, poll_seconds: float) -> None:
        self._engine = engine
        self._poll_seconds = poll_seconds
        self._loop_task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start polling."""
        if self._loop_task is None:
            self._loop_task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        """Stop polling; a run being claimed is stored with its task, or not at all."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            await asyncio.gather(self._loop_task, return_exceptions=True)
            self._loop_task = None

    async def _loop(self) -> None:
        while True:
            try:
                await self._engine.fire_due()
                # Runs an earlier version claimed without their task (a rolling upgrade).
                await self._engine.start_orphaned_runs()
            except UnavailableError:
                # The store logs the outage once; the next poll tries again.
                pass
            except Exception:
                logger.exception("scheduler poll failed")
            await asyncio.sleep(self._poll_seconds)
