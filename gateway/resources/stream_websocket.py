"""``GET /api/v1/stream/ws``: the live event stream as WebSocket, relayed from the admin stream server.

The parameters are those of ``/api/v1/stream/sse``. Every refusal (400, 401, 404, 426, 501, 503)
is a plain HTTP error with the gateway's body, answered before the connection is upgraded. Once the
admin server has accepted the handshake, the gateway answers 101 with its accept value and relays
the connection's bytes both ways (gateway.websocket_relay).
"""

from typing import Protocol

import falcon

from gateway.admin_stream import StreamRequest
from gateway.admin_websocket import UpstreamWebSocket
from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.client_write_deadline import GUNICORN_SOCKET
from gateway.errors import ApiError
from gateway.metrics import CountedStream
from gateway.resources.stream import stream_request
from gateway.websocket_handshake import ClientHandshake
from gateway.websocket_handshake import client_handshake
from gateway.websocket_relay import WebSocketRelay
from gateway.websocket_relay import hand_over
from gateway.websocket_relay import sockets_are_cooperative

# Headers of the admin server's 101 that the client gets as they are (besides Upgrade/Connection).
_NEGOTIATED_HEADERS = ("Sec-WebSocket-Accept", "Sec-WebSocket-Protocol", "Sec-WebSocket-Extensions")


class WebSocketOpener(Protocol):
    """The admin stream server's WebSocket route, as this resource needs it."""

    def open(
        self, request: StreamRequest, context: CallContext, handshake: ClientHandshake
    ) -> UpstreamWebSocket:
        """Forward the handshake; return the switched connection or raise the error to answer with."""


def websocket_unsupported() -> ApiError:
    """Return the 501 of a gateway whose workers cannot hold WebSocket connections (gthread)."""
    return ApiError(
        501,
        "WebSocket streams need the gateway's gevent worker (TASKGATE_GATEWAY_WORKER_CLASS=gevent); "
        "use /api/v1/stream/sse instead",
        "websocket_unsupported",
    )


class StreamWebSocketResource:
    """Relay a workflow's events over WebSocket: one text message per event, then a close."""

    def __init__(self, admin: WebSocketOpener, write_timeout_seconds: float) -> None:
        self._admin = admin
        self._write_timeout = write_timeout_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Check the request, have the admin server accept the handshake, then switch and relay."""
        request = stream_request(req)
        handshake = client_handshake(req)
        client = req.env.get(GUNICORN_SOCKET)
        if client is None or not sockets_are_cooperative():
            raise websocket_unsupported()
        upstream = self._admin.open(request, call_context(req), handshake)
        resp.status = falcon.HTTP_101
        resp.set_header("Upgrade", "websocket")
        resp.set_header("Connection", "Upgrade")
        for name in _NEGOTIATED_HEADERS:
            value = upstream.response.header(name)
            if value:
                resp.set_header(name, value)
        hand_over(req.env, CountedStream(WebSocketRelay(client, upstream, self._write_timeout)))
