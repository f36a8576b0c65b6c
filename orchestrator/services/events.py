"""EventService: list a task's stored events, stream them live, and summarise them as a timeline."""

import contextlib
from collections.abc import AsyncIterator

import grpc

from orchestrator.engine.tasks import TaskEngine
from orchestrator.errors import InvalidArgumentError
from orchestrator.identity import CallerResolver
from orchestrator.services.fields import page
from orchestrator.services.fields import require_id
from orchestrator.services.messages import event_to_proto
from orchestrator.services.messages import timestamp
from orchestrator.services.status import streaming_errors
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.stream_parameters import event_types

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 200


class EventServiceServicer(events_pb2_grpc.EventServiceServicer):
    """The event RPCs; a workflow of another user is NOT_FOUND like a missing one."""

    def __init__(self, engine: TaskEngine, callers: CallerResolver) -> None:
        self._engine = engine
        self._callers = callers

    @unary_errors
    async def ListEvents(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: events_pb2.ListEventsRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.ListEventsResponse:
        """Page through a task's stored events in seq order; count is the total."""
        caller = await self._callers.resolve_call(context)
        workflow_id = require_id("workflow_id", request.workflow_id)
        limit, offset = page(request.limit, request.offset, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        events, count = await self._engine.list_events(caller, workflow_id, limit, offset)
        return events_pb2.ListEventsResponse(events=[event_to_proto(event) for event in events], count=count)

    @streaming_errors
    async def StreamEvents(  # noqa: N802
        self, request: events_pb2.StreamEventsRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[events_pb2.StreamEventsResponse]:
        """Replay the events after after_seq, then follow live ones until the stream ends."""
        caller = await self._callers.resolve_call(context)
        workflow_id = require_id("workflow_id", request.workflow_id)
        if request.after_seq < 0:
            raise InvalidArgumentError("after_seq", "after_seq must be 0 or more")
        try:
            types = event_types(request.types)
        except ValueError as ex:
            raise InvalidArgumentError("types", f"types {ex}") from None
        await self._engine.require_workflow(caller, workflow_id)
        follower = self._engine.streams.follow(workflow_id, request.after_seq, list(types))
        async with contextlib.aclosing(follower.events()) as events:
            async for event in events:
                if event is not None:
                    yield events_pb2.StreamEventsResponse(event=event_to_proto(event))

    @unary_errors
    async def GetTimeline(  # noqa: N802
        self, request: events_pb2.GetTimelineRequest, context: grpc.aio.ServicerContext
    ) -> events_pb2.GetTimelineResponse:
        """Summarise a task's events (LLM_PARTIAL left out of the entries, counted in the stats)."""
        caller = await self._callers.resolve_call(context)
        timeline = await self._engine.timeline(caller, require_id("workflow_id", request.workflow_id))
        return events_pb2.GetTimelineResponse(
            workflow_id=timeline.workflow_id,
            events=[
                events_pb2.TimelineEntry(
                    seq=entry.seq,
                    type=entry.type,
                    agent_id=entry.agent_id,
                    message=entry.message,
                    timestamp=timestamp(entry.timestamp),
                )
                for entry in timeline.entries
            ],
            stats=events_pb2.TimelineStats(
                duration_ms=timeline.duration_ms,
                event_count=timeline.event_count,
                by_type=timeline.by_type,
            ),
        )
