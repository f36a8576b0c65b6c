"""The orchestrator's composition root, run in this process with a store, bus and runner of the test's."""

import asyncio
import dataclasses
import secrets

import grpc
import httpx
import pytest

from orchestrator.app import build_orchestrator
from orchestrator.backends import StartupError
from orchestrator.bus import InProcessEventBus
from orchestrator.caller import Caller
from orchestrator.engine.api_keys import KeyRequest
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.settings import OrchestratorSettings
from orchestrator.store import open_store
from taskgate import wire
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.orchestrator.v1.common_pb2 import TASK_STATUS_COMPLETED

ANSWER = "answered by the test's runner"


class EchoRunner(Runner):
    """Answers every task at once with the same text."""

    async def run(self, ctx: RunContext) -> RunResult:
        return RunResult(ANSWER, 1, 1, 0.0, "echo", "test")


def settings_for(tmp_path) -> OrchestratorSettings:
    return OrchestratorSettings(
        service_token=secrets.token_urlsafe(32),
        env="test",
        grpc_addr="127.0.0.1:0",
        admin_addr="127.0.0.1:0",
        database_url=f"sqlite:///{tmp_path / 'taskgate.db'}",
        jwt_secret=secrets.token_hex(32),
        worker_concurrency=2,
    )


def test_an_orchestrator_built_with_parts_of_its_own_serves_grpc_and_stops_cleanly(tmp_path):
    settings = settings_for(tmp_path)

    async def scenario():
        store = await open_store(settings.database_url)
        bus = InProcessEventBus()
        orchestrator = await build_orchestrator(settings, store=store, bus=bus, runner=EchoRunner())
        async with orchestrator:
            assert orchestrator.grpc_port > 0 and orchestrator.admin_port > 0
            assert (orchestrator.store, orchestrator.bus) == (store, bus)
            user = await orchestrator.engines.accounts.find_or_create_user("ada@example.com")
            key = await orchestrator.engines.api_keys.create_key(
                Caller(user.id, user.tenant_id), KeyRequest("test")
            )
            metadata = ((wire.API_KEY, key.api_key),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{orchestrator.grpc_port}") as channel:
                tasks = tasks_pb2_grpc.TaskServiceStub(channel)
                submitted = await tasks.SubmitTask(
                    tasks_pb2.SubmitTaskRequest(query="What is 2+2?"), metadata=metadata, timeout=10
                )
                task = await _finished(tasks, submitted.task.task_id, metadata)
            async with httpx.AsyncClient() as client:
                admin = await client.get(f"http://127.0.0.1:{orchestrator.admin_port}/health")
        stored = await store.get_task(task.task_id, user.id)
        # The store was the test's: the orchestrator left it open.
        await store.close()
        left_running = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        return task, stored, admin, left_running, orchestrator.grpc_port

    task, stored, admin, left_running, grpc_port = asyncio.run(scenario())

    assert (task.status, task.result) == (TASK_STATUS_COMPLETED, ANSWER)
    assert stored is not None and stored.result == ANSWER
    assert admin.json() == {"status": "healthy"}
    assert left_running == []
    assert not _accepts_calls(grpc_port)


def test_an_orchestrator_that_cannot_listen_says_which_setting_and_closes_what_it_opened(tmp_path):
    settings = settings_for(tmp_path)

    async def scenario():
        async with await build_orchestrator(settings) as first:
            taken = dataclasses.replace(settings, grpc_addr=f"127.0.0.1:{first.grpc_port}")
            second = await build_orchestrator(taken)
            with pytest.raises(StartupError, match="TASKGATE_GRPC_ADDR"):
                async with second:
                    pass
        return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]

    assert asyncio.run(scenario()) == []


async def _finished(tasks, task_id: str, metadata) -> tasks_pb2.Task:
    for _ in range(200):
        reply = await tasks.GetTask(tasks_pb2.GetTaskRequest(task_id=task_id), metadata=metadata, timeout=10)
        if reply.task.status == TASK_STATUS_COMPLETED:
            return reply.task
        await asyncio.sleep(0.05)
    raise AssertionError(f"task {task_id} did not complete: {reply.task}")


def _accepts_calls(port: int) -> bool:
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
        except grpc.FutureTimeoutError:
            return False
    return True
