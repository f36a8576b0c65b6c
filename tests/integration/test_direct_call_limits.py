"""Per-user limits for services calling the orchestrator's gRPC API directly, and their share with HTTP.

Real processes: an orchestrator and a gateway sharing a real Redis (and, for the in-process
counting, an orchestrator without Redis). Every test registers its own user, so windows start empty.
"""

import asyncio
import concurrent.futures
import json
import subprocess
import threading
import time

import grpc
import httpx
import pytest

from orchestrator.app import build_orchestrator
from orchestrator.bus import InProcessEventBus
from orchestrator.control_signals import InProcessControlSignals
from taskgate import wire
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import events_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc
from taskgate.rate_limit_tiers import parse_tiers
from tests.integration.accounts import register
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import taskgate_command
from tests.integration.servers import start_redis
from tests.integration.turn_client import new_api_key
from tests.integration.turn_client import settings_for

MINUTE_LIMIT = 20
TIERS = json.dumps({"default": {"minute": MINUTE_LIMIT, "hour": 1000}})


class Deployment:
    """One orchestrator and one gateway with the same settings."""

    def __init__(self, tmp, **overrides: str) -> None:
        self.env = base_env(tmp, TASKGATE_RATE_LIMIT_TIERS=TIERS, **overrides)
        self.orchestrator = Orchestrator(
            env=self.env,
            grpc_addr=self.env["TASKGATE_GRPC_ADDR"],
            admin_url=self.env["TASKGATE_ADMIN_URL"],
            log_path=tmp / "orchestrator.log",
        ).start()
        self.gateway = Gateway(
            env=self.env, url="http://" + self.env["TASKGATE_GATEWAY_BIND"], log_path=tmp / "gateway.log"
        )
        try:
            self.gateway.start()
        except BaseException:
            self.orchestrator.stop()
            raise
        self.channel = grpc.insecure_channel(self.env["TASKGATE_GRPC_ADDR"])
        self.tasks = tasks_pb2_grpc.TaskServiceStub(self.channel)

    def list_tasks(self, api_key: str) -> grpc.StatusCode:
        """Call ListTasks directly with an API key; return its status code."""
        try:
            self.tasks.ListTasks(
                tasks_pb2.ListTasksRequest(), metadata=((wire.API_KEY, api_key),), timeout=30
            )
        except grpc.RpcError as ex:
            return ex.code()
        return grpc.StatusCode.OK

    def stop(self) -> None:
        self.channel.close()
        self.gateway.stop()
        self.orchestrator.stop()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, redis_server):
    """Orchestrator and gateway counting in the same Redis."""
    running = Deployment(tmp_path_factory.mktemp("direct-limits"), TASKGATE_REDIS_URL=redis_server.url)
    yield running
    running.stop()


def second_key(gateway_url: str, access_token: str) -> tuple[str, str]:
    """Create another API key of the access token's user; return its id and secret."""
    response = httpx.post(
        gateway_url + "/api/v1/auth/api-keys",
        json={"name": "second"},
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return response.json()["id"], response.json()["api_key"]


def fire_in_parallel(calls: list) -> list:
    """Run every call at once, each on its own thread; return their results in order."""
    barrier = threading.Barrier(len(calls))

    def run(call):
        barrier.wait()
        return call()

    with concurrent.futures.ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_http_and_direct_grpc_calls_of_one_user_share_its_window_exactly(shared) -> None:
    account = register(shared.gateway.url)
    _, grpc_key = second_key(shared.gateway.url, account.access_token)

    def http_with_key():
        return httpx.get(
            shared.gateway.url + "/api/v1/tasks", headers={"X-API-Key": account.api_key}, timeout=30
        )

    def http_with_token():
        return httpx.get(
            shared.gateway.url + "/api/v1/tasks",
            headers={"Authorization": f"Bearer {account.access_token}"},
            timeout=30,
        )

    calls = [(http_with_key, http_with_token, lambda: shared.list_tasks(grpc_key))[n % 3] for n in range(36)]
    outcomes = [
        result if isinstance(result, grpc.StatusCode) else result.status_code
        for result in fire_in_parallel(calls)
    ]
    admitted = outcomes.count(200) + outcomes.count(grpc.StatusCode.OK)
    refused = outcomes.count(429) + outcomes.count(grpc.StatusCode.RESOURCE_EXHAUSTED)
    # Creating the second key was the user's first request of the minute.
    assert (admitted, refused) == (MINUTE_LIMIT - 1, 37 - MINUTE_LIMIT), outcomes
    # Every kind of caller was refused the same way once the user's minute was full.
    assert shared.list_tasks(grpc_key) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert http_with_token().status_code == 429
    account.close()


def test_a_refused_direct_call_carries_the_reason_retry_after_and_the_limits(shared) -> None:
    account = register(shared.gateway.url)
    assert [shared.list_tasks(account.api_key) for _ in range(MINUTE_LIMIT)] == [
        grpc.StatusCode.OK
    ] * MINUTE_LIMIT
    with pytest.raises(grpc.RpcError) as raised:
        shared.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(), metadata=((wire.API_KEY, account.api_key),), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert raised.value.details() == "Rate limit exceeded"
    trailing = dict(raised.value.trailing_metadata())
    assert trailing[wire.ERROR_CODE] == wire.RATE_LIMITED
    assert 50 <= int(trailing[wire.RETRY_AFTER]) <= 60
    assert (trailing[wire.RATE_LIMIT_WINDOW], trailing[wire.RATE_LIMIT_COUNTED_PER]) == ("minute", "user")
    assert trailing["x-ratelimit-limit-minute"] == str(MINUTE_LIMIT)
    assert trailing["x-ratelimit-remaining-minute"] == "0"
    assert trailing["x-ratelimit-remaining-hour"] == str(1000 - MINUTE_LIMIT)
    assert int(trailing["x-ratelimit-reset"]) > time.time()
    assert trailing["ratelimit-policy"] == f'"minute";q={MINUTE_LIMIT};w=60, "hour";q=1000;w=3600'
    # A made-up service token does not skip the limit: the call is refused for its credentials.
    with pytest.raises(grpc.RpcError) as forged:
        shared.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(),
            metadata=((wire.API_KEY, account.api_key), (wire.SERVICE_TOKEN, "not-the-service-token")),
            timeout=30,
        )
    assert forged.value.code() == grpc.StatusCode.UNAUTHENTICATED
    # The same user over HTTP is refused too: one window.
    refused = account.key_client.get("/api/v1/tasks")
    assert (refused.status_code, refused.json()["counted_per"]) == (429, "user")
    account.close()


def test_the_gateways_calls_are_counted_once(shared) -> None:
    account = register(shared.gateway.url)
    for n in range(1, 6):
        response = account.key_client.get("/api/v1/tasks")
        # Each request reaches the orchestrator with the service token: not counted a second time.
        assert response.headers["X-RateLimit-Remaining-Minute"] == str(MINUTE_LIMIT - n)
    submitted = account.token_client.post("/api/v1/tasks", json={"query": "What is 2+2?"})
    assert submitted.headers["X-RateLimit-Remaining-Minute"] == str(MINUTE_LIMIT - 6)
    assert shared.list_tasks(account.api_key) == grpc.StatusCode.OK
    me = account.key_client.get("/api/v1/auth/me").json()["rate_limits"]
    assert me["minute"] == {"limit": MINUTE_LIMIT, "remaining": MINUTE_LIMIT - 8}
    account.close()


def test_a_keys_own_limit_is_a_sub_limit_over_grpc_and_http(shared) -> None:
    account = register(shared.gateway.url)
    key_id, limited_key = second_key(shared.gateway.url, account.access_token)
    subprocess.run(
        taskgate_command("users", "set-role", "--email", account.email, "--role", "owner"),
        env=shared.env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    patched = account.token_client.patch(f"/api/v1/auth/api-keys/{key_id}", json={"rate_limit_per_minute": 3})
    assert patched.status_code == 200, patched.text
    # The orchestrator reads the key afresh on every direct call: three pass, then the key's window refuses.
    statuses = [shared.list_tasks(limited_key) for _ in range(3)]
    assert statuses == [grpc.StatusCode.OK] * 3
    with pytest.raises(grpc.RpcError) as raised:
        shared.tasks.ListTasks(
            tasks_pb2.ListTasksRequest(), metadata=((wire.API_KEY, limited_key),), timeout=30
        )
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    trailing = dict(raised.value.trailing_metadata())
    assert (trailing[wire.RATE_LIMIT_WINDOW], trailing[wire.RATE_LIMIT_COUNTED_PER]) == ("minute", "api_key")
    assert (trailing["x-ratelimit-limit-minute"], trailing["x-ratelimit-remaining-minute"]) == ("3", "0")
    # Over HTTP the same key counts in the same key window (the gateway has not seen it yet).
    refused = httpx.get(shared.gateway.url + "/api/v1/tasks", headers={"X-API-Key": limited_key}, timeout=30)
    assert (refused.status_code, refused.json()["window"], refused.json()["counted_per"]) == (
        429,
        "minute",
        "api_key",
    )
    assert refused.headers["RateLimit-Policy"] == (
        f'"minute";q={MINUTE_LIMIT};w=60, "hour";q=1000;w=3600, "key-minute";q=3;w=60'
    )
    # The user's window holds the key creation, the change and the key's three calls; the key's
    # refusals cost the user nothing, so its other key has the rest.
    other = account.key_client.get("/api/v1/tasks")
    assert (other.status_code, other.headers["X-RateLimit-Remaining-Minute"]) == (200, str(MINUTE_LIMIT - 6))
    account.close()


def test_without_redis_the_orchestrator_counts_direct_calls_in_process(tmp_path) -> None:
    alone = Deployment(tmp_path)
    try:
        account = register(alone.gateway.url)
        statuses = [alone.list_tasks(account.api_key) for _ in range(MINUTE_LIMIT + 1)]
        assert statuses == [grpc.StatusCode.OK] * MINUTE_LIMIT + [grpc.StatusCode.RESOURCE_EXHAUSTED]
        # A streaming call is refused before it opens, with the same metadata.
        stream = events_pb2_grpc.EventServiceStub(alone.channel).StreamEvents(
            events_pb2.StreamEventsRequest(workflow_id="task-anything"),
            metadata=((wire.API_KEY, account.api_key),),
            timeout=30,
        )
        with pytest.raises(grpc.RpcError) as raised:
            list(stream)
        assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert dict(raised.value.trailing_metadata())[wire.ERROR_CODE] == wire.RATE_LIMITED
        account.close()
    finally:
        alone.stop()


@pytest.mark.parametrize("fail_closed", [False, True])
def test_with_redis_down_direct_calls_fail_open_or_closed_as_configured(tmp_path, fail_closed) -> None:
    outage_redis = start_redis()
    settings = settings_for(
        f"sqlite:///{tmp_path / 'taskgate.db'}",
        redis_url=outage_redis.url,
        rate_limit_tiers=parse_tiers(TIERS),
        rate_limit_fail_closed=fail_closed,
    )

    async def scenario():
        # The event bus and control signals in process: only the limiter uses this Redis.
        orchestrator = await build_orchestrator(
            settings, bus=InProcessEventBus(), signals=InProcessControlSignals()
        )
        async with orchestrator:
            _, api_key = await new_api_key(orchestrator, "outage@example.com")
            metadata = ((wire.API_KEY, api_key),)
            async with grpc.aio.insecure_channel(f"127.0.0.1:{orchestrator.grpc_port}") as channel:
                tasks = tasks_pb2_grpc.TaskServiceStub(channel)
                await tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=metadata, timeout=30)
                outage_redis.halt()
                outcomes = []
                for _ in range(MINUTE_LIMIT + 5):
                    try:
                        await tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=metadata, timeout=30)
                        outcomes.append((grpc.StatusCode.OK, None))
                    except grpc.aio.AioRpcError as ex:
                        outcomes.append((ex.code(), dict(ex.trailing_metadata() or ())))
                outage_redis.start()
                recovered = None
                deadline = asyncio.get_running_loop().time() + 30
                while recovered is None:
                    try:
                        await tasks.ListTasks(tasks_pb2.ListTasksRequest(), metadata=metadata, timeout=30)
                        recovered = True
                    except grpc.aio.AioRpcError:
                        assert asyncio.get_running_loop().time() < deadline, "Redis never counted again"
                        await asyncio.sleep(0.1)
        return outcomes

    try:
        outcomes = asyncio.run(scenario())
    finally:
        outage_redis.stop()
    if fail_closed:
        assert {code for code, _ in outcomes} == {grpc.StatusCode.UNAVAILABLE}
        assert outcomes[0][1][wire.RETRY_AFTER] == "1"
    else:
        # Served without limits: more calls than the minute allows all went through.
        assert outcomes == [(grpc.StatusCode.OK, None)] * (MINUTE_LIMIT + 5)
