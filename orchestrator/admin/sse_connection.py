"""``GET /stream/sse`` served straight on an asyncio protocol; every other request handed to uvicorn.

An open SSE stream lives for minutes or hours, and with ten thousand of them what each one keeps
is most of a stream server's memory. Served through uvicorn and the Falcon ASGI app a stream holds
an h11 connection, a request-response cycle, Falcon's request and response, a chain of async
generators, two tasks and their events and queues (docs/benchmarks.md). Here a stream holds one
``AdminConnection`` (its protocol), its transport, one task and its ``EventFollower``.

Each accepted connection starts as an ``AdminConnection``. It reads the request head; a plain
``GET /stream/sse`` (HTTP/1.1, no body, no upgrade) it serves itself, with the contract of the
admin app's SSE route: the same checks (``stream_query.authorised_stream_query``, on a Falcon
request built from the head) and ``{"error", "code"}`` refusals before any byte, the same head
and chunked frames (``retry``, events, ``: ping``, the overflow frame), the same cut-offs and
metrics. Anything else (``/health``, ``/metrics``, ``/stream/ws``, other methods, malformed heads)
goes, with the bytes read so far, to uvicorn's HTTP protocol for the connection, as uvicorn itself
hands a connection to its WebSocket protocol on an upgrade; the ASGI app answers it as before.

Writes go straight to the transport. When the kernel's buffers and the transport's fill (the
client reads slowly), asyncio calls ``pause_writing`` and the next frame waits for
``resume_writing``, for at most the write timeout: a client that stops reading is cut off
(``write_stalled``). A client that leaves ends its stream at once (``connection_lost`` stops the
follower). At shutdown uvicorn's server counts these connections and their tasks like its own, so
open streams get the same grace period, then are cut.
"""

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi

from orchestrator.admin.sse import PING_FRAME
from orchestrator.admin.sse import RETRY_FRAME
from orchestrator.admin.stream_metrics import FELL_BEHIND
from orchestrator.admin.stream_metrics import WRITE_STALLED
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.stream_query import authorised_stream_query
from orchestrator.admin.stream_query import error_body
from orchestrator.events import overflow_frame
from orchestrator.streaming import EventFollower
from orchestrator.streaming import StreamOverflowError
from orchestrator.streaming import StreamSource
from taskgate import wire

logger = logging.getLogger(__name__)

# A request head longer than this is left to uvicorn (which refuses it as h11 does).
MAX_HEAD_BYTES = 16 * 1024
_HEAD_END = b"\r\n\r\n"
_SSE_PATH = wire.ADMIN_SSE_PATH.encode("ascii")
# Headers whose presence means the request is not a plain streaming GET: uvicorn takes it.
_NOT_PLAIN = (b"content-length", b"transfer-encoding", b"upgrade", b"expect")
_STREAM_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"content-type: text/event-stream\r\n"
    b"cache-control: no-cache\r\n"
    b"x-accel-buffering: no\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
_LAST_CHUNK = b"0\r\n\r\n"


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


class _WriteStalledError(Exception):
    """A frame waited longer than the write timeout for the client to read."""


class _ClientGoneError(Exception):
    """The connection closed while a frame was being written."""


class SseStreams:
    """What every lean SSE connection shares: the stream source, the service token, timings, metrics."""

    def __init__(
        self,
        engine: StreamSource,
        service_token: str,
        metrics: StreamMetrics,
        ping_seconds: float,
        write_timeout_seconds: float,
    ) -> None:
        self.engine = engine
        self.service_token = service_token.encode("utf-8")
        self.metrics = metrics
        self.ping_seconds = ping_seconds
        self.write_timeout_seconds = write_timeout_seconds


class AdminConnection(asyncio.Protocol):
    """One accepted admin connection: serves ``GET /stream/sse`` itself, hands anything else to uvicorn.

    ``hand_over`` makes the uvicorn protocol for a connection; ``server_state`` is uvicorn's
    (its ``connections`` and ``tasks``), so the server's graceful shutdown covers these streams.
    """

    __slots__ = (
        "_streams",
        "_hand_over",
        "_server_state",
        "_transport",
        "_head",
        "_task",
        "_follower",
        "_paused",
        "_drained",
        "_gone",
    )

    def __init__(
        self, streams: SseStreams, hand_over: Callable[[], asyncio.Protocol], server_state: Any
    ) -> None:
        self._streams = streams
        self._hand_over = hand_over
        self._server_state = server_state
        self._transport: asyncio.Transport | None = None
        self._head: bytearray | None = bytearray()
        self._task: asyncio.Task[None] | None = None
        self._follower: EventFollower | None = None
        self._paused = False
        self._drained: asyncio.Future[None] | None = None
        self._gone = False

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._server_state.connections.add(self)

    def data_received(self, data: bytes) -> None:
        head = self._head
        if head is None:
            # Streaming: a client sends nothing more on an event stream; whatever it sends is dropped.
            return
        head += data
        end = head.find(_HEAD_END)
        if end < 0:
            if len(head) > MAX_HEAD_BYTES:
                self._give_to_uvicorn()
            return
        request = self._plain_stream_request(bytes(head[:end]))
        if request is None or end + len(_HEAD_END) != len(head):
            # Not ours, or a pipelined request behind it: uvicorn serves the connection from here on.
            self._give_to_uvicorn()
            return
        self._head = None
        self._task = task = asyncio.get_running_loop().create_task(self._serve(request))
        tasks = self._server_state.tasks
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    def connection_lost(self, exc: Exception | None) -> None:
        self._gone = True
        self._server_state.connections.discard(self)
        if self._follower is not None:
            self._follower.stop()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        self._wake_writer()

    def shutdown(self) -> None:
        """Called by uvicorn's server at shutdown: a connection still sending its head is closed.

        An open stream goes on until the grace period ends, when its task is cancelled.
        """
        if self._head is not None and self._transport is not None:
            self._transport.close()

    # The request head

    def _plain_stream_request(self, head: bytes) -> falcon.asgi.Request | None:
        """Return the Falcon request for a plain ``GET /stream/sse``; None for anything else."""
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ")
        if len(parts) != 3 or parts[0] != b"GET" or parts[2] != b"HTTP/1.1":
            return None
        path, _, query = parts[1].partition(b"?")
        if path != _SSE_PATH:
            return None
        headers = []
        for line in lines[1:]:
            name, colon, value = line.partition(b":")
            name = name.lower()
            if not colon or not name or name != name.strip() or name in _NOT_PLAIN:
                return None
            headers.append((name, value.strip(b" \t")))
        transport = self._transport
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https" if transport.get_extra_info("sslcontext") is not None else "http",
            "path": wire.ADMIN_SSE_PATH,
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": _address(transport.get_extra_info("peername")),
            "server": _address(transport.get_extra_info("sockname")),
        }
        return falcon.asgi.Request(scope, _no_body)

    def _give_to_uvicorn(self) -> None:
        transport = self._transport
        received = bytes(self._head or b"")
        self._head = None
        self._server_state.connections.discard(self)
        protocol = self._hand_over()
        protocol.connection_made(transport)
        transport.set_protocol(protocol)
        protocol.data_received(received)

    # The stream

    async def _serve(self, request: falcon.asgi.Request) -> None:
        streams = self._streams
        transport = self._transport
        try:
            query = await authorised_stream_query(request, streams.engine, streams.service_token)
        except falcon.HTTPError as ex:
            self._refuse(ex)
            return
        except Exception:
            logger.exception("stream request failed before its answer")
            self._refuse(falcon.HTTPInternalServerError())
            return
        finally:
            del request
        if self._gone:
            return
        follower = self._follower = streams.engine.follow(
            query.workflow_id, query.after_seq, query.types, streams.ping_seconds
        )
        transport.write(_STREAM_HEAD + _chunk(RETRY_FRAME))
        metrics = streams.metrics
        try:
            with metrics.stream_open("sse"):
                await self._send_events(follower)
        except _WriteStalledError:
            metrics.cut_off(WRITE_STALLED)
            logger.warning("stream cut off: the client stopped reading", extra={"path": wire.ADMIN_SSE_PATH})
            transport.abort()
            return
        except _ClientGoneError:
            return
        except asyncio.CancelledError:
            # Shutdown's grace period is over: the stream is cut, its client resumes elsewhere.
            transport.abort()
            raise
        except Exception:
            logger.exception("stream failed")
            transport.abort()
            return
        if not self._gone:
            transport.write(_LAST_CHUNK)
            transport.close()

    async def _send_events(self, follower: EventFollower) -> None:
        events = follower.events()
        try:
            async for event in events:
                await self._send(PING_FRAME if event is None else event.sse_frame())
        except StreamOverflowError as ex:
            self._streams.metrics.cut_off(FELL_BEHIND)
            await self._send(overflow_frame(ex.last_seq))
        finally:
            await events.aclose()

    async def _send(self, frame: bytes) -> None:
        """Write one frame as a chunk; wait (at most the write timeout) while the client catches up."""
        if self._gone:
            raise _ClientGoneError
        self._transport.write(_chunk(frame))
        if not self._paused:
            return
        drained = self._drained = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(self._streams.write_timeout_seconds):
                await drained
        except TimeoutError:
            raise _WriteStalledError from None
        finally:
            self._drained = None
        if self._gone:
            raise _ClientGoneError

    def _wake_writer(self) -> None:
        drained = self._drained
        if drained is not None and not drained.done():
            drained.set_result(None)

    def _refuse(self, error: falcon.HTTPError) -> None:
        """Answer a refused stream as the admin app does: its status, ``{"error", "code"}``, then close."""
        if self._gone:
            return
        body = json.dumps(error_body(error)).encode("utf-8")
        status = falcon.code_to_http_status(error.status).encode("ascii")
        head = [b"HTTP/1.1 " + status, b"content-type: application/json", b"content-length: %d" % len(body)]
        for name, value in (error.headers or {}).items():
            head.append(f"{name}: {value}".encode("latin-1"))
        head.append(b"connection: close")
        self._transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self._transport.close()


def _chunk(frame: bytes) -> bytes:
    return b"%x\r\n%b\r\n" % (len(frame), frame)


def _address(info: Any) -> tuple[str, int] | None:
    if isinstance(info, tuple) and len(info) >= 2:
        return (str(info[0]), int(info[1]))
    return None
