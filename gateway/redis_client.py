"""The gateway's Redis connection: short timeouts, scripts by EVALSHA, a pause after each failure.

One client per worker process, made when the app is built (after gunicorn's fork). The sync
redis-py client is used: under the gevent worker its sockets are gevent's, so a call yields to
other requests instead of blocking the worker; under gthread each thread has its own connection
from the bounded pool. A request never waits on Redis for longer than the socket timeout, and after
a failure every call fails at once for ``PAUSE_SECONDS`` rather than each request paying the
timeout again while Redis is down.
"""

import time
from collections.abc import Callable
from collections.abc import Sequence

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry

PAUSE_SECONDS = 1.0
MAX_CONNECTIONS = 64


class RedisUnavailableError(Exception):
    """Redis could not be asked (down, unreachable, too slow, or paused after a recent failure)."""


def connect(url: str, timeout_seconds: float) -> redis.Redis:
    """Return a client for a Redis URL with a bounded pool, short timeouts and no retries.

    Waiting for a free pooled connection is bounded by the same timeout, so a burst larger than
    the pool degrades into the limiter's unavailable policy instead of a queue.
    """
    pool = redis.BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=timeout_seconds,
        socket_timeout=timeout_seconds,
        socket_connect_timeout=timeout_seconds,
        retry=Retry(NoBackoff(), 0),
    )
    return redis.Redis(connection_pool=pool)


class GatewayRedis:
    """Run Lua scripts on one Redis client, turning every failure into RedisUnavailableError."""

    def __init__(
        self,
        client: redis.Redis,
        pause_seconds: float = PAUSE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._pause_seconds = pause_seconds
        self._clock = clock
        self._paused_until = 0.0

    def script(self, source: str) -> Script:
        """Register a script: it is called with EVALSHA, and loaded again if Redis answers NOSCRIPT."""
        return self._client.register_script(source)

    def is_reachable(self) -> bool:
        """Return whether Redis answers a PING within the client's timeout (for readiness)."""
        try:
            return bool(self._client.ping())
        except redis.exceptions.RedisError:
            return False

    def run(self, script: Script, keys: Sequence[str], args: Sequence[str | int | bytes]) -> object:
        """Run a registered script in one round trip (two after a NOSCRIPT) and return its reply."""
        if self._clock() < self._paused_until:
            raise RedisUnavailableError("paused after a recent failure")
        try:
            return script(keys=keys, args=args)
        except redis.exceptions.RedisError as ex:
            self._paused_until = self._clock() + self._pause_seconds
            raise RedisUnavailableError(type(ex).__name__) from ex
