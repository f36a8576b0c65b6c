"""``GET /api/v1/stream/sse``: the live event stream, reverse-proxied from the admin stream server."""

import re
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

_EVENT_TYPE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_EVENT_ID = re.compile(r"^[0-9]{1,18}$")


class StreamOpener(Protocol):
    """The admin stream server, as the stream route needs it."""

    def open(self, request: StreamRequest, context: CallContext) -> SseFrames:
        """Open the upstream stream or raise the error to answer with."""


def stream_request(req: falcon.Request) -> StreamRequest:
    """Check the stream query (and Last-Event-ID header, which wins) and build the stream request."""
    errors = FieldErrors()
    workflow_id = req.get_param("workflow_id")
    if not is_valid_id(workflow_id):
        errors.add("workflow_id", f"is required and {ID_RULE}")
    types: tuple[str, ...] = ()
    raw_types = req.get_param("types")
    if raw_types is not None:
        types = tuple(item.strip() for item in raw_types.split(","))
        if not all(_EVENT_TYPE.match(item) for item in types):
            errors.add("types", "must be a comma-separated list of event types such as LLM_OUTPUT")
    last_event_id = None
    header = req.get_header("Last-Event-ID") or None
    raw_last_event_id = header if header is not None else req.get_param("last_event_id")
    if raw_last_event_id is not None:
        field = "Last-Event-ID" if header is not None else "last_event_id"
        if _EVENT_ID.match(raw_last_event_id.strip()):
            last_event_id = int(raw_last_event_id)
        else:
            errors.add(field, "must be a non-negative integer")
    errors.raise_if_any()
    return StreamRequest(workflow_id=workflow_id, types=types, last_event_id=last_event_id)


class StreamResource:
    """Relay a workflow's events as Server-Sent Events, one frame flushed per event."""

    def __init__(self, admin_stream: StreamOpener, write_timeout_seconds: float) -> None:
        self._admin_stream = admin_stream
        self._write_timeout_seconds = write_timeout_seconds

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Open the upstream stream (its refusals become our error body) and stream its frames."""
        frames = self._admin_stream.open(stream_request(req), call_context(req))
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        resp.stream = CountedStream(WriteDeadline(frames, req.env, self._write_timeout_seconds))
