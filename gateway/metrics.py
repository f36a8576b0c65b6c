"""The gateway's Prometheus metrics: every series the gateway exports is declared here.

Each gunicorn worker counts in its own process; `GET /metrics` must add up every worker's
series (prometheus_client's multiprocess mode), never show one worker's share.
"""

from prometheus_client import Counter
from prometheus_client import Gauge
from prometheus_client import Histogram

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
    "Rate-limit decisions: allowed, limited, failed_open or failed_closed (backend unreachable).",
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
