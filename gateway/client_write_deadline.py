"""A deadline on each write of a streamed response: a client that stops reading is cut off.

An event stream's client that stops reading fills the socket buffers, and then the worker's next
write to it blocks forever, holding the upstream stream (and its subscription) open with it. The
gunicorn workers hand the client socket to the app as ``environ["gunicorn.socket"]``; a timeout on
it makes a write that makes no progress for that long fail, which ends the response and closes the
upstream stream (the body's ``close()``). The client resumes later with ``Last-Event-ID``.
"""

import contextlib
import logging
import socket
from collections.abc import Iterable
from collections.abc import Iterator
from typing import Any

GUNICORN_SOCKET = "gunicorn.socket"
# gunicorn's error-log line for a socket error while it writes a response (workers/base_async.py).
_GUNICORN_SOCKET_ERROR = "Socket error processing request."
STALLED_CLIENT_MESSAGE = "stream cut off: the client stopped reading"


class WriteDeadline:
    """A response body whose writes to the client must each finish within ``timeout_seconds``.

    The timeout is set on the client socket for the body's life and the socket's earlier timeout
    is put back on ``close()``, so a keep-alive connection that follows is not affected.
    """

    def __init__(self, body: Iterable[bytes], environ: dict[str, Any], timeout_seconds: float) -> None:
        self._body = body
        self._socket: socket.socket | None = environ.get(GUNICORN_SOCKET)
        self._previous_timeout: float | None = None
        if self._socket is not None:
            self._previous_timeout = self._socket.gettimeout()
            self._socket.settimeout(timeout_seconds)

    def __iter__(self) -> Iterator[bytes]:
        """Iterate the wrapped body."""
        return iter(self._body)

    def close(self) -> None:
        """Close the wrapped body and give the socket its earlier timeout back."""
        try:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()
        finally:
            if self._socket is not None:
                with contextlib.suppress(OSError):  # the connection is already closed
                    self._socket.settimeout(self._previous_timeout)
                self._socket = None


class StalledClientLogFilter(logging.Filter):
    """Turn gunicorn's traceback for a write that timed out into one warning line.

    A write deadline that expires is how a stalled client is cut off, not a fault; gunicorn logs
    every socket error other than a reset or broken pipe with its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record when it is gunicorn's socket error for a timed-out write."""
        exc_info = record.exc_info
        if record.msg == _GUNICORN_SOCKET_ERROR and exc_info and isinstance(exc_info[1], TimeoutError):
            record.msg, record.args = STALLED_CLIENT_MESSAGE, ()
            record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
            record.exc_info, record.exc_text = None, None
        return True
