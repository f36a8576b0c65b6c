"""Rate limits through real gateway processes: exactness, headers, outages.

The tests that take ``gateways`` run twice: against two gateways of two workers each sharing a
real Redis, and against the embedded default as ``make run`` starts it (``taskgate gateway``
without Redis and with its default worker settings: one gevent worker keeping the windows).
"""

import concurrent.futures
import json
import re
import secrets
import threading
import time
import uuid

import httpx
import openai
import pytest

from gateway.settings import DEFAULT_WORKERS_WITH_REDIS
from tests.integration.gateway_workers import worker_pids
from tests.integration.processes import Gateway
from tests.integration.processes import Orchestrator
from tests.integration.processes import base_env
from tests.integration.processes import create_api_key
from tests.integration.processes import free_port
from tests.integration.processes import wait_until
from tests.integration.redis_monitor import client_commands
from tests.integration.servers import start_redis

MINUTE_LIMIT = 30
LOGIN_LIMIT = 5
REFRESH_LIMIT = 7
WINDOW_TIERS = json.dumps({"default": {"minute": MINUTE_LIMIT, "hour": 1000}})


class Deployment:
    """One orchestrator and any number of gateways in front of it, each with its own settings."""

    def __init__(self, tmp, redis_url: str) -> None:
        self.tmp = tmp
        self.env = base_env(
            tmp,
            TASKGATE_REDIS_URL=redis_url,
            TASKGATE_RATE_LIMIT_TIERS=WINDOW_TIERS,
            TASKGATE_RATE_LIMIT_LOGIN_PER_MINUTE=str(LOGIN_LIMIT),
            TASKGATE_RATE_LIMIT_REFRESH_PER_MINUTE=str(REFRESH_LIMIT),
        )
        self.orchestrator = Orchestrator(
            env=self.env,
            grpc_addr=self.env["TASKGATE_GRPC_ADDR"],
            admin_url=self.env["TASKGATE_ADMIN_URL"],
            log_path=tmp / "orchestrator.log",
        ).start()
        self.gateways: list[Gateway] = []

    def gateway(self, **overrides: str) -> Gateway:
        """Start one more gateway on a free port with these settings on top of the shared ones."""
        bind = f"127.0.0.1:{free_port()}"
        env = {**self.env, "TASKGATE_GATEWAY_BIND": bind, **overrides}
        gateway = Gateway(
            env=env, url=f"http://{bind}", log_path=self.tmp / f"gateway-{len(self.gateways)}.log"
        )
        self.gateways.append(gateway.start())
        return gateway

    def new_key(self) -> str:
        """Create a user with a key whose windows are still empty."""
        return self.new_keys(1)[0]

    def new_keys(self, count: int) -> list[str]:
        """Create a user with ``count`` keys, its windows still empty."""
        email = f"limits-{uuid.uuid4().hex[:12]}@example.com"
        return [create_api_key(self.env, email) for _ in range(count)]

    def stop(self) -> None:
        with concurrent.futures.ThreadPoolExecutor(len(self.gateways) or 1) as pool:
            list(pool.map(lambda gateway: gateway.stop(), self.gateways))
        self.orchestrator.stop()


@pytest.fixture(scope="module")
def deployment(tmp_path_factory, redis_server):
    running = Deployment(tmp_path_factory.mktemp("rate-limits"), redis_server.url)
    yield running
    running.stop()


@pytest.fixture(scope="module", params=["redis", "embedded"])
def gateways(request, deployment) -> tuple[Gateway, ...]:
    """The gateways a test spreads its requests over, in each shape limits are kept in.

    ``redis``: two gateways (two workers each, their default with Redis) with the same settings
    and Redis: one gevent, one gthread. ``embedded``: one gateway without Redis and with the
    default worker settings, started as ``make run`` starts it: one gevent worker.
    """
    if request.param == "redis":
        return deployment.gateway(), deployment.gateway(TASKGATE_GATEWAY_WORKER_CLASS="gthread")
    embedded = deployment.gateway(TASKGATE_REDIS_URL="")
    assert len(worker_pids(embedded.process.pid)) == 1
    return (embedded,)


def fire_in_parallel(requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    """Send every (method, url, headers) at once from its own thread and connection."""
    barrier = threading.Barrier(len(requests))

    def send(request):
        method, url, headers = request
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            return client.request(method, url, headers=headers)

    with concurrent.futures.ThreadPoolExecutor(len(requests)) as pool:
        return list(pool.map(send, requests))


def test_parallel_requests_with_two_keys_of_a_user_through_every_gateway_admit_exactly_the_limit(
    deployment, gateways
) -> None:
    keys = deployment.new_keys(2)
    requests = [
        ("GET", gateways[n % len(gateways)].url + "/api/v1/tasks", {"X-API-Key": keys[n // 2 % 2]})
        for n in range(MINUTE_LIMIT + 20)
    ]
    responses = fire_in_parallel(requests)
    statuses = [response.status_code for response in responses]
    assert statuses.count(200) == MINUTE_LIMIT, statuses
    assert statuses.count(429) == 20, statuses
    remaining = sorted(
        int(r.headers["X-RateLimit-Remaining-Minute"]) for r in responses if r.status_code == 200
    )
    assert remaining == list(range(MINUTE_LIMIT))
    # Refusals cost nothing: the minute is still exactly full, the hour counts the admitted only.
    for key in keys:
        after = httpx.get(gateways[0].url + "/api/v1/tasks", headers={"X-API-Key": key})
        assert (after.status_code, after.json()["counted_per"]) == (429, "user")
        assert after.headers["X-RateLimit-Remaining-Hour"] == str(1000 - MINUTE_LIMIT)


def test_a_refusal_carries_the_window_retry_after_and_the_headers(deployment, gateways) -> None:
    key = deployment.new_key()
    client = httpx.Client(base_url=gateways[0].url, headers={"X-API-Key": key}, timeout=30)
    first = client.get("/api/v1/tasks")
    assert first.status_code == 200
    assert first.headers["X-RateLimit-Limit-Minute"] == str(MINUTE_LIMIT)
    assert first.headers["X-RateLimit-Remaining-Minute"] == str(MINUTE_LIMIT - 1)
    assert first.headers["X-RateLimit-Limit-Hour"] == "1000"
    assert first.headers["X-RateLimit-Remaining-Hour"] == "999"
    reset = int(first.headers["X-RateLimit-Reset"])
    assert time.time() + 55 <= reset <= time.time() + 62
    assert first.headers["RateLimit-Policy"] == f'"minute";q={MINUTE_LIMIT};w=60, "hour";q=1000;w=3600'
    assert re.fullmatch(
        rf'"minute";r={MINUTE_LIMIT - 1};t=(59|60), "hour";r=999;t=(3599|3600)', first.headers["RateLimit"]
    )
    for _ in range(MINUTE_LIMIT - 1):
        assert client.get("/api/v1/tasks").status_code == 200
    refused = client.get("/api/v1/tasks", headers={"X-Request-ID": "limited-1"})
    assert refused.status_code == 429
    assert refused.json() == {
        "error": "Rate limit exceeded",
        "code": "rate_limited",
        "window": "minute",
        "counted_per": "user",
        "request_id": "limited-1",
    }
    assert 50 <= int(refused.headers["Retry-After"]) <= 60
    assert refused.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert int(refused.headers["X-RateLimit-Reset"]) == reset
    # The other gateway (or the same one) counts on the same windows; operations routes are never limited.
    assert httpx.get(gateways[-1].url + "/api/v1/tasks", headers={"X-API-Key": key}).status_code == 429
    for path in ("/health", "/readiness", "/openapi.json", "/metrics"):
        response = httpx.get(gateways[0].url + path, headers={"X-API-Key": key})
        assert response.status_code == 200, path
        assert "X-RateLimit-Limit-Minute" not in response.headers
    client.close()


def test_the_openai_routes_count_on_the_same_windows_and_refuse_in_openai_shape(deployment, gateways) -> None:
    key = deployment.new_key()
    client = openai.OpenAI(base_url=gateways[-1].url + "/v1", api_key=key, max_retries=0, timeout=30)
    for _ in range(MINUTE_LIMIT - 1):
        assert httpx.get(gateways[0].url + "/api/v1/tasks", headers={"X-API-Key": key}).status_code == 200
    assert client.models.retrieve("taskgate-small").id == "taskgate-small"
    with pytest.raises(openai.RateLimitError) as raised:
        client.models.list()
    assert raised.value.body == {
        "message": "Rate limit exceeded",
        "type": "rate_limit_error",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert 50 <= int(raised.value.response.headers["Retry-After"]) <= 60
    assert raised.value.response.headers["X-RateLimit-Remaining-Minute"] == "0"
    client.close()


def test_auth_me_shows_the_budget_counted_for_that_request(deployment, gateways) -> None:
    with httpx.Client(
        base_url=gateways[0].url, headers={"X-API-Key": deployment.new_key()}, timeout=30
    ) as client:
        for _ in range(3):
            client.get("/api/v1/tasks")
        me = client.get("/api/v1/auth/me")
    assert me.json()["rate_limits"] == {
        "minute": {"limit": MINUTE_LIMIT, "remaining": MINUTE_LIMIT - 4},
        "hour": {"limit": 1000, "remaining": 996},
    }
    assert me.headers["X-RateLimit-Remaining-Minute"] == str(MINUTE_LIMIT - 4)


def test_the_hour_window_refuses_when_the_minute_has_room(deployment) -> None:
    gateway = deployment.gateway(
        TASKGATE_RATE_LIMIT_TIERS=json.dumps({"default": {"minute": 1000, "hour": 12}}),
        TASKGATE_GATEWAY_WORKERS="1",
    )
    key = deployment.new_key()
    with httpx.Client(base_url=gateway.url, headers={"X-API-Key": key}, timeout=30) as client:
        assert [client.get("/api/v1/stats").status_code for _ in range(12)] == [200] * 12
        refused = client.get("/api/v1/stats")
    assert refused.status_code == 429
    assert refused.json()["window"] == "hour"
    assert 3590 <= int(refused.headers["Retry-After"]) <= 3600
    assert refused.headers["X-RateLimit-Remaining-Hour"] == "0"
    assert refused.headers["X-RateLimit-Remaining-Minute"] == "988"


def test_auth_routes_are_limited_per_client_address(deployment, gateways) -> None:
    login = {"email": "nobody@example.com", "password": "not-the-password"}
    statuses = []
    for n in range(LOGIN_LIMIT + 1):
        # Not a trusted proxy: X-Forwarded-For is ignored, every request counts for 127.0.0.1.
        response = httpx.post(
            gateways[n % len(gateways)].url + "/api/v1/auth/login",
            json=login,
            headers={"X-Forwarded-For": f"192.0.2.{n}"},
        )
        statuses.append(response.status_code)
    assert statuses[:LOGIN_LIMIT] == [401] * LOGIN_LIMIT
    assert statuses[-1] == 429
    assert response.json()["window"] == "minute"
    assert response.headers["X-RateLimit-Limit-Minute"] == str(LOGIN_LIMIT)
    assert "X-RateLimit-Limit-Hour" not in response.headers
    # Each route has its own budget.
    refresh = httpx.post(gateways[0].url + "/api/v1/auth/refresh", json={"refresh_token": "unknown"})
    assert refresh.status_code == 401
    assert refresh.headers["X-RateLimit-Limit-Minute"] == str(REFRESH_LIMIT)


def test_behind_a_trusted_proxy_the_forwarded_client_is_limited(deployment) -> None:
    gateway = deployment.gateway(TASKGATE_TRUSTED_PROXIES="127.0.0.1/32", TASKGATE_GATEWAY_WORKERS="1")
    client_a, client_b = f"198.51.100.{secrets.randbelow(250) + 1}", f"2001:db8::{secrets.token_hex(2)}"

    def refresh(client_address: str) -> httpx.Response:
        return httpx.post(
            gateway.url + "/api/v1/auth/refresh",
            json={"refresh_token": "unknown"},
            headers={"X-Forwarded-For": f"203.0.113.66, {client_address}"},
        )

    assert [refresh(client_a).status_code for _ in range(REFRESH_LIMIT)] == [401] * REFRESH_LIMIT
    assert refresh(client_a).status_code == 429
    assert refresh(client_b).status_code == 401


def metric_value(gateway: Gateway, name: str, decision: str) -> float:
    text = httpx.get(gateway.url + "/metrics").text
    match = re.search(rf'^{name}{{decision="{decision}"}} ([0-9.e+]+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def test_without_redis_it_fails_open_or_closed_as_configured(deployment) -> None:
    outage_redis = start_redis()
    try:
        fail_open = deployment.gateway(TASKGATE_REDIS_URL=outage_redis.url)
        fail_closed = deployment.gateway(
            TASKGATE_REDIS_URL=outage_redis.url, TASKGATE_RATE_LIMIT_FAIL_CLOSED="1"
        )
        headers = {"X-API-Key": deployment.new_key()}
        assert (
            "X-RateLimit-Limit-Minute" in httpx.get(fail_open.url + "/api/v1/tasks", headers=headers).headers
        )

        assert httpx.get(fail_open.url + "/readiness").json()["checks"]["redis"] == "ok"

        outage_redis.halt()
        not_ready = httpx.get(fail_open.url + "/readiness", timeout=10)
        assert (not_ready.status_code, not_ready.json()["checks"]["redis"]) == (503, "unavailable")
        started = time.monotonic()
        for _ in range(10):
            served = httpx.get(fail_open.url + "/api/v1/tasks", headers=headers, timeout=10)
            assert served.status_code == 200
            assert "X-RateLimit-Limit-Minute" not in served.headers
        keyed = httpx.post(
            fail_open.url + "/api/v1/tasks",
            json={"query": "during the outage"},
            headers={**headers, "Idempotency-Key": "outage-1"},
        )
        assert keyed.status_code == 200
        assert time.monotonic() - started < 10
        refused = httpx.get(fail_closed.url + "/api/v1/tasks", headers=headers, timeout=10)
        assert (refused.status_code, refused.json()["code"], refused.headers["Retry-After"]) == (
            503,
            "unavailable",
            "1",
        )
        assert metric_value(fail_open, "taskgate_rate_limit_decisions_total", "failed_open") >= 11
        assert metric_value(fail_open, "taskgate_idempotency_decisions_total", "unavailable") >= 1
        assert metric_value(fail_closed, "taskgate_rate_limit_decisions_total", "failed_closed") >= 1
        # Logged once per interval and worker, not once per request.
        warnings = fail_open.log_path.read_text().count("rate limiter unreachable")
        assert 1 <= warnings <= DEFAULT_WORKERS_WITH_REDIS

        # Back within a second or so: each worker waits out its pause after the last failure.
        outage_redis.start()
        wait_until(
            lambda: httpx.get(fail_closed.url + "/api/v1/tasks", headers=headers).status_code == 200,
            timeout=10,
            what="the fail-closed gateway to serve again",
        )
        wait_until(
            lambda: (
                "X-RateLimit-Limit-Minute"
                in httpx.get(fail_open.url + "/api/v1/tasks", headers=headers).headers
            ),
            timeout=10,
            what="the fail-open gateway to count again",
        )
    finally:
        outage_redis.stop()


def test_a_request_costs_one_redis_round_trip_and_a_keyed_one_two(deployment) -> None:
    counted_redis = start_redis()
    try:
        gateway = deployment.gateway(
            TASKGATE_REDIS_URL=counted_redis.url,
            TASKGATE_GATEWAY_WORKERS="1",
            TASKGATE_RATE_LIMIT_TIERS=json.dumps({"default": {"minute": 1000, "hour": 1000}}),
        )
        with httpx.Client(
            base_url=gateway.url, headers={"X-API-Key": deployment.new_key()}, timeout=30
        ) as client:
            task_id = client.post(
                "/api/v1/tasks", json={"query": "warm up"}, headers={"Idempotency-Key": "w"}
            ).json()["task_id"]
            with client_commands(counted_redis.url) as plain:
                for _ in range(20):
                    assert client.get(f"/api/v1/tasks/{task_id}").status_code == 200
            with client_commands(counted_redis.url) as keyed:
                for n in range(10):
                    response = client.post(
                        "/api/v1/tasks", json={"query": "hi"}, headers={"Idempotency-Key": f"k{n}"}
                    )
                    assert response.status_code == 200
            with client_commands(counted_redis.url) as replayed:
                for n in range(10):
                    response = client.post(
                        "/api/v1/tasks", json={"query": "hi"}, headers={"Idempotency-Key": f"k{n}"}
                    )
                    assert response.headers["Idempotent-Replayed"] == "true"
        assert plain == {"evalsha": 20}
        assert keyed == {"evalsha": 20}
        assert replayed == {"evalsha": 10}
    finally:
        counted_redis.stop()
