"""An orchestrator run in the test's own process, and a user's asynchronous gRPC client of any orchestrator.

The session-turn and fair-claim tests submit and watch tasks through real gRPC, a turn's
``multitask_strategy`` in its ``SubmitTaskRequest``.
"""

import asyncio
import contextlib
import dataclasses
import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import grpc

from orchestrator.app import Orchestrator
from orchestrator.app import build_orchestrator
from orchestrator.caller import Caller
from orchestrator.engine.api_keys import KeyRequest
from orchestrator.errors import SessionBusyError
from orchestrator.settings import OrchestratorSettings
from taskgate import wire
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import sessions_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.rate_limit_tiers import parse_tiers
from tests.integration.processes import UNREACHED_RATE_LIMIT_TIERS

#: A pause between simulated steps that no test outlasts: such a turn runs until it is cancelled.
ENDLESS_STEP_SECONDS = 60.0
#: A pause that lets a turn finish in well under a second.
QUICK_STEP_SECONDS = 0.02
WAIT_SECONDS = 60.0
TERMINAL = {
    common_pb2.TASK_STATUS_COMPLETED,
    common_pb2.TASK_STATUS_FAILED,
    common_pb2.TASK_STATUS_CANCELLED,
    common_pb2.TASK_STATUS_TIMEOUT,
}


def settings_for(database_url: str, **fields: Any) -> OrchestratorSettings:
    """Return the settings of an orchestrator in this process: ports picked by the system, no Redis."""
    values: dict[str, Any] = {
        "service_token": secrets.token_urlsafe(32),
        "env": "test",
        "grpc_addr": "127.0.0.1:0",
        "admin_addr": "127.0.0.1:0",
        "database_url": database_url,
        "jwt_secret": secrets.token_hex(32),
        "worker_concurrency": 2,
        "sim_step_seconds": QUICK_STEP_SECONDS,
        # Turns are polled with the API key many times a second: limits no test reaches.
        "rate_limit_tiers": parse_tiers(UNREACHED_RATE_LIMIT_TIERS),
        **fields,
    }
    return OrchestratorSettings(**values)


@contextlib.asynccontextmanager
async def serving(settings: OrchestratorSettings) -> AsyncIterator[Orchestrator]:
    """Build and start an orchestrator in this process; stop it after the block."""
    async with await build_orchestrator(settings) as orchestrator:
        yield orchestrator


async def new_api_key(orchestrator: Orchestrator, email: str) -> tuple[Caller, str]:
    """Create (or find) a user through the orchestrator's engines and give it an API key."""
    user = await orchestrator.engines.accounts.find_or_create_user(email)
    caller = Caller(user.id, user.tenant_id)
    key = await orchestrator.engines.api_keys.create_key(caller, KeyRequest("test"))
    return caller, key.api_key


@dataclasses.dataclass
class TaskClient:
    """One user's calls to an orchestrator's gRPC services, with its API key."""

    channel: grpc.aio.Channel
    api_key: str

    @classmethod
    def connect(cls, address: str, api_key: str, **fields: Any) -> "TaskClient":
        """Return a client of the orchestrator at ``host:port``; close it with ``close``."""
        return cls(grpc.aio.insecure_channel(address), api_key, **fields)

    async def close(self) -> None:
        """Close the channel."""
        await self.channel.close()

    @property
    def _metadata(self) -> tuple[tuple[str, str], ...]:
        return ((wire.API_KEY, self.api_key),)

    async def submit(
        self,
        query: str,
        session_id: str = "",
        step_seconds: float = QUICK_STEP_SECONDS,
        strategy: str | None = None,
    ) -> tasks_pb2.Task:
        """Submit a turn whose simulated steps pause ``step_seconds``; return it as stored.

        A refused turn (``reject`` while the session is busy) raises SessionBusyError.
        """
        context = {"simulation": {"step_seconds": step_seconds}}
        fields = {"multitask_strategy": strategy} if strategy is not None else {}
        stub = tasks_pb2_grpc.TaskServiceStub(self.channel)
        request = tasks_pb2.SubmitTaskRequest(
            query=query, session_id=session_id, context_json=json.dumps(context), **fields
        )
        try:
            reply = await stub.SubmitTask(request, metadata=self._metadata, timeout=10)
        except grpc.aio.AioRpcError as ex:
            if (wire.ERROR_CODE, wire.SESSION_BUSY) in tuple(ex.trailing_metadata() or ()):
                raise SessionBusyError() from ex
            raise
        return reply.task

    async def task(self, task_id: str) -> tasks_pb2.Task:
        """Return a task as GetTask shows it."""
        stub = tasks_pb2_grpc.TaskServiceStub(self.channel)
        reply = await stub.GetTask(
            tasks_pb2.GetTaskRequest(task_id=task_id), metadata=self._metadata, timeout=10
        )
        return reply.task

    async def wait_for(self, task_id: str, *statuses: int) -> tasks_pb2.Task:
        """Poll a task until it has one of ``statuses`` (any terminal one when none is given)."""
        wanted = set(statuses) or TERMINAL
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            task = await self.task(task_id)
            if task.status in wanted:
                return task
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"task {task_id} is {common_pb2.TaskStatus.Name(task.status)}")
            await asyncio.sleep(0.02)

    async def with_status(self, status: int) -> tuple[int, list[str]]:
        """Return how many of the user's tasks have a status, and the ids of the newest 100."""
        stub = tasks_pb2_grpc.TaskServiceStub(self.channel)
        request = tasks_pb2.ListTasksRequest(status=status, page=common_pb2.PageRequest(limit=100))
        reply = await stub.ListTasks(request, metadata=self._metadata, timeout=10)
        return reply.total_count, [task.task_id for task in reply.tasks]

    async def cancel(self, task_id: str) -> None:
        """Cancel a task."""
        stub = tasks_pb2_grpc.TaskServiceStub(self.channel)
        await stub.CancelTask(
            tasks_pb2.CancelTaskRequest(task_id=task_id), metadata=self._metadata, timeout=10
        )

    async def cancel_reason(self, task_id: str) -> str:
        """Return why a task was cancelled, as its control state says."""
        stub = tasks_pb2_grpc.TaskServiceStub(self.channel)
        request = tasks_pb2.GetControlStateRequest(task_id=task_id)
        reply = await stub.GetControlState(request, metadata=self._metadata, timeout=10)
        return reply.cancel_reason

    async def events(self, task_id: str) -> list[events_pb2.Event]:
        """Return a task's stored events in seq order (at most 200)."""
        stub = events_pb2_grpc.EventServiceStub(self.channel)
        request = events_pb2.ListEventsRequest(workflow_id=task_id, limit=200)
        return list((await stub.ListEvents(request, metadata=self._metadata, timeout=10)).events)

    async def history_turns(self, task_id: str) -> int:
        """Return how many earlier turns the runner was given (the simulated agent's analyse step says)."""
        for event in await self.events(task_id):
            payload = json.loads(event.payload_json or "{}")
            if event.type == "AGENT_THINKING" and "history_turns" in payload:
                return payload["history_turns"]
        raise AssertionError(f"task {task_id} never analysed its request")

    async def follow(self, task_id: str) -> list[str]:
        """Stream a task's events until its stream ends; return their types."""
        stub = events_pb2_grpc.EventServiceStub(self.channel)
        call = stub.StreamEvents(
            events_pb2.StreamEventsRequest(workflow_id=task_id), metadata=self._metadata, timeout=WAIT_SECONDS
        )
        return [reply.event.type async for reply in call]

    async def session_history(self, session_id: str) -> list[str]:
        """Return the ids of the tasks a session's history lists, oldest first."""
        stub = sessions_pb2_grpc.SessionServiceStub(self.channel)
        request = sessions_pb2.GetSessionHistoryRequest(session_id=session_id)
        reply = await stub.GetSessionHistory(request, metadata=self._metadata, timeout=10)
        return [task.task_id for task in reply.tasks]

    async def session_task_count(self, session_id: str) -> int:
        """Return the session's task count."""
        stub = sessions_pb2_grpc.SessionServiceStub(self.channel)
        request = sessions_pb2.GetSessionRequest(session_id=session_id)
        return (await stub.GetSession(request, metadata=self._metadata, timeout=10)).session.task_count

    async def ran_after(self, later_id: str, earlier_id: str) -> bool:
        """Whether one task started only after another had ended.

        Compared by their events, stamped when written on this machine's clock: the earlier task's
        STREAM_END is stamped before it commits, the later one's WORKFLOW_STARTED after its claim.
        """
        earlier, later = await self.events(earlier_id), await self.events(later_id)
        assert earlier and earlier[-1].type == "STREAM_END", f"task {earlier_id} has not ended"
        started = [event for event in later if event.type == "WORKFLOW_STARTED"]
        assert started, f"task {later_id} has not started"
        return started[0].timestamp.ToDatetime() >= earlier[-1].timestamp.ToDatetime()
