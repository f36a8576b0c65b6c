"""Request and trace ids: accepted from the client when well-formed, otherwise made up."""

import re
import secrets
import uuid

import falcon

_REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# W3C Trace Context, version 00 layout: version-traceid-parentid-flags, lower-case hex.
_TRACEPARENT_PATTERN = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_INVALID_VERSION = "ff"
_ZERO_TRACE_ID = "0" * 32
_ZERO_PARENT_ID = "0" * 16


def accepted_request_id(value: str | None) -> str | None:
    """Return the client's request id if it is 1..128 characters of [A-Za-z0-9._:-], else None."""
    if value is not None and _REQUEST_ID_PATTERN.match(value):
        return value
    return None


def trace_id_from_traceparent(value: str | None) -> str | None:
    """Return the trace id of a valid W3C ``traceparent`` header, else None."""
    if value is None:
        return None
    match = _TRACEPARENT_PATTERN.match(value.strip())
    if match is None:
        return None
    version, trace_id, parent_id, _flags = match.groups()
    if version == _INVALID_VERSION or trace_id == _ZERO_TRACE_ID or parent_id == _ZERO_PARENT_ID:
        return None
    return trace_id


class RequestIdMiddleware:
    """Give every request a request id and a trace context, and echo both ids on the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Record request_id, trace_id and the traceparent to forward in ``req.context``."""
        req.context.request_id = accepted_request_id(req.get_header("X-Request-ID")) or uuid.uuid4().hex
        traceparent = req.get_header("traceparent")
        trace_id = trace_id_from_traceparent(traceparent)
        if trace_id is None:
            trace_id = secrets.token_hex(16)
            traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-00"
        req.context.trace_id = trace_id
        req.context.traceparent = traceparent.strip()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Set X-Request-ID and X-Trace-ID."""
        if "request_id" not in req.context:
            # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
            self.process_request(req, resp)
        resp.set_header("X-Request-ID", req.context.request_id)
        resp.set_header("X-Trace-ID", req.context.trace_id)
