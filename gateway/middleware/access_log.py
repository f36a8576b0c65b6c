"""One JSON access-log line per request."""

import logging
import time

import falcon

logger = logging.getLogger("gateway.access")

# Where in ``req.context`` the request's start is noted (the request metrics time from it too).
STARTED_AT = "started_at"


class AccessLogMiddleware:
    """Log method, route template, status, duration and request id once the response is ready.

    The route template is logged rather than the path, and never the query string, so credentials
    a client puts in a URL do not reach the logs. For a stream, the duration is the time to its
    first byte. With the access logger below INFO, nothing is built.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Note when the request started."""
        req.context.started_at = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Write the access-log line."""
        if not logger.isEnabledFor(logging.INFO):
            return
        # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
        started_at = req.context.get(STARTED_AT) or time.perf_counter()
        duration_ms = (time.perf_counter() - started_at) * 1000
        principal = req.context.get("principal")
        logger.info(
            "request",
            extra={
                "method": req.method,
                "route": req.uri_template,
                "status": resp.status_code,
                "duration_ms": round(duration_ms, 2),
                "request_id": req.context.get("request_id"),
                "user_id": principal.user_id if principal is not None else None,
            },
        )
