"""TaskService: submit, read and list tasks; pause, resume and cancel them, and read their control state."""

from collections.abc import Awaitable
from collections.abc import Callable
from typing import TypeVar

import grpc
from google.protobuf.message import Message

from orchestrator.caller import Caller
from orchestrator.domain.tasks import TaskFilter
from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.tasks import TaskEngine
from orchestrator.identity import CallerResolver
from orchestrator.services.approvals import pending_approval_to_proto
from orchestrator.services.fields import optional_id
from orchestrator.services.fields import page
from orchestrator.services.fields import require_id
from orchestrator.services.messages import status_from_proto
from orchestrator.services.messages import task_to_proto
from orchestrator.services.messages import timestamp
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
QUEUED_MESSAGE = "Task queued"

ControlRequest = tasks_pb2.CancelTaskRequest | tasks_pb2.PauseTaskRequest | tasks_pb2.ResumeTaskRequest
ControlResponse = TypeVar("ControlResponse", bound=Message)


class TaskServiceServicer(tasks_pb2_grpc.TaskServiceServicer):
    """The task RPCs, each scoped to the calling user."""

    def __init__(self, engine: TaskEngine, callers: CallerResolver) -> None:
        self._engine = engine
        self._callers = callers

    @unary_errors
    async def SubmitTask(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: tasks_pb2.SubmitTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.SubmitTaskResponse:
        """Queue a task; it runs on a worker of some orchestrator replica."""
        caller = await self._callers.resolve_call(context)
        submission = TaskSubmission(
            query=request.query,
            session_id=request.session_id,
            context_json=request.context_json,
            mode=request.mode,
            model_tier=request.model_tier,
            model_override=request.model_override,
            provider_override=request.provider_override,
            research_strategy=request.research_strategy,
            max_iterations=request.max_iterations if request.HasField("max_iterations") else None,
            max_concurrent_agents=(
                request.max_concurrent_agents if request.HasField("max_concurrent_agents") else None
            ),
            enable_verification=request.enable_verification
            if request.HasField("enable_verification")
            else None,
            require_approval=request.require_approval,
            timeout_seconds=request.timeout_seconds,
            token_budget=request.token_budget if request.HasField("token_budget") else None,
            multitask_strategy=request.multitask_strategy,
            approval_timeout_seconds=(
                request.approval_timeout_seconds if request.HasField("approval_timeout_seconds") else None
            ),
        )
        task = await self._engine.submit(caller, submission)
        return tasks_pb2.SubmitTaskResponse(task=task_to_proto(task), message=QUEUED_MESSAGE)

    @unary_errors
    async def GetTask(  # noqa: N802
        self, request: tasks_pb2.GetTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.GetTaskResponse:
        """Read one of the caller's tasks."""
        caller = await self._callers.resolve_call(context)
        task = await self._engine.get_task(caller, require_id("task_id", request.task_id))
        message = task_to_proto(task)
        approval = await self._engine.pending_approval(task)
        if approval is not None:
            message.pending_approval.CopyFrom(pending_approval_to_proto(approval))
        return tasks_pb2.GetTaskResponse(task=message)

    @unary_errors
    async def ListTasks(  # noqa: N802
        self, request: tasks_pb2.ListTasksRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.ListTasksResponse:
        """List the caller's tasks, newest first."""
        caller = await self._callers.resolve_call(context)
        limit, offset = page(request.page.limit, request.page.offset, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        which = TaskFilter(optional_id("session_id", request.session_id), status_from_proto(request.status))
        tasks, total = await self._engine.list_tasks(caller, which, limit, offset)
        return tasks_pb2.ListTasksResponse(tasks=[task_to_proto(task) for task in tasks], total_count=total)

    # Task control.

    @unary_errors
    async def CancelTask(  # noqa: N802
        self, request: tasks_pb2.CancelTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.CancelTaskResponse:
        """Cancel a task: at once when it has no runner, else at its runner's next checkpoint."""
        return await self._control(self._engine.cancel, tasks_pb2.CancelTaskResponse, request, context)

    @unary_errors
    async def PauseTask(  # noqa: N802
        self, request: tasks_pb2.PauseTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.PauseTaskResponse:
        """Pause a task: at once when it is queued, else at its runner's next checkpoint."""
        return await self._control(self._engine.pause, tasks_pb2.PauseTaskResponse, request, context)

    @unary_errors
    async def ResumeTask(  # noqa: N802
        self, request: tasks_pb2.ResumeTaskRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.ResumeTaskResponse:
        """Let a paused task continue."""
        return await self._control(self._engine.resume, tasks_pb2.ResumeTaskResponse, request, context)

    async def _control(
        self,
        action: Callable[[Caller, str, str], Awaitable[str]],
        response_type: type[ControlResponse],
        request: ControlRequest,
        context: grpc.aio.ServicerContext,
    ) -> ControlResponse:
        """Apply a pause, resume or cancel to one of the caller's tasks; answer what the engine said."""
        caller = await self._callers.resolve_call(context)
        task_id = require_id("task_id", request.task_id)
        message = await action(caller, task_id, request.reason)
        return response_type(success=True, message=message, task_id=task_id)

    @unary_errors
    async def GetControlState(  # noqa: N802
        self, request: tasks_pb2.GetControlStateRequest, context: grpc.aio.ServicerContext
    ) -> tasks_pb2.GetControlStateResponse:
        """Tell whether a task is paused or cancelled, by whom and why."""
        caller = await self._callers.resolve_call(context)
        state = await self._engine.control_state(caller, require_id("task_id", request.task_id))
        return tasks_pb2.GetControlStateResponse(
            is_paused=state.pause_requested,
            is_cancelled=state.cancel_requested,
            paused_at=timestamp(state.paused_at),
            pause_reason=state.pause_reason,
            paused_by=state.paused_by,
            cancel_reason=state.cancel_reason,
            cancelled_by=state.cancelled_by,
        )
