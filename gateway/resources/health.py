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


class HealthResource:
    """``/health`` and ``/healthz``: the process is up; nothing else is asked."""

    public = True

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer healthy with the version and the current time."""
        resp.media = {"status": "healthy", "version": __version__, "time": format_datetime(utc_now())}


class ReadinessResource:
    """``/readiness``, ``/ready``, ``/readyz``: 200 when the orchestrator answers its health check."""

    public = True

    def __init__(self, orchestrator: HealthProbe) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer ready, or 503 not ready with the failing check."""
        serving = self._orchestrator.is_serving(READINESS_TIMEOUT_SECONDS)
        checks = {"orchestrator": "ok" if serving else "unavailable"}
        if serving:
            resp.media = {"status": "ready", "checks": checks}
        else:
            resp.status = falcon.HTTP_503
            resp.media = {"status": "not ready", "checks": checks}
