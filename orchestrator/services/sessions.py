"""SessionService: the caller's sessions, their history and turns, export, search and stats."""

import contextlib
from collections.abc import AsyncIterator

import grpc

from orchestrator.engine.sessions import SessionEngine
from orchestrator.identity import CallerResolver
from orchestrator.services.fields import page
from orchestrator.services.fields import require_id
from orchestrator.services.session_messages import search_hit_to_proto
from orchestrator.services.session_messages import session_task_to_proto
from orchestrator.services.session_messages import session_to_proto
from orchestrator.services.session_messages import stats_to_proto
from orchestrator.services.session_messages import turn_to_proto
from orchestrator.services.status import streaming_errors
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import sessions_pb2_grpc
from taskgate.rfc3339 import utc_now

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
DEFAULT_HISTORY_SIZE = 100
DEFAULT_TURNS_SIZE = 10


class SessionServiceServicer(sessions_pb2_grpc.SessionServiceServicer):
    """The session RPCs; a session of another user is NOT_FOUND like a missing or deleted one."""

    def __init__(self, engine: SessionEngine, callers: CallerResolver) -> None:
        self._engine = engine
        self._callers = callers

    @unary_errors
    async def ListSessions(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: sessions_pb2.ListSessionsRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.ListSessionsResponse:
        """List the caller's sessions, most recently active first, with their aggregates."""
        caller = await self._callers.resolve_call(context)
        limit, offset = page(request.page.limit, request.page.offset, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        sessions, total = await self._engine.list_sessions(caller, limit, offset)
        now = utc_now()
        return sessions_pb2.ListSessionsResponse(
            sessions=[session_to_proto(session, now) for session in sessions], total_count=total
        )

    @unary_errors
    async def GetSession(  # noqa: N802
        self, request: sessions_pb2.GetSessionRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.GetSessionResponse:
        """Read one of the caller's sessions."""
        caller = await self._callers.resolve_call(context)
        session = await self._engine.get_session(caller, require_id("session_id", request.session_id))
        return sessions_pb2.GetSessionResponse(session=session_to_proto(session, utc_now()))

    @unary_errors
    async def UpdateSession(  # noqa: N802
        self, request: sessions_pb2.UpdateSessionRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.UpdateSessionResponse:
        """Set a session's title, sanitised; answer the title as stored."""
        caller = await self._callers.resolve_call(context)
        session_id = require_id("session_id", request.session_id)
        title = await self._engine.rename_session(caller, session_id, request.title)
        return sessions_pb2.UpdateSessionResponse(session_id=session_id, title=title)

    @unary_errors
    async def DeleteSession(  # noqa: N802
        self, request: sessions_pb2.DeleteSessionRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.DeleteSessionResponse:
        """Soft-delete one of the caller's sessions; deleting it again succeeds again."""
        caller = await self._callers.resolve_call(context)
        await self._engine.delete_session(caller, require_id("session_id", request.session_id))
        return sessions_pb2.DeleteSessionResponse()

    @unary_errors
    async def GetSessionHistory(  # noqa: N802
        self, request: sessions_pb2.GetSessionHistoryRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.GetSessionHistoryResponse:
        """List a session's tasks, oldest first (the first 100 unless a page is asked for)."""
        caller = await self._callers.resolve_call(context)
        session_id = require_id("session_id", request.session_id)
        limit, offset = page(request.page.limit, request.page.offset, DEFAULT_HISTORY_SIZE, MAX_PAGE_SIZE)
        tasks, total = await self._engine.history(caller, session_id, limit, offset)
        return sessions_pb2.GetSessionHistoryResponse(
            session_id=session_id, tasks=[session_task_to_proto(task) for task in tasks], total=total
        )

    @unary_errors
    async def ListSessionTurns(  # noqa: N802
        self, request: sessions_pb2.ListSessionTurnsRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.ListSessionTurnsResponse:
        """List a session's turns with their events (LLM_PARTIAL left out); count is the total."""
        caller = await self._callers.resolve_call(context)
        session_id = require_id("session_id", request.session_id)
        limit, offset = page(request.page.limit, request.page.offset, DEFAULT_TURNS_SIZE, MAX_PAGE_SIZE)
        turns, total = await self._engine.turns(caller, session_id, limit, offset)
        return sessions_pb2.ListSessionTurnsResponse(
            session_id=session_id,
            count=total,
            turns=[turn_to_proto(turn, request.include_payload) for turn in turns],
        )

    @streaming_errors
    async def ExportSession(  # noqa: N802
        self, request: sessions_pb2.ExportSessionRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[sessions_pb2.ExportSessionResponse]:
        """Stream the session, its tasks and their events as one JSON document, piece by piece."""
        caller = await self._callers.resolve_call(context)
        pieces = await self._engine.export(caller, require_id("session_id", request.session_id))
        async with contextlib.aclosing(pieces):
            async for piece in pieces:
                yield sessions_pb2.ExportSessionResponse(document_piece=piece)

    @unary_errors
    async def SearchTasks(  # noqa: N802
        self, request: sessions_pb2.SearchTasksRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.SearchTasksResponse:
        """Search the caller's task queries and results; every word must match, best match first."""
        caller = await self._callers.resolve_call(context)
        limit, offset = page(request.page.limit, request.page.offset, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        hits, total = await self._engine.search(caller, request.query, limit, offset)
        return sessions_pb2.SearchTasksResponse(
            results=[search_hit_to_proto(hit) for hit in hits], total_count=total
        )

    @unary_errors
    async def GetStats(  # noqa: N802
        self, request: sessions_pb2.GetStatsRequest, context: grpc.aio.ServicerContext
    ) -> sessions_pb2.GetStatsResponse:
        """Aggregate the caller's tasks, sessions, tokens and cost over the last ``days`` days."""
        caller = await self._callers.resolve_call(context)
        days, stats = await self._engine.stats(caller, request.days)
        return stats_to_proto(days, stats)
