"""Client of the orchestrator's admin stream server: open an SSE stream and relay it frame by frame.

It uses ``http.client``, whose sockets gevent's monkey patching makes cooperative (and which works
as plain blocking I/O under gthread). An https admin URL is verified with the given TLS context
(the CA and client certificate of taskgate.tls), else with the system's trusted CAs. Errors before
the first byte become the gateway's own error responses; once streaming, an upstream failure just
ends the stream.
"""

import contextlib
import dataclasses
import http.client
import json
import logging
import socket
import ssl
import urllib.parse

from gateway import open_streams
from gateway.caller import CallContext
from gateway.caller import identity_headers
from gateway.errors import ApiError
from gateway.errors import error_for_status
from gateway.errors import insufficient_scope
from gateway.errors import orchestrator_timeout
from gateway.errors import orchestrator_unavailable
from taskgate import wire
from taskgate.scopes import is_known_scope

logger = logging.getLogger(__name__)

_ERROR_BODY_LIMIT = 64 * 1024
_READ_SIZE = 64 * 1024
# The buffer of an upstream stream's reader. http.client's default (8 KiB, io.DEFAULT_BUFFER_SIZE)
# is held by every open stream for its whole life; an SSE frame is a few hundred bytes, and a
# longer one is read in a few more calls.
UPSTREAM_BUFFER_BYTES = 2048
# An upstream frame longer than this is not SSE we understand; the stream is ended.
_MAX_FRAME_BYTES = 1024 * 1024
_FRAME_ENDINGS = (b"\r\n\r\n", b"\n\n", b"\r\r")


@dataclasses.dataclass(frozen=True)
class StreamRequest:
    """Which events a client asked for: the workflow, an optional type filter, a resume point."""

    workflow_id: str
    types: tuple[str, ...] = ()
    last_event_id: int | None = None


class _StreamResponse(http.client.HTTPResponse):
    """An upstream response read through a ``UPSTREAM_BUFFER_BYTES`` buffer instead of 8 KiB."""

    def __init__(self, sock, *args, **kwargs) -> None:
        super().__init__(sock, *args, **kwargs)
        self.fp.close()
        self.fp = sock.makefile("rb", buffering=UPSTREAM_BUFFER_BYTES)


class SseFrames:
    """An iterator over the complete SSE frames of an upstream response, each yielded on arrival.

    It is the WSGI response body: the server calls ``close()`` when the response ends or the client
    goes away, which closes the upstream connection (even if iteration never started).
    """

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self._connection = connection
        self._response = response
        self._buffer = bytearray()
        self._closed = False
        open_streams.opened(self)

    def __iter__(self) -> "SseFrames":
        """Return the iterator itself."""
        return self

    def __next__(self) -> bytes:
        """Return the next complete frame, reading from upstream only as much as has arrived."""
        while True:
            end = _frame_end(self._buffer)
            if end:
                frame = bytes(self._buffer[:end])
                del self._buffer[:end]
                return frame
            if self._closed or len(self._buffer) > _MAX_FRAME_BYTES:
                self.close()
                raise StopIteration
            try:
                chunk = self._response.read1(_READ_SIZE)
            except (OSError, http.client.HTTPException) as ex:
                logger.warning("upstream stream ended with an error", extra={"error_type": type(ex).__name__})
                chunk = b""
            if not chunk:
                # An incomplete frame at the end of the stream is discarded, as the SSE spec says.
                self.close()
                raise StopIteration
            self._buffer += chunk

    def close(self) -> None:
        """Close the upstream response and connection."""
        self._closed = True
        self._response.close()
        self._connection.close()
        open_streams.closed(self)

    def end(self) -> None:
        """End the stream from outside: a read waiting on upstream returns at once, and the relay ends."""
        self._closed = True
        sock = self._connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class AdminStreamClient:
    """Opens ``{admin_url}/stream/sse`` or ``/stream/tasks`` for a caller, with service token and caller."""

    def __init__(
        self,
        admin_url: str,
        service_token: str,
        connect_timeout_seconds: float,
        read_timeout_seconds: float = 60.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        parts = urllib.parse.urlsplit(admin_url)
        self._https = parts.scheme == "https"
        self._ssl_context = ssl_context
        self._host = parts.hostname
        self._port = parts.port
        self._path = parts.path.rstrip("/") + wire.ADMIN_SSE_PATH
        self._feed_path = parts.path.rstrip("/") + wire.ADMIN_TASK_FEED_PATH
        self._service_token = service_token
        self._connect_timeout = connect_timeout_seconds
        self._read_timeout = read_timeout_seconds

    def open(self, request: StreamRequest, context: CallContext) -> SseFrames:
        """Open a workflow's stream; raise the client's error (503, 504, or upstream 4xx) before any byte."""
        return self._open(f"{self._path}?{stream_query(request)}", self._headers(request, context), context)

    def open_task_feed(self, last_event_id: int | None, context: CallContext) -> SseFrames:
        """Open the caller's task feed (``/stream/tasks``) after ``last_event_id``; errors as ``open``'s."""
        headers = {
            "Accept": "text/event-stream",
            **caller_headers(self._service_token, context),
            **resume_header(last_event_id),
        }
        return self._open(self._feed_path, headers, context)

    def _open(self, target: str, headers: dict[str, str], context: CallContext) -> SseFrames:
        if self._https:
            connection = http.client.HTTPSConnection(
                self._host, self._port, timeout=self._connect_timeout, context=self._ssl_context
            )
        else:
            connection = http.client.HTTPConnection(self._host, self._port, timeout=self._connect_timeout)
        connection.response_class = _StreamResponse
        try:
            connection.connect()
        except ssl.SSLError:
            connection.close()
            logger.warning(
                "admin stream server TLS handshake failed", extra={"request_id": context.request_id}
            )
            raise orchestrator_unavailable() from None
        except OSError:
            connection.close()
            logger.warning("admin stream server unreachable", extra={"request_id": context.request_id})
            raise orchestrator_unavailable() from None
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
        except TimeoutError:
            connection.close()
            raise orchestrator_timeout() from None
        except (OSError, http.client.HTTPException) as ex:
            connection.close()
            log_failed_before_answering(context, ex)
            raise orchestrator_unavailable() from None
        if response.status != 200:
            error = _upstream_error(response, context)
            connection.close()
            raise error
        connection.sock.settimeout(self._read_timeout)
        return SseFrames(connection, response)

    def _headers(self, request: StreamRequest, context: CallContext) -> dict[str, str]:
        return {"Accept": "text/event-stream", **stream_headers(self._service_token, request, context)}


def log_failed_before_answering(context: CallContext, ex: Exception) -> None:
    """Log an admin server connection that broke, or answered garbage, before its answer's head ended.

    Over TLS 1.3 this is also how a server refusing the gateway's client certificate shows: the
    handshake completes on the client's side and the server closes the connection after it.
    """
    logger.warning(
        "admin stream server connection failed before its answer",
        extra={"request_id": context.request_id, "error_type": type(ex).__name__},
    )


def stream_query(request: StreamRequest) -> str:
    """Return the query string of an admin stream request (``workflow_id`` and ``types``)."""
    query = {"workflow_id": request.workflow_id}
    if request.types:
        query["types"] = ",".join(request.types)
    return urllib.parse.urlencode(query)


def stream_headers(service_token: str, request: StreamRequest, context: CallContext) -> dict[str, str]:
    """Return the headers of an admin stream request: service token, request id, caller, resume point."""
    return {**caller_headers(service_token, context), **resume_header(request.last_event_id)}


def caller_headers(service_token: str, context: CallContext) -> dict[str, str]:
    """Return the service token, request id, trace context and caller's identity headers."""
    headers = {wire.SERVICE_TOKEN: service_token, wire.REQUEST_ID: context.request_id}
    if context.traceparent:
        headers[wire.TRACEPARENT] = context.traceparent
    if context.principal is not None:
        headers.update(identity_headers(context.principal))
    return headers


def resume_header(last_event_id: int | None) -> dict[str, str]:
    """Return the ``Last-Event-ID`` header of a resume point (none without one)."""
    return {} if last_event_id is None else {"Last-Event-ID": str(last_event_id)}


def _frame_end(buffer: bytearray) -> int:
    """Return the index just past the first frame terminator in the buffer, 0 when there is none."""
    ends = [index + len(ending) for ending in _FRAME_ENDINGS if (index := buffer.find(ending)) >= 0]
    return min(ends, default=0)


def _upstream_error(response: http.client.HTTPResponse, context: CallContext) -> ApiError:
    """Turn a refused upstream stream into the gateway's error (``refusal_error``), reading its body."""
    raw = b""
    if _passes_on(response.status):
        try:
            raw = response.read(_ERROR_BODY_LIMIT)
        except (OSError, http.client.HTTPException):
            raw = b""
    return refusal_error(response.status, raw, context)


def refusal_error(status: int, raw_body: bytes, context: CallContext) -> ApiError:
    """Turn an admin server's refusal (status and body) into the gateway's error: same status, our body.

    The admin server's 4xx messages are static strings written for clients and are passed on. A
    401 means it refused the gateway's service token, a deployment fault rather than the client's.
    """
    if not _passes_on(status):
        logger.error(
            "admin stream server refused the stream",
            extra={"status": status, "request_id": context.request_id},
        )
        return error_for_status(500 if status < 500 else status)
    default = error_for_status(status)
    try:
        body = json.loads(raw_body)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return default
    message = body.get("error")
    code = body.get("code")
    if code == wire.INSUFFICIENT_SCOPE and is_known_scope(body.get("scope")):
        return insufficient_scope(body["scope"])
    return ApiError(
        status,
        message if isinstance(message, str) and message else default.message,
        code if isinstance(code, str) and code else default.error_code,
    )


def _passes_on(status: int) -> bool:
    """Whether an upstream refusal's status (a 4xx other than 401) is passed on to the client."""
    return 400 <= status < 500 and status != 401
