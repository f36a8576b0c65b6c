"""``GET /api/v1/stream/sse`` and ``/api/v1/stream/tasks``: streams relayed from the admin stream server."""

from typing import Protocol

import falcon

from gateway.admin_stream import SseFrames
from gateway.admin_stream import StreamRequest
from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.client_write_deadline import WriteDeadline
from gateway.metrics import CountedStream
from gateway.validation import FieldErrors
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.stream_parameters import parse_last_event_id
from taskgate.stream_parameters import parse_types


class StreamOpener(Protocol):
    """The admin stream server, as the stream route needs it."""

    def open(self, request: StreamRequest, context: CallContext) -> SseFrames:
        """Open the upstream stream or raise the error to answer with."""

    def open_task_feed(self, last_event_id: int | None, context: CallContext) -> SseFrames:
        """Open the caller's task feed upstream or raise the error to answer with."""


def stream_request(req: falcon.Request) -> StreamRequest:
    """Check the stream query (and Last-Event-ID header, which wins) and build the stream request."""
    errors = FieldErrors()
    workflow_id = req.get_param("workflow_id")
    if not is_valid_id(workflow_id):
        errors.add("workflow_id", f"is required and {ID_RULE}")
    types: tuple[str, ...] = ()
    try:
        types = parse_types(req.get_param("types"))
    except ValueError as ex:
        errors.add("types", str(ex))
    last_event_id = resume_point(req, errors)
    errors.raise_if_any()
    return StreamRequest(workflow_id=workflow_id, types=types, last_event_id=last_event_id)


def resume_point(req: falcon.Request, errors: FieldErrors) -> int | None:
    """Return the Last-Event-ID header, else the ``last_event_id`` parameter, else None; note a bad one."""
    header = (req.get_header("Last-Event-ID") or "").strip()
    if header:
        field, raw_last_event_id = "Last-Event-ID", header
    else:
        field, raw_last_event_id = "last_event_id", req.get_param("last_event_id")
    if raw_last_event_id is None:
        return None
    try:
        return parse_last_event_id(raw_last_event_id)
    except ValueError as ex:
        errors.add(field, str(ex))
        return None


class StreamResource:
    """Relay a workflow's events as Server-Sent Events, one frame flushed per event."""

    def __init__(self, admin_stream: StreamOpener, write_timeout_seconds: float) -> None:
        self._admin_stream = admin_stream
        self._write_timeout_seconds = write_timeout_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Open the upstream stream (its refusals become our error body) and stream its frames."""
        frames = self._admin_stream.open(stream_request(req), call_context(req))
        relay(frames, req, resp, self._write_timeout_seconds)


class TaskFeedResource:
    """``GET /api/v1/stream/tasks``: relay the caller's task feed, one frame flushed per change."""

    def __init__(self, admin_stream: StreamOpener, write_timeout_seconds: float) -> None:
        self._admin_stream = admin_stream
        self._write_timeout_seconds = write_timeout_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Open the upstream feed after the resume point (its refusals become our error body) and relay it."""
        errors = FieldErrors()
        last_event_id = resume_point(req, errors)
        errors.raise_if_any()
        frames = self._admin_stream.open_task_feed(last_event_id, call_context(req))
        relay(frames, req, resp, self._write_timeout_seconds)


def relay(
    frames: SseFrames, req: falcon.Request, resp: falcon.Response, write_timeout_seconds: float
) -> None:
    """Make an upstream stream the response, flushed per frame and cut off when the client stops reading."""
    resp.content_type = "text/event-stream"
    resp.set_header("Cache-Control", "no-cache")
    resp.set_header("X-Accel-Buffering", "no")
    resp.stream = CountedStream(WriteDeadline(frames, req.env, write_timeout_seconds))
