"""``GET /api/v1/search``: full-text search over the caller's task queries and results."""

from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.resources import session_serialization
from gateway.resources.session_requests import search_request
from taskgate.orchestrator.v1 import sessions_pb2


class SearchApi(Protocol):
    """The orchestrator call the search route makes."""

    def search_tasks(
        self, request: sessions_pb2.SearchTasksRequest, context: CallContext
    ) -> sessions_pb2.SearchTasksResponse:
        """Search the caller's tasks."""


class SearchResource:
    """Every word of ``q`` must occur in a task's query or result; best match first."""

    def __init__(self, orchestrator: SearchApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return one page of hits, each with the passage that matched, and the total."""
        response = self._orchestrator.search_tasks(search_request(req), call_context(req))
        resp.media = {
            "results": [session_serialization.search_hit(hit) for hit in response.results],
            "total_count": response.total_count,
        }
