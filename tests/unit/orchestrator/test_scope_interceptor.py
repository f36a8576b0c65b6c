"""The scope interceptor on a real in-process gRPC server: refusals, one key check per call, no mix-ups."""

import asyncio

import grpc
import pytest

from orchestrator.caller import Caller
from orchestrator.identity import CallerResolver
from orchestrator.scope_enforcement import ScopeInterceptor
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc

READER_KEY = "sk_" + "a1" * 32
WRITER_KEY = "sk_" + "b2" * 32
SERVICE_TOKEN = "test-service-token-0123456789"


class CountingAuthenticator:
    """Answers two known keys, counting every check."""

    def __init__(self) -> None:
        self.checks = 0
        self.callers = {
            READER_KEY: Caller("reader", "tenant", api_key_id="key-r", scopes=("tasks:read",)),
            WRITER_KEY: Caller("writer", "tenant", api_key_id="key-w", scopes=("tasks:read", "tasks:write")),
        }

    async def authenticate(self, presented: str) -> Caller | None:
        self.checks += 1
        await asyncio.sleep(0)  # let concurrent calls interleave
        return self.callers.get(presented)


class Tasks(tasks_pb2_grpc.TaskServiceServicer):
    """Answers GetTask and SubmitTask with the caller the servicer resolves."""

    def __init__(self, callers: CallerResolver) -> None:
        self._callers = callers

    @unary_errors
    async def GetTask(self, request, context):  # noqa: N802
        caller = await self._callers.resolve_call(context)
        return tasks_pb2.GetTaskResponse(task=tasks_pb2.Task(task_id=request.task_id, user_id=caller.user_id))

    @unary_errors
    async def SubmitTask(self, request, context):  # noqa: N802
        caller = await self._callers.resolve_call(context)
        return tasks_pb2.SubmitTaskResponse(task=tasks_pb2.Task(user_id=caller.user_id))


def serve(scenario) -> CountingAuthenticator:
    authenticator = CountingAuthenticator()

    async def main() -> None:
        callers = CallerResolver(SERVICE_TOKEN, authenticator)
        server = grpc.aio.server(interceptors=(ScopeInterceptor(callers),))
        tasks_pb2_grpc.add_TaskServiceServicer_to_server(Tasks(callers), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                await scenario(tasks_pb2_grpc.TaskServiceStub(channel), authenticator)
        finally:
            await server.stop(None)

    asyncio.run(main())
    return authenticator


def key(api_key: str) -> tuple[tuple[str, str], ...]:
    return (("x-api-key", api_key),)


def test_a_direct_key_is_checked_once_per_call_and_refused_a_scope_it_lacks():
    async def scenario(stub, authenticator):
        reply = await stub.GetTask(tasks_pb2.GetTaskRequest(task_id="t-1"), metadata=key(READER_KEY))
        assert reply.task.user_id == "reader"
        assert authenticator.checks == 1

        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SubmitTask(tasks_pb2.SubmitTaskRequest(query="q"), metadata=key(READER_KEY))
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
        trailing = dict(refused.value.trailing_metadata())
        assert trailing["taskgate-error-code"] == "insufficient_scope"
        assert trailing["taskgate-missing-scope"] == "tasks:write"

        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.GetTask(tasks_pb2.GetTaskRequest(task_id="t-1"), metadata=key("sk_" + "c3" * 32))
        assert unknown.value.code() == grpc.StatusCode.UNAUTHENTICATED

    assert serve(scenario).checks == 3


def test_forwarded_scopes_are_checked_and_absent_ones_are_full_access():
    forwarded = (
        ("x-taskgate-service-token", SERVICE_TOKEN),
        ("x-taskgate-user-id", "someone"),
        ("x-taskgate-tenant-id", "tenant"),
    )

    async def scenario(stub, authenticator):
        scoped = (*forwarded, ("x-taskgate-api-key-id", "key-1"), ("x-taskgate-scopes", "tasks:read"))
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.SubmitTask(tasks_pb2.SubmitTaskRequest(query="q"), metadata=scoped)
        assert dict(refused.value.trailing_metadata())["taskgate-missing-scope"] == "tasks:write"
        reply = await stub.SubmitTask(tasks_pb2.SubmitTaskRequest(query="q"), metadata=forwarded)
        assert reply.task.user_id == "someone"

    assert serve(scenario).checks == 0


def test_concurrent_calls_each_act_for_their_own_caller():
    async def scenario(stub, authenticator):
        keys = [READER_KEY, WRITER_KEY] * 20
        replies = await asyncio.gather(
            *(
                stub.GetTask(tasks_pb2.GetTaskRequest(task_id=f"t-{number}"), metadata=key(api_key))
                for number, api_key in enumerate(keys)
            )
        )
        expected = {READER_KEY: "reader", WRITER_KEY: "writer"}
        assert [reply.task.user_id for reply in replies] == [expected[api_key] for api_key in keys]
        assert authenticator.checks == len(keys)

    serve(scenario)
