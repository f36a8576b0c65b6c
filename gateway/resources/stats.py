"""``GET /api/v1/stats``: the caller's tasks, sessions, tokens and cost over a window of days."""

from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.resources import session_serialization
from gateway.resources.session_requests import stats_days
from taskgate.orchestrator.v1 import sessions_pb2


class StatsApi(Protocol):
    """The orchestrator call the stats route makes."""

    def get_stats(self, days: int, context: CallContext) -> sessions_pb2.GetStatsResponse:
        """Aggregate the caller's usage."""


class StatsResource:
    """Usage of the last ``days`` days (default 30, 1..365)."""

    def __init__(self, orchestrator: StatsApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return the task counts by status, the sessions, tokens and cost of the window."""
        response = self._orchestrator.get_stats(stats_days(req), call_context(req))
        resp.media = session_serialization.stats(response)
