"""A session_busy refusal crosses gRPC and reaches HTTP clients as 409 ``session_busy``.

The orchestrator here is the real TaskService servicer (and its error wrapping) on a real
``grpc.aio`` server, over an engine that checks the submission as the real one does and then
raises the error the test names: the refusal's wire format is tested without depending on how the
store decides that a session is busy. The gateway is the real gunicorn process, with the
development bypass so that it asks the orchestrator nothing but SubmitTask.
"""

import asyncio
import threading

import grpc
import httpx
import pytest

from orchestrator.engine.submission import TaskSubmission
from orchestrator.engine.submission import validate_submission
from orchestrator.errors import SessionBusyError
from orchestrator.errors import TaskStateError
from orchestrator.identity import ApiKeyAuthenticator
from orchestrator.identity import CallerResolver
from orchestrator.services.tasks import TaskServiceServicer
from taskgate import wire
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.processes import base_env
from tests.integration.processes import start_gateway

BUSY_MESSAGE = SessionBusyError.default_message


class RefusingEngine:
    """Stands for the task engine: checks a submission, records it, then raises ``error``."""

    def __init__(self) -> None:
        self.error: Exception = SessionBusyError()
        self.submissions: list[TaskSubmission] = []

    async def submit(self, caller, submission: TaskSubmission):
        validate_submission(submission)
        self.submissions.append(submission)
        raise self.error


class OrchestratorThread:
    """The TaskService on a grpc.aio server, served from an event loop of its own thread."""

    def __init__(self, service_token: str, engine: RefusingEngine) -> None:
        self._service_token = service_token
        self._engine = engine
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="orchestrator", daemon=True)
        self._server: grpc.aio.Server | None = None
        self.port = 0

    def start(self) -> "OrchestratorThread":
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)
        return self

    async def _serve(self) -> None:
        callers = CallerResolver(self._service_token, ApiKeyAuthenticator(store=None))
        self._server = grpc.aio.server()
        servicer = TaskServiceServicer(self._engine, callers)
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(servicer, self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        await self._server.start()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._server.stop(None), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@pytest.fixture(scope="module")
def engine() -> RefusingEngine:
    return RefusingEngine()


@pytest.fixture(scope="module")
def service_token(tmp_path_factory) -> str:
    return base_env(tmp_path_factory.mktemp("token"))["TASKGATE_SERVICE_TOKEN"]


@pytest.fixture(scope="module")
def orchestrator(service_token, engine):
    running = OrchestratorThread(service_token, engine).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory, orchestrator, service_token):
    running = start_gateway(
        tmp_path_factory.mktemp("session-busy"),
        TASKGATE_SERVICE_TOKEN=service_token,
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{orchestrator.port}",
        TASKGATE_SKIP_AUTH="1",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield running
    running.stop()


@pytest.fixture()
def refusal(engine):
    """Reset the engine to refuse with session_busy, and put it back after the test."""
    engine.error = SessionBusyError()
    engine.submissions.clear()
    yield engine
    engine.error = SessionBusyError()


@pytest.mark.parametrize("path", ["/api/v1/tasks", "/api/v1/tasks/stream"])
def test_a_busy_session_is_409_session_busy_in_the_error_body(gateway, refusal, path):
    body = {"query": "second turn", "session_id": "session-1", "multitask_strategy": "reject"}

    response = httpx.post(gateway.url + path, json=body, timeout=30)

    assert response.status_code == 409, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "error": BUSY_MESSAGE,
        "code": "session_busy",
        "request_id": response.headers["X-Request-ID"],
    }
    assert "X-Workflow-ID" not in response.headers
    [submission] = refusal.submissions
    assert (submission.session_id, submission.multitask_strategy) == ("session-1", "reject")


def test_any_other_task_state_conflict_is_still_409_conflict(gateway, refusal):
    refusal.error = TaskStateError("Task has already finished")

    response = httpx.post(gateway.url + "/api/v1/tasks", json={"query": "q"}, timeout=30)

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "conflict"
    assert response.json()["error"] == "Task has already finished"


def test_a_grpc_caller_tells_session_busy_apart_by_its_trailing_metadata(
    orchestrator, service_token, refusal
):
    metadata = ((wire.SERVICE_TOKEN, service_token), (wire.USER_ID, "user-1"), (wire.TENANT_ID, "tenant-1"))
    request = tasks_pb2.SubmitTaskRequest(query="q", session_id="session-1", multitask_strategy="reject")

    with (
        grpc.insecure_channel(f"127.0.0.1:{orchestrator.port}") as channel,
        pytest.raises(grpc.RpcError) as caught,
    ):
        tasks_pb2_grpc.TaskServiceStub(channel).SubmitTask(request, metadata=metadata, timeout=30)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert caught.value.details() == BUSY_MESSAGE
    assert (wire.ERROR_CODE, wire.SESSION_BUSY) in tuple(caught.value.trailing_metadata())
