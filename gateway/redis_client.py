"""The gateway's Redis connection: short timeouts, scripts by EVALSHA, a pause after each failure.

One client per worker process, made when the app is built (after gunicorn's fork). The sync
redis-py client is used: under the gevent worker its sockets are gevent's, so a call yields to
other requests instead of blocking the worker; under gthread each thread has its own connection.
A request never waits on Redis for longer than the socket timeout, and after a failure every call
fails at once for ``PAUSE_SECONDS`` rather than each request paying the timeout again while Redis
is down.

Scripts, which every limited request runs, skip redis-py's command path: each is packed once into
the bytes of its ``EVALSHA`` prefix, a call appends its keys and arguments and is written and read
on a connection taken from this client's own idle list (at most ``MAX_CONNECTIONS`` in use, a wait
for one bounded by the timeout). redis-py's pool would check each connection it hands out for
unread data (a poll of the socket per request) and re-read the process id; here a connection is
only ever given back with its reply read in full, and one that failed is closed.
"""

import dataclasses
import hashlib
import threading
import time
from collections.abc import Callable
from collections.abc import Sequence

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
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


@dataclasses.dataclass(frozen=True)
class LuaScript:
    """A script's source, and the packed start of its ``EVALSHA`` command (name and SHA1)."""

    source: bytes
    evalsha_prefix: bytes

    @classmethod
    def of(cls, source: str) -> "LuaScript":
        """Return the script of a source, its SHA1 computed here as Redis computes it."""
        encoded = source.encode()
        sha = hashlib.sha1(encoded).hexdigest().encode()  # noqa: S324 - Redis names scripts by SHA1
        return cls(encoded, _bulk(b"EVALSHA") + _bulk(sha))

    def call(self, keys: Sequence[str], args: Sequence[str | int | bytes]) -> bytes:
        """Return the packed ``EVALSHA`` of this script with these keys and arguments."""
        parts = [_bulk(_encoded(len(keys)))]
        parts += [_bulk(_encoded(key)) for key in keys]
        parts += [_bulk(_encoded(arg)) for arg in args]
        return b"*%d\r\n" % (len(parts) + 2) + self.evalsha_prefix + b"".join(parts)

    def load(self) -> bytes:
        """Return the packed ``SCRIPT LOAD`` of this script."""
        return b"*3\r\n" + _bulk(b"SCRIPT") + _bulk(b"LOAD") + _bulk(self.source)


def _encoded(value: str | int | bytes) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, int):
        return b"%d" % value
    return value.encode()


def _bulk(value: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(value), value)


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
        pool = client.connection_pool
        self._wait_seconds = pool.connection_kwargs.get("socket_timeout") or None
        self._slots = threading.BoundedSemaphore(getattr(pool, "max_connections", MAX_CONNECTIONS))
        self._idle: list[AbstractConnection] = []

    def script(self, source: str) -> LuaScript:
        """Register a script: it is called with EVALSHA, and loaded again if Redis answers NOSCRIPT."""
        return LuaScript.of(source)

    def is_reachable(self) -> bool:
        """Return whether Redis answers a PING within the client's timeout (for readiness)."""
        try:
            return bool(self._client.ping())
        except redis.exceptions.RedisError:
            return False

    def run(self, script: LuaScript, keys: Sequence[str], args: Sequence[str | int | bytes]) -> object:
        """Run a registered script in one round trip (two after a NOSCRIPT) and return its reply."""
        if self._clock() < self._paused_until:
            raise RedisUnavailableError("paused after a recent failure")
        if not self._slots.acquire(timeout=self._wait_seconds):
            raise RedisUnavailableError("no free connection")
        try:
            connection = self._idle.pop() if self._idle else self._client.connection_pool.make_connection()
            try:
                reply = _evalsha(connection, script, keys, args)
            except BaseException:
                # Whatever was left unread on it (an interrupted call) must not answer the next one:
                # it goes back closed, and connects again when it is next used.
                connection.disconnect()
                self._idle.append(connection)
                raise
            self._idle.append(connection)
            return reply
        except redis.exceptions.RedisError as ex:
            self._paused_until = self._clock() + self._pause_seconds
            raise RedisUnavailableError(type(ex).__name__) from ex
        finally:
            self._slots.release()


def _evalsha(
    connection: AbstractConnection, script: LuaScript, keys: Sequence[str], args: Sequence[str | int | bytes]
) -> object:
    """Run a script on a connection; load it and run it again if Redis no longer has it."""
    command = script.call(keys, args)
    connection.send_packed_command((command,), check_health=False)
    try:
        return connection.read_response()
    except redis.exceptions.NoScriptError:
        connection.send_packed_command((script.load(),), check_health=False)
        connection.read_response()
        connection.send_packed_command((command,), check_health=False)
        return connection.read_response()
