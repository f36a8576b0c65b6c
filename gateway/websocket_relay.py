"""Relaying a switched connection: the client's socket and the admin server's, bytes both ways.

gunicorn's workers hand the app the client's socket as ``environ["gunicorn.socket"]``. The
WebSocket route answers ``101`` and leaves a ``WebSocketRelay`` in the environ (``hand_over``);
Falcon sends no body with a 101, so ``UpgradableApp`` returns the relay to gunicorn as the body.
gunicorn writes the 101 head on the relay's first (empty) chunk, and the relay then copies bytes
until either side closes: the frames pass through unchanged. Closing the relay shuts the client's
socket down, so gunicorn's keep-alive loop reads the end of the connection and closes it quietly.

A relay holds its connection for its whole life, so it runs only where sockets are cooperative
(gevent's worker): two greenlets, one per direction. A write that makes no progress for the write
timeout ends the relay, so a client that stops reading does not hold the upstream stream.
"""

import contextlib
import logging
import socket
import sys
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

import falcon
import gevent
import gevent.event

from gateway import open_streams
from gateway.admin_websocket import UpstreamWebSocket

logger = logging.getLogger(__name__)

RELAY_ENVIRON_KEY = "taskgate.websocket_relay"
# Once one side has closed, the other gets this long to finish the closing handshake.
CLOSE_GRACE_SECONDS = 5.0
_READ_SIZE = 64 * 1024
_SWITCHING_PROTOCOLS = "101 "


def sockets_are_cooperative() -> bool:
    """Whether gevent has patched sockets (gunicorn's gevent worker), so a relay costs a greenlet."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


class WebSocketRelay:
    """The body of a 101 response: the head is flushed, then bytes are relayed until a side closes."""

    def __init__(
        self, client: socket.socket, upstream: UpstreamWebSocket, write_timeout_seconds: float
    ) -> None:
        self._client = client
        self._upstream = upstream
        self._write_timeout = write_timeout_seconds
        self._switched = False
        open_streams.opened(self)

    def __iter__(self) -> Iterator[bytes]:
        """Yield nothing (gunicorn sends the 101 head on it), then relay until the connection ends."""
        self._switched = True
        yield b""
        relay(self._client, self._upstream.sock, self._upstream.pending, self._write_timeout)

    def close(self) -> None:
        """Close the upstream; once switched, shut the client's connection down so gunicorn ends it."""
        self._upstream.close()
        if self._switched:
            _shutdown(self._client, socket.SHUT_RDWR)
        open_streams.closed(self)

    def end(self) -> None:
        """End the relay from outside: the upstream's end reaches the client, then both close."""
        _shutdown(self._upstream.sock, socket.SHUT_RDWR)


def relay(client: socket.socket, upstream: socket.socket, pending: bytes, write_timeout: float) -> None:
    """Copy bytes both ways until one side closes (or stalls), then give the other the close grace."""
    one_side_done = gevent.event.Event()

    def pump(source: socket.socket, sink: socket.socket, first: bytes, sink_name: str) -> None:
        try:
            data = first
            while True:
                if data and not _send_within(sink, data, write_timeout):
                    logger.warning("stream cut off: the %s stopped reading", sink_name)
                    return
                data = source.recv(_READ_SIZE)
                if not data:
                    return
        except OSError:
            return
        finally:
            _shutdown(sink, socket.SHUT_WR)
            one_side_done.set()

    pumps = [
        gevent.spawn(pump, upstream, client, pending, "client"),
        gevent.spawn(pump, client, upstream, b"", "admin server"),
    ]
    try:
        one_side_done.wait()
        gevent.joinall(pumps, timeout=CLOSE_GRACE_SECONDS)
    finally:
        for sock in (client, upstream):
            _shutdown(sock, socket.SHUT_RDWR)
        gevent.killall(pumps)


def hand_over(environ: dict[str, Any], body: Iterable[bytes]) -> None:
    """Leave the body that carries a switched protocol for UpgradableApp to return with the 101."""
    environ[RELAY_ENVIRON_KEY] = body


class UpgradableApp(falcon.App):
    """A Falcon WSGI app whose responders may switch protocols (101, see ``hand_over``).

    When the response is really a 101, the body a responder handed over is returned to the server;
    otherwise, say a later middleware turned the answer into an error, that body is closed and
    Falcon's answer stands.
    """

    def __call__(self, env: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        """Serve a request; see the class docstring for the switch."""
        statuses: list[str] = []

        def remember_status(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            statuses.append(status)
            return start_response(status, headers, exc_info)

        try:
            body = super().__call__(env, remember_status)
        except BaseException:
            _close(env.pop(RELAY_ENVIRON_KEY, None))
            raise
        switched = env.pop(RELAY_ENVIRON_KEY, None)
        if switched is None:
            return body
        if statuses and statuses[-1].startswith(_SWITCHING_PROTOCOLS):
            return switched
        _close(switched)
        return body


def _send_within(sock: socket.socket, data: bytes, seconds: float) -> bool:
    """Send all of ``data``; False when it made no full progress within ``seconds``."""
    with gevent.Timeout(seconds, False):
        sock.sendall(data)
        return True
    return False


def _close(body: Iterable[bytes] | None) -> None:
    close = getattr(body, "close", None)
    if close is not None:
        close()


def _shutdown(sock: socket.socket, how: int) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(how)
