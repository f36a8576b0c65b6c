"""A direct gRPC caller's revoked API key stops working within the cache time, on both stores."""

import grpc
import pytest

from taskgate import wire
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from tests.integration.accounts import register
from tests.integration.processes import wait_until

pytestmark = pytest.mark.integration

# TASKGATE_API_KEY_CACHE_SECONDS is 5 by default; the wait is generous for a loaded machine.
REVOCATION_WAIT_SECONDS = 60.0


def test_a_revoked_key_stops_working_on_direct_calls_within_the_cache_time(stack):
    account = register(stack.url)
    second = account.token_client.post("/api/v1/auth/api-keys", json={"name": "direct"})
    assert second.status_code == 201, second.text
    key, key_id = second.json()["api_key"], second.json()["id"]
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        tasks = tasks_pb2_grpc.TaskServiceStub(channel)

        def list_tasks() -> grpc.StatusCode:
            try:
                tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=((wire.API_KEY, key),), timeout=30)
            except grpc.RpcError as ex:
                return ex.code()
            return grpc.StatusCode.OK

        # Called twice: the second call is answered from the key trusted by the first.
        assert [list_tasks(), list_tasks()] == [grpc.StatusCode.OK] * 2
        auth_pb2_grpc.AuthServiceStub(channel).RevokeApiKey(
            auth_pb2.RevokeApiKeyRequest(id=key_id), metadata=((wire.API_KEY, account.api_key),), timeout=30
        )
        wait_until(
            lambda: list_tasks() == grpc.StatusCode.UNAUTHENTICATED,
            timeout=REVOCATION_WAIT_SECONDS,
            interval=0.5,
            what="the revoked key to be refused",
        )
        # Refused from then on: a refusal is never remembered as trusted.
        assert list_tasks() == grpc.StatusCode.UNAUTHENTICATED
    account.close()
