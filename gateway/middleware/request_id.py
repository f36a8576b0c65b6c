"""Request and trace ids: accepted from the client when well-formed, otherwise made up."""

import os

import falcon

from taskgate.identifiers import is_valid_id
from taskgate.trace_context import trace_id_from_traceparent

# A request id (16 bytes), a trace id (16) and a span id (8).
_FRESH_BYTES = 40


def accepted_request_id(value: str | None) -> str | None:
    """Return the client's request id if it has the shape of an id (API.md), else None."""
    return value if is_valid_id(value) else None


class RequestIdMiddleware:
    """Give every request a request id and a trace context, and echo both ids on the response."""

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Record request_id, trace_id and the traceparent to forward in ``req.context``.

        The ids made up here come from one draw of random bytes (one system call, not three):
        32 hex digits of request id, 32 of trace id, 16 of span id.
        """
        fresh = os.urandom(_FRESH_BYTES).hex()
        context = req.context
        context.request_id = accepted_request_id(req.get_header("X-Request-ID")) or fresh[:32]
        traceparent = req.get_header("traceparent")
        trace_id = trace_id_from_traceparent(traceparent.strip()) if traceparent else None
        if trace_id is None:
            trace_id = fresh[32:64]
            traceparent = f"00-{trace_id}-{fresh[64:]}-00"
        else:
            traceparent = traceparent.strip()
        context.trace_id = trace_id
        context.traceparent = traceparent

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Set X-Request-ID and X-Trace-ID."""
        if "request_id" not in req.context:
            # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
            self.process_request(req, resp)
        resp.set_header("X-Request-ID", req.context.request_id)
        resp.set_header("X-Trace-ID", req.context.trace_id)
