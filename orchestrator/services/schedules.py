"""ScheduleService: the caller's schedules and their runs; another user's schedule is NOT_FOUND."""

import grpc

from orchestrator.engine.schedules import ScheduleDraft
from orchestrator.engine.schedules import ScheduleEngine
from orchestrator.errors import InvalidArgumentError
from orchestrator.identity import CallerResolver
from orchestrator.services.fields import require_id
from orchestrator.services.schedule_messages import STATUS_FROM_PROTO
from orchestrator.services.schedule_messages import run_to_proto
from orchestrator.services.schedule_messages import schedule_to_proto
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import schedules_pb2_grpc

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


def _page(page: int, page_size: int) -> tuple[int, int]:
    """Return (limit, offset) of a page request; 0 means the first page, or the default size."""
    page = page or 1
    page_size = page_size or DEFAULT_PAGE_SIZE
    if page < 1:
        raise InvalidArgumentError("page", "page must be 1 or more")
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise InvalidArgumentError("page_size", f"page_size must be 1..{MAX_PAGE_SIZE}")
    return page_size, (page - 1) * page_size


def _optional(request: object, field: str) -> object | None:
    return getattr(request, field) if request.HasField(field) else None  # type: ignore[attr-defined]


class ScheduleServiceServicer(schedules_pb2_grpc.ScheduleServiceServicer):
    """The schedule RPCs, each scoped to the caller."""

    def __init__(self, engine: ScheduleEngine, callers: CallerResolver) -> None:
        self._engine = engine
        self._callers = callers

    @unary_errors
    async def CreateSchedule(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: schedules_pb2.CreateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.CreateScheduleResponse:
        """Check and store a schedule; answer it with its first run."""
        caller = await self._callers.resolve_call(context)
        draft = ScheduleDraft(
            name=request.name,
            description=request.description,
            cron_expression=request.cron_expression,
            timezone=request.timezone or "UTC",
            task_query=request.task_query,
            task_context_json=request.task_context_json,
            max_budget_per_run_usd=_optional(request, "max_budget_per_run_usd"),
            timeout_seconds=_optional(request, "timeout_seconds"),
        )
        schedule = await self._engine.create(caller, draft)
        return schedules_pb2.CreateScheduleResponse(
            schedule=schedule_to_proto(schedule), message="Schedule created"
        )

    @unary_errors
    async def ListSchedules(  # noqa: N802
        self, request: schedules_pb2.ListSchedulesRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.ListSchedulesResponse:
        """List the caller's schedules, newest first."""
        caller = await self._callers.resolve_call(context)
        limit, offset = _page(request.page, request.page_size)
        status = STATUS_FROM_PROTO.get(request.status)
        schedules, total = await self._engine.list_schedules(caller, status, limit, offset)
        return schedules_pb2.ListSchedulesResponse(
            schedules=[schedule_to_proto(schedule) for schedule in schedules], total_count=total
        )

    @unary_errors
    async def GetSchedule(  # noqa: N802
        self, request: schedules_pb2.GetScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.GetScheduleResponse:
        """Read one of the caller's schedules."""
        caller = await self._callers.resolve_call(context)
        schedule = await self._engine.get(caller, require_id("schedule_id", request.schedule_id))
        return schedules_pb2.GetScheduleResponse(schedule=schedule_to_proto(schedule))

    @unary_errors
    async def UpdateSchedule(  # noqa: N802
        self, request: schedules_pb2.UpdateScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.UpdateScheduleResponse:
        """Change the fields present; answer the schedule as stored."""
        caller = await self._callers.resolve_call(context)
        schedule_id = require_id("schedule_id", request.schedule_id)
        fields = (
            "name",
            "description",
            "cron_expression",
            "timezone",
            "task_query",
            "task_context_json",
            "max_budget_per_run_usd",
            "timeout_seconds",
        )
        draft = ScheduleDraft(**{field: _optional(request, field) for field in fields})
        schedule = await self._engine.update(caller, schedule_id, draft)
        return schedules_pb2.UpdateScheduleResponse(schedule=schedule_to_proto(schedule))

    @unary_errors
    async def PauseSchedule(  # noqa: N802
        self, request: schedules_pb2.PauseScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.PauseScheduleResponse:
        """Stop a schedule from firing."""
        caller = await self._callers.resolve_call(context)
        schedule_id = require_id("schedule_id", request.schedule_id)
        await self._engine.pause(caller, schedule_id, request.reason)
        return schedules_pb2.PauseScheduleResponse(success=True, message="Schedule paused")

    @unary_errors
    async def ResumeSchedule(  # noqa: N802
        self, request: schedules_pb2.ResumeScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.ResumeScheduleResponse:
        """Let a paused schedule fire again; answer its next run."""
        caller = await self._callers.resolve_call(context)
        schedule_id = require_id("schedule_id", request.schedule_id)
        schedule = await self._engine.resume(caller, schedule_id, request.reason)
        response = schedules_pb2.ResumeScheduleResponse(success=True, message="Schedule resumed")
        if schedule.next_run_at is not None:
            response.next_run_at.FromDatetime(schedule.next_run_at)
        return response

    @unary_errors
    async def TriggerSchedule(  # noqa: N802
        self, request: schedules_pb2.TriggerScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.TriggerScheduleResponse:
        """Start one run of the schedule now."""
        caller = await self._callers.resolve_call(context)
        task_id = await self._engine.trigger(caller, require_id("schedule_id", request.schedule_id))
        return schedules_pb2.TriggerScheduleResponse(workflow_id=task_id)

    @unary_errors
    async def DeleteSchedule(  # noqa: N802
        self, request: schedules_pb2.DeleteScheduleRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.DeleteScheduleResponse:
        """Delete one of the caller's schedules."""
        caller = await self._callers.resolve_call(context)
        await self._engine.delete(caller, require_id("schedule_id", request.schedule_id))
        return schedules_pb2.DeleteScheduleResponse()

    @unary_errors
    async def ListScheduleRuns(  # noqa: N802
        self, request: schedules_pb2.ListScheduleRunsRequest, context: grpc.aio.ServicerContext
    ) -> schedules_pb2.ListScheduleRunsResponse:
        """List the runs a schedule started, newest first, with their tasks."""
        caller = await self._callers.resolve_call(context)
        schedule_id = require_id("schedule_id", request.schedule_id)
        limit, offset = _page(request.page, request.page_size)
        runs, total = await self._engine.runs(caller, schedule_id, limit, offset)
        return schedules_pb2.ListScheduleRunsResponse(
            runs=[run_to_proto(run) for run in runs], total_count=total
        )
