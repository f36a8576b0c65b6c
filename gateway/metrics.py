"""The gateway's Prometheus metrics: every series the gateway exports is declared here.

Each gunicorn worker counts in its own process; `GET /metrics` must add up every worker's
series (prometheus_client's multiprocess mode), never show one worker's share. The gunicorn
master sets ``PROMETHEUS_MULTIPROC_DIR`` before any worker imports this module
(deploy/gunicorn.conf.py); without it (tests, a bare WSGI server) the process counts alone.
"""

import os
from collections.abc import Iterable
from collections.abc import Iterator

from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client import REGISTRY
from prometheus_client import CollectorRegistry
from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram
from prometheus_client import generate_latest
from prometheus_client import multiprocess

EXPOSITION_CONTENT_TYPE = CONTENT_TYPE_LATEST
# prometheus_client's own switch: set, every process writes its values to files in that directory.
MULTIPROCESS_DIRECTORY_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"

REQUESTS = Counter(
    "taskgate_http_requests_total",
    "HTTP requests answered, by route template, method and status.",
    ["route", "method", "status"],
)
REQUEST_SECONDS = Histogram(
    "taskgate_http_request_duration_seconds",
    "Time to answer an HTTP request, by route template and method.",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
RATE_LIMIT_DECISIONS = Counter(
    "taskgate_rate_limit_decisions_total",
    "Rate-limit decisions: allowed, limited, failed_open or failed_closed (backend unreachable),"
    " auth_failures_limited (credentials refused for their address's failed authentications).",
    ["decision"],
)
IDEMPOTENCY_DECISIONS = Counter(
    "taskgate_idempotency_decisions_total",
    "Idempotency-Key outcomes: first, replayed, mismatch, in_flight, unavailable.",
    ["decision"],
)
UPSTREAM_ERRORS = Counter(
    "taskgate_upstream_errors_total", "Failed calls to the orchestrator, by gRPC status code.", ["code"]
)
AUTH_FAILURES = Counter(
    "taskgate_auth_failures_total", "Requests refused for missing or bad credentials.", ["reason"]
)
OPEN_STREAMS = Gauge("taskgate_open_streams", "Event streams open right now.", multiprocess_mode="livesum")


def exposition() -> bytes:
    """Return every series in the Prometheus text format: all workers' sums under gunicorn."""
    if os.environ.get(MULTIPROCESS_DIRECTORY_VARIABLE):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(REGISTRY)


class CountedStream:
    """A response body counted in ``OPEN_STREAMS`` from its creation until the server closes it.

    WSGI servers call ``close()`` once the response ends or the client goes away, whether or not
    the body was ever iterated; that closes the wrapped body too.
    """

    def __init__(self, body: Iterable[bytes]) -> None:
        self._body = body
        self._open = True
        OPEN_STREAMS.inc()

    def __iter__(self) -> Iterator[bytes]:
        """Iterate the wrapped body."""
        return iter(self._body)

    def close(self) -> None:
        """Close the wrapped body and stop counting this stream (once)."""
        if not self._open:
            return
        self._open = False
        OPEN_STREAMS.dec()
        close = getattr(self._body, "close", None)
        if close is not None:
            close()
