"""Client of the admin stream server's ``/stream/ws``: the client's upgrade request, forwarded for a caller.

The request carries the client's handshake (key, version, subprotocols, extensions) and the headers
of every admin stream request (service token, caller identity, resume point). A refusal, an HTTP
error instead of ``101``, becomes the gateway's own error before the client's connection is
upgraded; a ``101`` leaves an open socket for the relay (gateway.websocket_relay).
"""

import contextlib
import dataclasses
import logging
import socket
import ssl
import urllib.parse

from gateway.admin_stream import StreamRequest
from gateway.admin_stream import log_failed_before_answering
from gateway.admin_stream import refusal_error
from gateway.admin_stream import stream_headers
from gateway.admin_stream import stream_query
from gateway.caller import CallContext
from gateway.errors import orchestrator_timeout
from gateway.errors import orchestrator_unavailable
from gateway.websocket_handshake import ClientHandshake
from gateway.websocket_handshake import HandshakeResponse
from gateway.websocket_handshake import accept_value
from gateway.websocket_handshake import parse_response_head
from gateway.websocket_handshake import upgrade_request
from taskgate import wire

logger = logging.getLogger(__name__)

_HEAD_END = b"\r\n\r\n"
_MAX_HEAD_BYTES = 16 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
_READ_SIZE = 16 * 1024
_DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass
class UpstreamWebSocket:
    """An admin server connection that switched to WebSocket, and what it answered.

    ``pending`` holds the bytes that came right after the handshake's head (the first frames);
    they are the client's before anything else read from ``sock``.
    """

    sock: socket.socket
    response: HandshakeResponse
    pending: bytes = b""

    def close(self) -> None:
        """Close the connection to the admin server."""
        with contextlib.suppress(OSError):
            self.sock.close()


class AdminWebSocketClient:
    """Opens ``{admin_url}/stream/ws`` for a caller, with the service token and identity headers."""

    def __init__(
        self,
        admin_url: str,
        service_token: str,
        timeout_seconds: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(admin_url)
        self._https = parts.scheme == "https"
        # An https admin URL is verified with this context (taskgate.tls), else the system's CAs.
        self._ssl_context = ssl_context
        self._host = parts.hostname or ""
        self._port = parts.port or _DEFAULT_PORTS[parts.scheme]
        self._host_header = parts.netloc.rpartition("@")[2]
        self._path = parts.path.rstrip("/") + wire.ADMIN_WEBSOCKET_PATH
        self._service_token = service_token
        self._timeout = timeout_seconds

    def open(
        self, request: StreamRequest, context: CallContext, handshake: ClientHandshake
    ) -> UpstreamWebSocket:
        """Forward the handshake; return the switched connection, else raise the error (503, 504, 4xx)."""
        target = f"{self._path}?{stream_query(request)}"
        try:
            message = upgrade_request(
                self._host_header, target, handshake, stream_headers(self._service_token, request, context)
            )
        except ValueError:
            logger.error("cannot forward the WebSocket handshake", extra={"request_id": context.request_id})
            raise orchestrator_unavailable() from None
        sock = self._connect(context)
        try:
            sock.sendall(message)
            head, pending = _read_head(sock)
            response = parse_response_head(head)
        except TimeoutError:
            sock.close()
            raise orchestrator_timeout() from None
        except (OSError, ValueError) as ex:
            sock.close()
            log_failed_before_answering(context, ex)
            raise orchestrator_unavailable() from None
        if response.status != 101:
            body = _read_body(sock, response, pending)
            sock.close()
            raise refusal_error(response.status, body, context)
        if response.header("Sec-WebSocket-Accept") != accept_value(handshake.key):
            sock.close()
            logger.error(
                "admin stream server sent a wrong WebSocket accept", extra={"request_id": context.request_id}
            )
            raise orchestrator_unavailable()
        sock.settimeout(None)
        return UpstreamWebSocket(sock=sock, response=response, pending=pending)

    def _connect(self, context: CallContext) -> socket.socket:
        try:
            sock = socket.create_connection((self._host, self._port), timeout=self._timeout)
        except OSError:
            logger.warning("admin stream server unreachable", extra={"request_id": context.request_id})
            raise orchestrator_unavailable() from None
        if not self._https:
            return sock
        try:
            context = self._ssl_context or ssl.create_default_context()
            return context.wrap_socket(sock, server_hostname=self._host)
        except OSError:
            sock.close()
            logger.warning(
                "admin stream server TLS handshake failed", extra={"request_id": context.request_id}
            )
            raise orchestrator_unavailable() from None


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Read up to the blank line that ends a response's head; return the head and the bytes after it."""
    buffer = b""
    while (end := buffer.find(_HEAD_END)) < 0:
        if len(buffer) > _MAX_HEAD_BYTES:
            raise ValueError("response head too long")
        chunk = sock.recv(_READ_SIZE)
        if not chunk:
            raise ValueError("connection closed before the response head ended")
        buffer += chunk
    return buffer[:end], buffer[end + len(_HEAD_END) :]


def _read_body(sock: socket.socket, response: HandshakeResponse, received: bytes) -> bytes:
    """Read a refusal's body (Content-Length, else to the end), at most _ERROR_BODY_LIMIT bytes."""
    length = response.header("Content-Length")
    wanted = int(length) if length and length.isdigit() else _ERROR_BODY_LIMIT
    wanted = min(wanted, _ERROR_BODY_LIMIT)
    body = received
    with contextlib.suppress(OSError):
        while len(body) < wanted:
            chunk = sock.recv(_READ_SIZE)
            if not chunk:
                break
            body += chunk
    return body[:wanted]
