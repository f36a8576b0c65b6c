"""CORS: browsers on an allowlist of origins may call the API and read its answers and headers.

The request's ``Origin`` must equal one of the allowed origins exactly; there is no wildcard.
Credentials travel in headers (``X-API-Key``, ``Authorization``), never in cookies, so responses
do not send ``Access-Control-Allow-Credentials`` and browsers send no cookies cross-origin.
"""

from collections.abc import Iterable
from collections.abc import Mapping

import falcon
import falcon.routing

from gateway.errors import ApiError

PREFLIGHT_MAX_AGE_SECONDS = 600
ALLOWED_REQUEST_HEADERS = (
    "Authorization",
    "Content-Type",
    "X-API-Key",
    "X-Request-ID",
    "traceparent",
    "tracestate",
    "Idempotency-Key",
    "Last-Event-ID",
)
EXPOSED_RESPONSE_HEADERS = (
    "X-Request-ID",
    "X-Trace-ID",
    "X-Workflow-ID",
    "X-Session-ID",
    "X-RateLimit-Limit-Minute",
    "X-RateLimit-Remaining-Minute",
    "X-RateLimit-Limit-Hour",
    "X-RateLimit-Remaining-Hour",
    "X-RateLimit-Reset",
    "RateLimit",
    "RateLimit-Policy",
    "Retry-After",
    "X-Budget-Window",
    "X-Budget-Scope",
    "X-Budget-Limit",
    "X-Budget-Used",
    "X-Budget-Reset",
    "Idempotent-Replayed",
    "X-Idempotency-Cached",
    "Link",
    "Content-Disposition",
)
_ALLOWED_REQUEST_HEADERS = ", ".join(ALLOWED_REQUEST_HEADERS)
_EXPOSED_RESPONSE_HEADERS = ", ".join(EXPOSED_RESPONSE_HEADERS)


def is_preflight(req: falcon.Request) -> bool:
    """Return whether a request is a CORS preflight: OPTIONS with Origin and the method it asks about."""
    return (
        req.method == "OPTIONS"
        and req.get_header("Origin") is not None
        and req.get_header("Access-Control-Request-Method") is not None
    )


class CorsMiddleware:
    """Answer preflights before authentication and mark responses readable by allowed origins.

    A preflight from an allowed origin is 204 with the route's methods, the request headers the
    API reads and a max-age; from any other origin it is 403, so the browser refuses the call.
    A preflight to an unknown route is the router's 404.
    """

    def __init__(
        self, allowed_origins: Iterable[str], route_suffixes: Mapping[str, str] | None = None
    ) -> None:
        self._allowed_origins = frozenset(allowed_origins)
        # Where one resource answers several paths, a path's methods are its suffixed responders'.
        self._route_suffixes = dict(route_suffixes or {})

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Answer a preflight and stop: nothing after this middleware (auth, limits) runs for it."""
        if not is_preflight(req):
            return
        if req.get_header("Origin") not in self._allowed_origins:
            raise ApiError(403, "Origin not allowed", "origin_not_allowed")
        suffix = self._route_suffixes.get(req.uri_template)
        methods = sorted(falcon.routing.map_http_methods(resource, suffix=suffix))
        resp.status = falcon.HTTP_204
        resp.set_header("Access-Control-Allow-Methods", ", ".join(methods))
        resp.set_header("Access-Control-Allow-Headers", _ALLOWED_REQUEST_HEADERS)
        resp.set_header("Access-Control-Max-Age", str(PREFLIGHT_MAX_AGE_SECONDS))
        resp.complete = True

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Allow an allowed origin to read this response (errors included) and its exposed headers."""
        if not self._allowed_origins:
            return
        resp.append_header("Vary", "Origin")
        origin = req.get_header("Origin")
        if origin is None or origin not in self._allowed_origins:
            return
        resp.set_header("Access-Control-Allow-Origin", origin)
        if not is_preflight(req):
            resp.set_header("Access-Control-Expose-Headers", _EXPOSED_RESPONSE_HEADERS)
