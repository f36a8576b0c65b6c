"""Liveness and readiness probes; both are public."""

from typing import Protocol

import falcon

from taskgate import __version__
from taskgate.rfc3339 import format_datetime
from taskgate.rfc3339 import utc_now

READINESS_TIMEOUT_SECONDS = 1.0


class HealthProbe(Protocol):
    """The orchestrator's health check, as readiness needs it."""

    def is_serving(self, timeout_seconds: float) -> bool:
        """Return whether the orchestrator answers SERVING in time."""


class RedisProbe(Protocol):
    """The gateway's Redis, as readiness needs it."""

    def is_reachable(self) -> bool:
        """Return whether Redis answers a PING in time."""


class HealthResource:
    """``/health`` and ``/healthz``: the process is up; nothing else is asked."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer healthy with the version and the current time."""
        resp.media = {"status": "healthy", "version": __version__, "time": format_datetime(utc_now())}


class ReadinessResource:
    """``/readiness``, ``/ready``, ``/readyz``: 200 when the orchestrator (and Redis, if used) answer."""

    public = True

    def __init__(self, orchestrator: HealthProbe, redis: RedisProbe | None = None) -> None:
        self._orchestrator = orchestrator
        self._redis = redis

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ready, or 503 not ready naming each failing check."""
        checks = {
            "orchestrator": "ok"
            if self._orchestrator.is_serving(READINESS_TIMEOUT_SECONDS)
            else "unavailable"
        }
        if self._redis is not None:
            checks["redis"] = "ok" if self._redis.is_reachable() else "unavailable"
        if all(state == "ok" for state in checks.values()):
            resp.media = {"status": "ready", "checks": checks}
        else:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "not ready", "checks": checks}
