"""The gateway's Redis connection: short timeouts, scripts by EVALSHA, a pause after each failure.

One client per worker process, made when the app is built (after gunicorn's fork). The sync
redis-py client is used: under the gevent worker its sockets are gevent's, so a call yields to
other requests instead of blocking the worker; under gthread each thread has its own connection.
A request never waits on Redis for longer than the socket timeout, and after a failure every call
fails at once for ``PAUSE_SECONDS`` rather than each request paying the timeout again while Redis
is down.

Scripts, which every limited request runs, skip redis-py's command path: each is packed once into
the bytes of its ``EVALSHA`` prefix, a call appends its keys and arguments (or, for a call made
again and again, only the one argument that differs: ``PackedCall``) and is written and read on a
connection of this client's own. redis-py makes each connection (handshake, AUTH, TLS, a unix
socket); after that a call is one ``send`` on its socket and reads parsed by hiredis, without
redis-py's connection layer or gevent's ``sendall`` (which asks the socket's buffer size with a
system call every time). At most ``MAX_CONNECTIONS`` are in use, and a wait for one is bounded by
the timeout: the free slots are tokens in a ``queue.SimpleQueue`` (under gevent, gevent's), a
tenth of a microsecond a call where a ``threading.BoundedSemaphore`` costs five. A connection is
only ever given back with its reply read in full, and one that failed is closed and opened again
when it is next used.
"""

import dataclasses
import hashlib
import queue
import time
from collections.abc import Callable
from collections.abc import Sequence

import hiredis
import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.connection import AbstractConnection
from redis.retry import Retry

PAUSE_SECONDS = 1.0
MAX_CONNECTIONS = 64
_READ_SIZE = 65536


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
class PackedCall:
    """A script's ``EVALSHA`` packed but for its first argument, which each call supplies."""

    head: bytes
    tail: bytes

    def command(self, first_argument: str) -> bytes:
        """Return the packed command with this first argument."""
        return self.head + _bulk(first_argument.encode()) + self.tail


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

    def packed_call(self, keys: Sequence[str], later_args: Sequence[str | int | bytes]) -> PackedCall:
        """Return this script's call with these keys and, after a first argument left open, these."""
        head = [_bulk(_encoded(len(keys)))] + [_bulk(_encoded(key)) for key in keys]
        tail = [_bulk(_encoded(arg)) for arg in later_args]
        count = b"*%d\r\n" % (len(head) + len(tail) + 3)
        return PackedCall(count + self.evalsha_prefix + b"".join(head), b"".join(tail))

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


class _ScriptConnection:
    """One connection to Redis: redis-py opens it, its socket is then written and read here."""

    def __init__(self, connection: AbstractConnection) -> None:
        self._connection = connection
        self._socket = None
        self._reader: hiredis.Reader | None = None
        self._buffer = bytearray(_READ_SIZE)

    def request(self, command: bytes) -> object:
        """Send one command and return its reply; a reply Redis reports as an error is returned too."""
        if self._socket is None:
            self._connection.connect()
            # redis-py keeps the socket it opened here (checked with redis-py 8.2, the version installed).
            self._socket = self._connection._sock
            self._reader = hiredis.Reader()
        sent = self._socket.send(command)
        if sent < len(command):
            self._socket.sendall(command[sent:])
        reader = self._reader
        while True:
            reply = reader.gets()
            if reply is False:
                received = self._socket.recv_into(self._buffer)
                if not received:
                    raise redis.exceptions.ConnectionError("Redis closed the connection")
                reader.feed(self._buffer, 0, received)
            elif not isinstance(reply, hiredis.PushNotification):
                return reply

    def close(self) -> None:
        """Close the socket (whatever was left unread on it goes too); the next request opens it again."""
        self._socket = None
        self._reader = None
        self._connection.disconnect()


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
        # One token per connection that may be in use; looked up now, so gevent's when patched.
        self._slots = queue.SimpleQueue()
        for _ in range(getattr(pool, "max_connections", MAX_CONNECTIONS)):
            self._slots.put(True)
        self._idle: list[_ScriptConnection] = []

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
        return self.run_packed(script, script.call(keys, args))

    def run_packed(self, script: LuaScript, command: bytes) -> object:
        """Run a packed ``EVALSHA`` of a script (``LuaScript.call``, ``PackedCall.command``)."""
        if self._clock() < self._paused_until:
            raise RedisUnavailableError("paused after a recent failure")
        try:
            self._slots.get(timeout=self._wait_seconds)
        except queue.Empty:
            raise RedisUnavailableError("no free connection") from None
        try:
            connection = (
                self._idle.pop()
                if self._idle
                else _ScriptConnection(self._client.connection_pool.make_connection())
            )
            try:
                reply = _evalsha(connection, script, command)
            except BaseException:
                # Whatever was left unread on it (an interrupted call) must not answer the next one:
                # it goes back closed, and connects again when it is next used.
                connection.close()
                self._idle.append(connection)
                raise
            self._idle.append(connection)
            return reply
        except (redis.exceptions.RedisError, hiredis.HiredisError, OSError) as ex:
            self._paused_until = self._clock() + self._pause_seconds
            raise RedisUnavailableError(type(ex).__name__) from ex
        finally:
            self._slots.put(True)


def _evalsha(connection: _ScriptConnection, script: LuaScript, command: bytes) -> object:
    """Run a script on a connection; load it and run it again if Redis no longer has it."""
    reply = connection.request(command)
    if isinstance(reply, hiredis.ReplyError):
        if not str(reply).startswith("NOSCRIPT"):
            raise redis.exceptions.ResponseError(str(reply))
        loaded = connection.request(script.load())
        if isinstance(loaded, hiredis.ReplyError):
            raise redis.exceptions.ResponseError(str(loaded))
        reply = connection.request(command)
        if isinstance(reply, hiredis.ReplyError):
            raise redis.exceptions.ResponseError(str(reply))
    return reply
