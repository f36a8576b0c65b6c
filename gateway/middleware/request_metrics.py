"""Request metrics: one count and one latency observation per request, and refused credentials."""

import time

import falcon

from gateway.metrics import AUTH_FAILURES
from gateway.metrics import REQUEST_SECONDS
from gateway.metrics import REQUESTS
from gateway.middleware.access_log import STARTED_AT
from gateway.middleware.auth import presented_credential

# Labels stay few whatever clients send: the route template (never the path), a known method.
UNMATCHED_ROUTE = "unmatched"
OTHER_METHOD = "OTHER"
_KNOWN_METHODS = frozenset(falcon.HTTP_METHODS)


class RequestMetricsMiddleware:
    """Count each answered request by route template, method and status, and time it.

    As in the access log, a stream's duration is the time to its first byte, from the start the
    access log notes. A 401 also counts as an auth failure: ``missing`` when a protected route got
    no credential, else ``invalid``. The labelled series are looked up once per label set and kept
    (the labels are bounded: route templates, known methods, statuses).
    """

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str, int], object] = {}
        self._durations: dict[tuple[str, str], object] = {}

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Record the request's count, duration and any auth failure."""
        route = req.uri_template or UNMATCHED_ROUTE
        method = req.method if req.method in _KNOWN_METHODS else OTHER_METHOD
        status = resp.status_code
        count = self._counts.get((route, method, status))
        if count is None:
            count = self._counts[route, method, status] = REQUESTS.labels(
                route=route, method=method, status=str(status)
            )
        count.inc()
        duration = self._durations.get((route, method))
        if duration is None:
            duration = self._durations[route, method] = REQUEST_SECONDS.labels(route=route, method=method)
        # Falcon refuses some requests (a WEBSOCKET method) before any process_request runs.
        now = time.perf_counter()
        duration.observe(now - (req.context.get(STARTED_AT) or now))
        if status == 401:
            AUTH_FAILURES.labels(reason=auth_failure_reason(req, resource)).inc()


def auth_failure_reason(req: falcon.Request, resource: object) -> str:
    """Return why a request was refused with 401: ``missing`` or ``invalid`` credentials.

    A public route that answers 401 (a login) checked credentials from its body: ``invalid``.
    """
    if presented_credential(req) is None and not getattr(resource, "public", False):
        return "missing"
    return "invalid"
