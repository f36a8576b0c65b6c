"""Session routes: list, read, rename, delete, and a session's history, turns and export."""

from collections.abc import Iterator
from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.hooks import require_json_object
from gateway.hooks import require_valid_id
from gateway.resources import session_serialization
from gateway.resources.session_requests import history_request
from gateway.resources.session_requests import list_sessions_request
from gateway.resources.session_requests import turns_request
from gateway.resources.session_requests import update_session_request
from taskgate.orchestrator.v1 import sessions_pb2


class ExportStream(Protocol):
    """A streamed session export: its pieces in order, and a way to stop it."""

    def __iter__(self) -> Iterator[str]:
        """Yield the document's pieces."""

    def cancel(self) -> None:
        """Stop the export."""


class SessionApi(Protocol):
    """The orchestrator calls the session routes make."""

    def list_sessions(
        self, request: sessions_pb2.ListSessionsRequest, context: CallContext
    ) -> sessions_pb2.ListSessionsResponse:
        """List the caller's sessions."""

    def get_session(self, session_id: str, context: CallContext) -> sessions_pb2.Session:
        """Read one session."""

    def update_session(
        self, request: sessions_pb2.UpdateSessionRequest, context: CallContext
    ) -> sessions_pb2.UpdateSessionResponse:
        """Set a session's title."""

    def delete_session(self, session_id: str, context: CallContext) -> None:
        """Soft-delete a session."""

    def get_session_history(
        self, request: sessions_pb2.GetSessionHistoryRequest, context: CallContext
    ) -> sessions_pb2.GetSessionHistoryResponse:
        """Page through a session's tasks."""

    def list_session_turns(
        self, request: sessions_pb2.ListSessionTurnsRequest, context: CallContext
    ) -> sessions_pb2.ListSessionTurnsResponse:
        """Page through a session's turns."""

    def export_session(self, session_id: str, context: CallContext) -> ExportStream:
        """Start streaming a session as one JSON document."""


class SessionsResource:
    """``/api/v1/sessions``: the caller's sessions, most recently active first."""

    def __init__(self, orchestrator: SessionApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List one page of sessions with their aggregates, and the total."""
        response = self._orchestrator.list_sessions(list_sessions_request(req), call_context(req))
        resp.media = {
            "sessions": [session_serialization.session_summary(session) for session in response.sessions],
            "total_count": response.total_count,
        }


@falcon.before(require_valid_id, "session_id")
class SessionResource:
    """``/api/v1/sessions/{session_id}``: read, rename or delete one of the caller's sessions.

    Its ``/history``, ``/events`` and ``/export`` are routed here too, each by its suffix.
    """

    def __init__(self, orchestrator: SessionApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Return the session with its context, budget and usage."""
        session = self._orchestrator.get_session(session_id, call_context(req))
        resp.media = session_serialization.session_detail(session)

    @falcon.before(require_json_object)
    def on_patch(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Set the title (sanitised, 1..60 characters) and answer it as stored."""
        request = update_session_request(session_id, req.context.json)
        response = self._orchestrator.update_session(request, call_context(req))
        resp.media = {"session_id": response.session_id, "title": response.title}

    def on_delete(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Soft-delete the session: 204, again 204 when repeated."""
        self._orchestrator.delete_session(session_id, call_context(req))
        resp.status = falcon.HTTP_204

    def on_get_history(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Return one page of the session's tasks, oldest first, and how many it has."""
        request = history_request(req, session_id)
        response = self._orchestrator.get_session_history(request, call_context(req))
        resp.media = {
            "session_id": response.session_id,
            "tasks": [session_serialization.session_task(task) for task in response.tasks],
            "total": response.total,
        }

    def on_get_events(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Return one page of the session's turns with their events, oldest first; count is the turns."""
        request = turns_request(req, session_id)
        response = self._orchestrator.list_session_turns(request, call_context(req))
        resp.media = {
            "session_id": response.session_id,
            "count": response.count,
            "turns": [session_serialization.turn(turn, request.include_payload) for turn in response.turns],
        }

    def on_get_export(self, req: falcon.Request, resp: falcon.Response, session_id: str) -> None:
        """Stream the session, its tasks and their events as one JSON document, as a file to save.

        The first piece is awaited before the status is sent, so a missing session (404) or one
        past the export's bounds (409) is answered as such; the rest follows as it comes (chunked).
        """
        body = ExportBody(self._orchestrator.export_session(session_id, call_context(req)))
        resp.stream = body
        resp.content_type = falcon.MEDIA_JSON
        # The id matches the id pattern, so it needs no quoting inside the filename.
        resp.set_header("Content-Disposition", f'attachment; filename="session-{session_id}.json"')


class ExportBody:
    """A streamed export as a WSGI body: its first piece read at once, the rest as the client reads.

    A failure after the first piece (the orchestrator gone, the deadline passed) propagates, so the
    server drops the connection without the chunked body's last chunk: the client sees a cut-off
    transfer, never a shorter document that parses.
    """

    def __init__(self, export: ExportStream) -> None:
        self._export = export
        self._pieces = iter(export)
        try:
            self._first = next(self._pieces, "")
        except BaseException:
            export.cancel()
            raise

    def __iter__(self) -> Iterator[bytes]:
        """Yield the document's pieces as UTF-8."""
        yield self._first.encode("utf-8")
        for piece in self._pieces:
            yield piece.encode("utf-8")

    def close(self) -> None:
        """Stop the export if the response ends before it does (the client went away)."""
        self._export.cancel()
