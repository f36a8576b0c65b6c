"""Request and trace ids: accepted from the client when well-formed, otherwise made up."""

import secrets
import uuid

import falcon

from taskgate.identifiers import is_valid_id
from taskgate.trace_context import trace_id_from_traceparent


def accepted_request_id(value: str | None) -> str | None:
    """Return the client's request id if it has the shape of an id (API.md), else None."""
    return value if is_valid_id(value) else None


class RequestIdMiddleware:
    """Give every request a request id and a trace context, and echo both ids on the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Record request_id, trace_id and the traceparent to forward in ``req.context``."""
        req.context.request_id = accepted_request_id(req.get_header("X-Request-ID")) or uuid.uuid4().hex
        traceparent = (req.get_header("traceparent") or "").strip()
        trace_id = trace_id_from_traceparent(traceparent)
        if trace_id is None:
            trace_id = secrets.token_hex(16)
            traceparent = f"00-{trace_id}-{secrets.token_hex(8)}-00"
        req.context.trace_id = trace_id
        req.context.traceparent = traceparent

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Set X-Request-ID and X-Trace-ID."""
        if "request_id" not in req.context:
            # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
            self.process_request(req, resp)
        resp.set_header("X-Request-ID", req.context.request_id)
        resp.set_header("X-Trace-ID", req.context.trace_id)
