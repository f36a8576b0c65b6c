"""Redis connections of the orchestrator (event bus, control signals): the client and the retry backoff."""

import asyncio
import logging

import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

logger = logging.getLogger(__name__)

BACKOFF_MIN_SECONDS = 0.05
BACKOFF_MAX_SECONDS = 5.0
# Longer than any blocking read the orchestrator makes (the bus blocks 200 ms per XREAD).
SOCKET_TIMEOUT_SECONDS = 2.5
CONNECT_TIMEOUT_SECONDS = 2.0


async def stop_loops(loops: list[asyncio.Task[None]], timeout: float) -> None:
    """Wait for loops already told to stop to end by themselves; cancel any still running after ``timeout``.

    A loop is not cancelled in the middle of a Redis command first: redis-py can swallow the
    cancellation of a blocking read, which would then never return.
    """
    if not loops:
        return
    _, running = await asyncio.wait(loops, timeout=timeout)
    for loop in running:
        loop.cancel()
    if running:
        await asyncio.wait(running, timeout=timeout)


def connect(url: str) -> redis.asyncio.Redis:
    """Return a client for a Redis URL: short timeouts, one immediate retry (after a restart)."""
    return redis.asyncio.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 1),
        health_check_interval=30,
    )


class Backoff:
    """Exponential backoff between retries, logging the first failure and the recovery once each."""

    def __init__(self, what: str) -> None:
        self._what = what
        self._delay = BACKOFF_MIN_SECONDS
        self.failing = False

    async def failed(self, ex: Exception) -> None:
        """Log (once per outage) and wait before the next attempt."""
        if not self.failing:
            logger.warning(
                f"Redis unavailable while {self._what}; retrying", extra={"error": type(ex).__name__}
            )
            self.failing = True
        await asyncio.sleep(self._delay)
        self._delay = min(self._delay * 2, BACKOFF_MAX_SECONDS)

    def succeeded(self) -> None:
        """Reset after a successful attempt."""
        if self.failing:
            logger.info(f"Redis reachable again for {self._what}")
        self.failing = False
        self._delay = BACKOFF_MIN_SECONDS
