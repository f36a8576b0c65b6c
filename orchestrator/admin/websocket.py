"""``GET /stream/ws``: one workflow's events, replayed then live, as WebSocket text messages.

The checks are those of ``/stream/sse`` (admin.stream_query), made before the handshake is
accepted. A refusal is answered as a plain HTTP error with the ``{"error", "code"}`` body through
the ASGI ``websocket.http.response`` extension (uvicorn has it), so the gateway can pass the status
on; a server without it can only deny the handshake (uvicorn: 403).

Each event is one text message, the JSON of the SSE frame's ``data:`` line (for STREAM_END the
Event JSON, where SSE says ``[DONE]``), serialised once per event whatever the number of watchers.
After the workflow's end the server closes with 1000; a watcher that fell behind gets the overflow
JSON and a close with 1013, and resumes with ``last_event_id``.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi

from orchestrator.admin.stream_metrics import FELL_BEHIND
from orchestrator.admin.stream_metrics import WRITE_STALLED
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.stream_query import authorised_stream_query
from orchestrator.admin.stream_query import error_body
from orchestrator.events import overflow_data
from orchestrator.streaming import EventFollower
from orchestrator.streaming import StreamOverflowError
from orchestrator.streaming import StreamSource

logger = logging.getLogger(__name__)

# The ASGI scope key under which a WebSocket responder finds the connection's guarded ``send``.
SEND_SCOPE_KEY = "taskgate.ws_send"
HTTP_RESPONSE_EXTENSION = "websocket.http.response"
NORMAL_CLOSURE = 1000
TRY_AGAIN_LATER = 1013
# Falcon's mapping of an HTTP error to a close code, used when the server cannot answer in HTTP.
_HTTP_STATUS_CLOSE_BASE = 3000
# Messages that wait for the client to read: each must go out within the write timeout.
_CLIENT_WRITES = frozenset({"websocket.send", "websocket.close"})


class WebSocketStreamResource:
    """``GET /stream/ws``: the events of ``/stream/sse``, one text message each."""

    def __init__(self, engine: StreamSource, service_token: str, metrics: StreamMetrics) -> None:
        self._engine = engine
        self._service_token = service_token.encode("utf-8")
        self._metrics = metrics

    async def on_websocket(self, req: falcon.asgi.Request, ws: falcon.asgi.WebSocket) -> None:
        """Check the caller and the parameters (refusing in HTTP), then accept and send the events."""
        try:
            query = await authorised_stream_query(req, self._engine, self._service_token)
        except falcon.HTTPError as error:
            await refuse(req, ws, error)
            return
        await ws.accept()
        with self._metrics.stream_open("ws"):
            follower = self._engine.follow(query.workflow_id, query.after_seq, query.types)
            await send_events(ws, follower, lambda: self._metrics.cut_off(FELL_BEHIND))


async def refuse(req: falcon.asgi.Request, ws: falcon.asgi.WebSocket, error: falcon.HTTPError) -> None:
    """Answer the handshake with the error's status and JSON body instead of accepting it."""
    send = req.scope.get(SEND_SCOPE_KEY)
    if send is None or HTTP_RESPONSE_EXTENSION not in req.scope.get("extensions", {}):
        await ws.close(_HTTP_STATUS_CLOSE_BASE + error.status_code)
        return
    body = json.dumps(error_body(error)).encode()
    headers = [(b"content-type", falcon.MEDIA_JSON.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "websocket.http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def send_events(
    ws: falcon.asgi.WebSocket, follower: EventFollower, on_overflow: Callable[[], None]
) -> None:
    """Send each event as a text message until the stream ends (close 1000) or the client leaves.

    One task per connection waits for the client to go away and stops the follower: a client that
    leaves ends the follow at once (closing its bus subscription), not at the next event.
    """
    client_gone = asyncio.ensure_future(_client_leaves(ws))
    client_gone.add_done_callback(lambda _: follower.stop())
    events = follower.events()
    try:
        try:
            async for event in events:
                if event is not None:
                    await ws.send_text(event.ws_message())
        except StreamOverflowError as ex:
            on_overflow()
            await ws.send_text(overflow_data(ex.last_seq))
            await ws.close(TRY_AGAIN_LATER)
            return
        if not client_gone.done():
            await ws.close(NORMAL_CLOSURE)
    except (falcon.WebSocketDisconnected, WebSocketStalledError):
        # The client left, or stopped reading and was cut off (WebSocketConnections counts that).
        return
    finally:
        client_gone.cancel()
        await events.aclose()


async def _client_leaves(ws: falcon.asgi.WebSocket) -> None:
    """Return once the client has gone away; anything it sends meanwhile is read and ignored."""
    while True:
        try:
            await ws.receive_data()
        except falcon.PayloadTypeError:
            continue
        except falcon.WebSocketDisconnected:
            return


class WebSocketStalledError(OSError):
    """A WebSocket send made no progress for the write timeout: the client stopped reading.

    An OSError, as ASGI servers raise for a send on a closed connection, so Falcon reports it to
    the responder as ``WebSocketDisconnected``.
    """


class WebSocketConnections:
    """ASGI wrapper for WebSocket connections: HTTP refusals of the handshake, and stalled clients.

    It hands responders a ``send`` (``scope[SEND_SCOPE_KEY]``) for answering the handshake with an
    HTTP response. Each message send must finish within ``write_timeout_seconds``: a client that
    stops reading is cut off (counted as WRITE_STALLED). Once the connection is over, refused or
    cut off, whatever else the app sends (Falcon's closing close) is dropped.
    """

    def __init__(
        self, app: Callable[..., Awaitable[None]], metrics: StreamMetrics, write_timeout_seconds: float
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._write_timeout = write_timeout_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "websocket":
            await self.app(scope, receive, send)
            return
        over = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal over
            if over:
                return
            if message["type"] not in _CLIENT_WRITES:
                await send(message)
                over = message["type"] == "websocket.http.response.body" and not message.get("more_body")
                return
            try:
                async with asyncio.timeout(self._write_timeout):
                    await send(message)
            except TimeoutError:
                over = True
                self._metrics.cut_off(WRITE_STALLED)
                logger.warning(
                    "stream cut off: the client stopped reading", extra={"path": scope.get("path")}
                )
                raise WebSocketStalledError("the client stopped reading") from None

        await self.app({**scope, SEND_SCOPE_KEY: guarded_send}, receive, guarded_send)
