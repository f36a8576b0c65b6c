"""Request metrics: one count and one latency observation per request, and refused credentials."""

import time

import falcon

from gateway.metrics import AUTH_FAILURES
from gateway.metrics import REQUEST_SECONDS
from gateway.metrics import REQUESTS
from gateway.middleware.auth import presented_credential

# Labels stay few whatever clients send: the route template (never the path), a known method.
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"
_KNOWN_METHODS = frozenset(falcon.HTTP_METHODS)


class RequestMetricsMiddleware:
    """Count each answered request by route template, method and status, and time it.

    As in the access log, a stream's duration is the time to its first byte. A 401 also counts as
    an auth failure: ``missing`` when a protected route got no credential, else ``invalid``.
    """

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Note when the request started."""
        req.context.metrics_started_at = time.perf_counter()

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Record the request's count, duration and any auth failure."""
        route = req.uri_template or UNMATCHED_ROUTE
        method = req.method if req.method in _KNOWN_METHODS else OTHER_METHOD
        status = resp.status_code
        REQUESTS.labels(route=route, method=method, status=str(status)).inc()
        # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
        started_at = req.context.get("metrics_started_at") or time.perf_counter()
        REQUEST_SECONDS.labels(route=route, method=method).observe(time.perf_counter() - started_at)
        if status == 401:
            AUTH_FAILURES.labels(reason=auth_failure_reason(req, resource)).inc()


def auth_failure_reason(req: falcon.Request, resource: object) -> str:
    """Return why a request was refused with 401: ``missing`` or ``invalid`` credentials.

    A public route that answers 401 (a login) checked credentials from its body: ``invalid``.
    """
    if presented_credential(req) is None and not getattr(resource, "public", False):
        return "missing"
    return "invalid"
