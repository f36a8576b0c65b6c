"""Live events from the orchestrator to its stream processes over a local socket, without Redis.

Without Redis (the embedded SQLite set-up, ``make run``) the stream processes
(``orchestrator.stream_server``) learn of events from the orchestrator itself:

- ``EventRelay`` listens on a Unix socket (``TASKGATE_STREAM_RELAY_PATH``, mode 0600). A stream
  process connects and sends the service token as its first line; from then on it gets every
  event the orchestrator publishes, each one a line ``<workflow id> <event JSON>``. An event is
  encoded once whatever the number of stream processes, and the lines of one loop iteration go out
  in one write per process: the orchestrator's cost grows with its events and its stream
  processes, never with the watchers. A process that stops reading until ``BUFFER_LIMIT`` bytes
  wait for it is disconnected (it reconnects; its watchers fill the gap from the store).
- ``RelayingEventBus`` wraps the orchestrator's own bus: its watchers (the admin server's streams)
  are served as before, and every published event also goes to the relay.
- ``RelayedEventBus`` is the stream process's bus: one connection to the relay, and the same
  bounded per-watcher queues as the in-process bus (so a slow watcher is cut off the same way).
  Lines of workflows nobody on this process follows are dropped before they are decoded.

Every event reaches every stream process, so there is no subscription to race with: a watcher that
subscribes locally, then replays from the store, sees each event in the replay or live (or both,
the live copy dropped by seq). The store stays the source of truth: events are stored before they
are published. While the connection is down (the orchestrator restarting), live events are missed
and each watcher fills the gap from the store at its next event, or after
``streaming.STORE_CHECK_SECONDS`` of silence.
"""

import asyncio
import contextlib
import hmac
import logging
import os

from orchestrator.bus import EventBus
from orchestrator.bus import InProcessEventBus
from orchestrator.bus import Subscription
from orchestrator.events import Event
from orchestrator.redis_bus import decode_event
from orchestrator.redis_bus import encode_event

logger = logging.getLogger(__name__)

# Bytes that may wait for one stream process before it is disconnected as stuck.
BUFFER_LIMIT = 32 * 1024 * 1024
# The longest line a stream process accepts (an event with its payload), and the token line.
MAX_LINE_BYTES = 16 * 1024 * 1024
MAX_TOKEN_LINE_BYTES = 4096
RECONNECT_MIN_SECONDS = 0.05
RECONNECT_MAX_SECONDS = 2.0
# How long a stream process waits for the relay at start-up before it gives up.
CONNECT_SECONDS = 15.0
SOCKET_MODE = 0o600
# The relay's answer to a stream process that presented the right token; events follow it.
ACCEPTED_LINE = b"ok\n"


class _RelayConnection(asyncio.Protocol):
    """The orchestrator's end of one stream process's connection: token first, then events out."""

    def __init__(self, relay: "EventRelay") -> None:
        self._relay = relay
        self._transport: asyncio.WriteTransport | None = None
        self._received = bytearray()
        self._pending: list[bytes] = []
        self._flush_scheduled = False
        self.accepted = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.accepted:
            return
        self._received += data
        line_end = self._received.find(b"\n")
        if line_end < 0:
            if len(self._received) > MAX_TOKEN_LINE_BYTES:
                self.close()
            return
        if hmac.compare_digest(bytes(self._received[:line_end]), self._relay.token):
            self.accepted = True
            self._received.clear()
            self._transport.write(ACCEPTED_LINE)
            self._relay.accepted(self)
        else:
            logger.warning("stream relay connection refused: wrong service token")
            self.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self._relay.lost(self)
        self._transport = None

    def send(self, line: bytes) -> None:
        """Queue a line; the lines of one loop iteration are written together."""
        self._pending.append(line)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        transport = self._transport
        lines, self._pending = self._pending, []
        if transport is None or transport.is_closing():
            return
        if transport.get_write_buffer_size() > BUFFER_LIMIT:
            logger.warning("stream process disconnected: it stopped reading the relay")
            self.close()
            return
        transport.write(b"".join(lines))

    def close(self) -> None:
        if self._transport is not None:
            self._transport.close()


class EventRelay:
    """The orchestrator's relay listener: every published event to every connected stream process."""

    def __init__(self, path: str, service_token: str) -> None:
        self.path = path
        self.token = service_token.encode("utf-8")
        self._connections: set[_RelayConnection] = set()
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        """Listen on the socket path; raise OSError when another orchestrator is listening there."""
        if os.path.exists(self.path):
            if await _answers(self.path):
                raise OSError(f"another process listens on {self.path}")
            os.unlink(self.path)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_unix_server(lambda: _RelayConnection(self), self.path)
        os.chmod(self.path, SOCKET_MODE)

    async def close(self) -> None:
        """Stop listening, disconnect every stream process, and remove the socket file."""
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            connection.close()
        await self._server.wait_closed()
        self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    @property
    def connection_count(self) -> int:
        """How many stream processes are connected."""
        return len(self._connections)

    def accepted(self, connection: _RelayConnection) -> None:
        """Start sending events to a connection that presented the service token."""
        self._connections.add(connection)
        logger.info("stream process connected to the relay", extra={"connections": len(self._connections)})

    def lost(self, connection: _RelayConnection) -> None:
        """Forget a connection that closed."""
        self._connections.discard(connection)

    def send(self, event: Event) -> None:
        """Send an event to every connected stream process, encoded once."""
        if not self._connections:
            return
        line = event.workflow_id.encode("utf-8") + b" " + encode_event(event) + b"\n"
        for connection in self._connections:
            connection.send(line)


class RelayingEventBus(EventBus):
    """The orchestrator's bus: its own watchers served by ``inner``, every event also relayed."""

    def __init__(self, inner: EventBus, relay: EventRelay) -> None:
        self._inner = inner
        self._relay = relay

    def subscribe(self, workflow_id: str, maxsize: int) -> Subscription:
        """Subscribe on the inner bus (this process's own streams)."""
        return self._inner.subscribe(workflow_id, maxsize)

    async def publish(self, event: Event) -> None:
        """Deliver to this process's watchers, then write the event to the stream processes."""
        await self._inner.publish(event)
        self._relay.send(event)

    def watcher_count(self) -> int:
        """Return how many subscriptions this process's own streams hold."""
        return self._inner.watcher_count()

    async def close(self) -> None:
        """Close the relay; the inner bus is closed by whoever opened it."""
        await self._relay.close()


class _RelayReader(asyncio.Protocol):
    """The stream process's end: lines in, each event delivered to the local watchers of its workflow."""

    def __init__(self, bus: "RelayedEventBus") -> None:
        self._bus = bus
        self._buffer = bytearray()
        loop = asyncio.get_running_loop()
        # Resolved when the relay accepted the token; ``closed`` when the connection ends.
        self.accepted = loop.create_future()
        self.closed = loop.create_future()

    def data_received(self, data: bytes) -> None:
        buffer = self._buffer
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > MAX_LINE_BYTES:
                logger.error("stream relay sent an over-long line; reconnecting")
                buffer.clear()
                self._transport_close()
            return
        lines = bytes(buffer[:end]).split(b"\n")
        del buffer[: end + 1]
        if not self.accepted.done():
            if lines[0] + b"\n" != ACCEPTED_LINE:
                logger.error("stream relay answered something else than its acceptance")
                self._transport_close()
                return
            self.accepted.set_result(None)
            lines = lines[1:]
        for line in lines:
            self._bus.received(line)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport

    def _transport_close(self) -> None:
        self._transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.closed.done():
            self.closed.set_result(None)


class RelayedEventBus(EventBus):
    """A stream process's bus: live events from the orchestrator's relay, fanned out to local queues."""

    def __init__(self, path: str, service_token: str) -> None:
        self._path = path
        self._token = service_token.encode("utf-8")
        self._local = InProcessEventBus()
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._stopping = False
        self.reconnects = 0

    @property
    def connected(self) -> bool:
        """Whether the relay connection is up (live events arrive)."""
        return self._connected.is_set()

    async def start(self) -> None:
        """Connect to the relay and keep connected; raise ConnectionError if it never answers."""
        self._task = asyncio.create_task(self._stay_connected(), name="stream-relay-reader")
        try:
            async with asyncio.timeout(CONNECT_SECONDS):
                await self._connected.wait()
        except TimeoutError:
            await self.close()
            raise ConnectionError(f"the orchestrator's stream relay did not answer on {self._path}") from None

    async def close(self) -> None:
        """Disconnect and stop reconnecting."""
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def subscribe(self, workflow_id: str, maxsize: int) -> Subscription:
        """Start receiving the workflow's live events, buffering at most ``maxsize``."""
        return self._local.subscribe(workflow_id, maxsize)

    async def publish(self, event: Event) -> None:
        """Deliver to this process's watchers (a stream process records no events itself)."""
        self._local.deliver(event)

    def watcher_count(self) -> int:
        """Return how many subscriptions are open on this process."""
        return self._local.watcher_count()

    def received(self, line: bytes) -> None:
        """Deliver one relay line to the watchers of its workflow, decoding it only if there are some."""
        workflow_id, _, data = line.partition(b" ")
        if not self._local.subscriber_count(workflow_id.decode("utf-8", "replace")):
            return
        try:
            event = decode_event(data)
        except ValueError:
            logger.warning("malformed line from the stream relay skipped")
            return
        self._local.deliver(event)

    async def _stay_connected(self) -> None:
        loop = asyncio.get_running_loop()
        delay = RECONNECT_MIN_SECONDS
        while not self._stopping:
            try:
                transport, reader = await loop.create_unix_connection(lambda: _RelayReader(self), self._path)
            except OSError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                continue
            transport.write(self._token + b"\n")
            try:
                await asyncio.wait([reader.accepted, reader.closed], return_when=asyncio.FIRST_COMPLETED)
                if not reader.accepted.done():
                    logger.error("the stream relay refused this process: is TASKGATE_SERVICE_TOKEN the same?")
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, RECONNECT_MAX_SECONDS)
                    continue
                if self.reconnects:
                    logger.info("stream relay reconnected")
                self._connected.set()
                delay = RECONNECT_MIN_SECONDS
                await reader.closed
            finally:
                transport.close()
                self._connected.clear()
            if not self._stopping:
                self.reconnects += 1
                logger.warning("stream relay connection lost; reconnecting")


async def _answers(path: str) -> bool:
    """Whether something accepts connections on a Unix socket path."""
    try:
        _, writer = await asyncio.open_unix_connection(path)
    except (OSError, ValueError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def relaying(bus: EventBus, path: str, service_token: str) -> RelayingEventBus:
    """Return ``bus`` with its events also relayed to stream processes on ``path``, listening already.

    Raises OSError when the socket cannot be made (another orchestrator listens there, say).
    """
    relay = EventRelay(path, service_token)
    await relay.start()
    return RelayingEventBus(bus, relay)
