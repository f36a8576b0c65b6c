"""Plain in-memory stand-ins for the gateway's dependencies, for app-level unit tests."""

import datetime

import grpc
from google.protobuf import timestamp_pb2

from gateway.admin_stream import StreamRequest
from gateway.caller import CallContext
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import tasks_pb2

API_KEY = "sk_" + "a1" * 32
OTHER_API_KEY = "sk_" + "b2" * 32
SERVICE_TOKEN = "test-service-token-0123456789"


class FakeRpcError(grpc.RpcError):
    """A failed call as the gRPC client raises it: a code, a details string and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str = "", trailing: tuple = ()) -> None:
        super().__init__(details)
        self._code = code
        self._details = details
        self._trailing = trailing

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing


def timestamp(text: str) -> timestamp_pb2.Timestamp:
    value = timestamp_pb2.Timestamp()
    value.FromDatetime(datetime.datetime.fromisoformat(text))
    return value


class FakeOrchestrator:
    """Answers the OrchestratorClient calls from dictionaries and records every call."""

    def __init__(self) -> None:
        self.principals = {
            API_KEY: auth_pb2.Principal(user_id="user-1", tenant_id="tenant-1", role="user", tier="free"),
        }
        self.tasks: dict[str, tasks_pb2.Task] = {}
        self.events: dict[str, list[events_pb2.Event]] = {}
        self.calls: list[tuple[str, object, CallContext]] = []
        self.failures: dict[str, Exception] = {}
        self.serving = True

    def _record(self, name: str, request: object, context: CallContext) -> None:
        self.calls.append((name, request, context))
        if name in self.failures:
            raise self.failures[name]

    def calls_named(self, name: str) -> list[tuple[str, object, CallContext]]:
        return [call for call in self.calls if call[0] == name]

    def validate_api_key(self, api_key: str, context: CallContext) -> auth_pb2.Principal:
        self._record("validate_api_key", api_key, context)
        if api_key not in self.principals:
            raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Invalid API key")
        return self.principals[api_key]

    def submit_task(
        self, request: tasks_pb2.SubmitTaskRequest, context: CallContext
    ) -> tasks_pb2.SubmitTaskResponse:
        self._record("submit_task", request, context)
        number = len(self.tasks) + 1
        task = tasks_pb2.Task(
            task_id=f"task-{number}",
            workflow_id=f"task-{number}",
            session_id=request.session_id or f"session-{number}",
            user_id=context.principal.user_id,
            query=request.query,
            status=common_pb2.TASK_STATUS_QUEUED,
            mode=request.mode or "standard",
            created_at=timestamp("2026-01-02T03:04:05.678+00:00"),
        )
        self.tasks[task.task_id] = task
        return tasks_pb2.SubmitTaskResponse(task=task, message="Task submitted")

    def get_task(self, task_id: str, context: CallContext) -> tasks_pb2.Task:
        self._record("get_task", task_id, context)
        if task_id not in self.tasks:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, "Task not found")
        return self.tasks[task_id]

    def list_tasks(
        self, request: tasks_pb2.ListTasksRequest, context: CallContext
    ) -> tasks_pb2.ListTasksResponse:
        self._record("list_tasks", request, context)
        tasks = list(reversed(self.tasks.values()))
        page = tasks[request.page.offset : request.page.offset + request.page.limit]
        return tasks_pb2.ListTasksResponse(tasks=page, total_count=len(tasks))

    def list_events(
        self, request: events_pb2.ListEventsRequest, context: CallContext
    ) -> events_pb2.ListEventsResponse:
        self._record("list_events", request, context)
        if request.workflow_id not in self.tasks:
            raise FakeRpcError(grpc.StatusCode.NOT_FOUND, "Task not found")
        events = self.events.get(request.workflow_id, [])
        page = events[request.offset : request.offset + request.limit]
        return events_pb2.ListEventsResponse(events=page, count=len(events))

    def is_serving(self, timeout_seconds: float) -> bool:
        self.calls.append(("is_serving", timeout_seconds, None))
        return self.serving


class FakeFrames:
    """A stream body that remembers whether it was closed."""

    def __init__(self, frames: list[bytes]) -> None:
        self._frames = iter(frames)
        self.closed = False

    def __iter__(self) -> "FakeFrames":
        return self

    def __next__(self) -> bytes:
        return next(self._frames)

    def close(self) -> None:
        self.closed = True


class FakeAdminStream:
    """Opens canned streams, or raises the error it was given, recording each request."""

    def __init__(self, frames: list[bytes] | None = None) -> None:
        self.frames = (
            frames if frames is not None else [b"retry: 3000\n\n", b"id: 1\nevent: done\ndata: [DONE]\n\n"]
        )
        self.failure: Exception | None = None
        self.opened: list[tuple[StreamRequest, CallContext, FakeFrames]] = []

    def open(self, request: StreamRequest, context: CallContext) -> FakeFrames:
        if self.failure is not None:
            raise self.failure
        frames = FakeFrames(self.frames)
        self.opened.append((request, context, frames))
        return frames
