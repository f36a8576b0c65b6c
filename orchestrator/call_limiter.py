"""Counting the orchestrator's direct gRPC callers: in the gateway's Redis windows, or in process.

With ``TASKGATE_REDIS_URL`` the windows are the gateway's own keys (``taskgate.redis_keys``, keyed
with the shared service token), counted by the same ``check_windows`` script
(``taskgate.rate_limits.sliding_window``), so a user's HTTP requests and direct gRPC calls share
one budget, exactly, across every gateway and orchestrator replica. Without Redis each
orchestrator process counts in its own memory: exact for one replica, and apart from the
gateway's windows.

The Redis client is its own (not the event bus's): short timeouts, no retries, and after a failure
every call fails at once for a second, so an outage never makes calls wait.
"""

import time
from collections.abc import Callable
from typing import Protocol

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskgate.rate_limits.sliding_window import ADMIT_LUA
from taskgate.rate_limits.sliding_window import SlidingWindowLog
from taskgate.rate_limits.sliding_window import request_member
from taskgate.rate_limits.sliding_window import status_from_reply
from taskgate.rate_limits.sliding_window import window_call
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import RateLimitSubject

PAUSE_SECONDS = 1.0
MAX_CONNECTIONS = 64


class CallLimiterUnavailableError(Exception):
    """The windows could not be counted (Redis down, too slow, or paused after a recent failure)."""


class CallLimiter(Protocol):
    """Counts a call in its subject's windows, exactly, and says whether it may go on."""

    async def admit(self, subject: RateLimitSubject) -> RateLimitStatus:
        """Count the call if every window has room; raise CallLimiterUnavailableError if it cannot tell."""

    async def close(self) -> None:
        """Release what the limiter holds."""


class InProcessCallLimiter:
    """The windows in this process's memory (no Redis configured)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._windows = SlidingWindowLog(clock)

    async def admit(self, subject: RateLimitSubject) -> RateLimitStatus:
        """Count the call if every window has room (never waits: one short lock)."""
        return self._windows.admit(subject)

    async def close(self) -> None:
        """Nothing to release."""


class RedisCallLimiter:
    """The windows in Redis, one EVALSHA per call, shared with every gateway."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        pause_seconds: float = PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._script = client.register_script(ADMIT_LUA)
        self._pause_seconds = pause_seconds
        self._clock = clock
        self._paused_until = 0.0

    @classmethod
    def connect(cls, url: str, timeout_seconds: float) -> "RedisCallLimiter":
        """Return a limiter on a new client for a Redis URL (it connects on first use)."""
        pool = redis.asyncio.BlockingConnectionPool.from_url(
            url,
            max_connections=MAX_CONNECTIONS,
            timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            socket_connect_timeout=timeout_seconds,
            retry=Retry(NoBackoff(), 0),
        )
        return cls(redis.asyncio.Redis(connection_pool=pool))

    async def admit(self, subject: RateLimitSubject) -> RateLimitStatus:
        """Count the call if every window has room, in one round trip (two after a NOSCRIPT)."""
        if self._clock() < self._paused_until:
            raise CallLimiterUnavailableError("paused after a recent failure")
        call = window_call(subject)
        try:
            reply = await self._script(keys=call.keys, args=[request_member(), *call.arguments])
        except (redis.exceptions.RedisError, OSError, TimeoutError) as ex:
            self._paused_until = self._clock() + self._pause_seconds
            raise CallLimiterUnavailableError(type(ex).__name__) from ex
        return status_from_reply(subject, reply)

    async def close(self) -> None:
        """Close the client's connections."""
        await self._client.aclose()


def open_call_limiter(redis_url: str | None, timeout_seconds: float) -> CallLimiter:
    """Return the Redis limiter when a URL is configured, else the in-process one."""
    if redis_url is None:
        return InProcessCallLimiter()
    return RedisCallLimiter.connect(redis_url, timeout_seconds)
