"""Rate limits and idempotency in the app, with the in-process backends (Redis is in integration)."""

import json

import falcon.testing
import grpc
import pytest
from prometheus_client import REGISTRY

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.caller_state import CallerState
from gateway.idempotency.store import InMemoryIdempotencyStore
from gateway.rate_limit.memory import InMemorySlidingWindowLimiter
from gateway.redis_client import RedisUnavailableError
from gateway.settings import GatewaySettings
from taskgate.orchestrator.v1 import auth_pb2
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import OTHER_API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN
from tests.unit.gateway.fakes import FakeRpcError

TIERS = json.dumps({"default": {"minute": 4, "hour": 6}})


def make_client(orchestrator, admin_stream, caller_state=None, **env) -> falcon.testing.TestClient:
    settings = GatewaySettings.from_env(
        {
            "TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN,
            "TASKGATE_ENV": "test",
            "TASKGATE_RATE_LIMIT_TIERS": TIERS,
            **env,
        }
    )
    deps = Dependencies.from_settings(
        settings, orchestrator=orchestrator, admin_stream=admin_stream, caller_state=caller_state
    )
    return falcon.testing.TestClient(create_app(settings, deps), headers={"X-API-Key": API_KEY})


@pytest.fixture
def client(orchestrator, admin_stream) -> falcon.testing.TestClient:
    return make_client(orchestrator, admin_stream)


def decisions(metric: str, decision: str) -> float:
    return REGISTRY.get_sample_value(f"taskgate_{metric}_decisions_total", {"decision": decision}) or 0.0


def test_every_counted_response_describes_the_windows(client) -> None:
    response = client.simulate_get("/api/v1/tasks")
    assert response.status_code == 200
    assert response.headers["X-RateLimit-Limit-Minute"] == "4"
    assert response.headers["X-RateLimit-Remaining-Minute"] == "3"
    assert response.headers["X-RateLimit-Limit-Hour"] == "6"
    assert response.headers["X-RateLimit-Remaining-Hour"] == "5"
    assert int(response.headers["X-RateLimit-Reset"]) > 0
    assert response.headers["RateLimit-Policy"] == '"minute";q=4;w=60, "hour";q=6;w=3600'
    assert response.headers["RateLimit"].startswith('"minute";r=3;t=')
    missing = client.simulate_get("/api/v1/tasks/nope")
    assert (missing.status_code, missing.headers["X-RateLimit-Remaining-Minute"]) == (404, "2")


def test_over_the_limit_it_is_429_with_the_window_and_retry_after(client, orchestrator) -> None:
    limited_before = decisions("rate_limit", "limited")
    for _ in range(4):
        assert client.simulate_get("/api/v1/tasks").status_code == 200
    response = client.simulate_get("/api/v1/tasks", headers={"X-Request-ID": "req-429"})
    assert response.status_code == 429
    assert response.json == {
        "error": "Rate limit exceeded",
        "code": "rate_limited",
        "window": "minute",
        "counted_per": "user",
        "request_id": "req-429",
    }
    assert 55 <= int(response.headers["Retry-After"]) <= 60
    assert response.headers["X-RateLimit-Remaining-Minute"] == "0"
    assert response.headers["X-RateLimit-Remaining-Hour"] == "2"
    assert len(orchestrator.calls_named("list_tasks")) == 4
    assert decisions("rate_limit", "limited") == limited_before + 1


@pytest.mark.parametrize("path", ["/health", "/readiness", "/openapi.json"])
def test_operations_routes_are_not_limited(client, path) -> None:
    for _ in range(6):
        response = client.simulate_get(path, headers={"X-API-Key": ""})
        assert response.status_code == 200
        assert "X-RateLimit-Limit-Minute" not in response.headers


def test_refused_credentials_are_not_counted(client) -> None:
    for _ in range(6):
        assert (
            client.simulate_get("/api/v1/tasks", headers={"X-API-Key": "sk_" + "0" * 64}).status_code == 401
        )
    assert client.simulate_get("/api/v1/tasks").headers["X-RateLimit-Remaining-Minute"] == "3"


def test_two_keys_of_one_user_share_the_users_windows(orchestrator, admin_stream) -> None:
    orchestrator.principals[API_KEY].api_key_id = "key-1"
    orchestrator.principals[OTHER_API_KEY] = auth_pb2.Principal(
        user_id="user-1", tenant_id="tenant-1", role="user", tier="free", api_key_id="key-2"
    )
    client = make_client(orchestrator, admin_stream)
    other = {"X-API-Key": OTHER_API_KEY}
    statuses = [
        client.simulate_get("/api/v1/tasks", headers=other if n % 2 else {}).status_code for n in range(5)
    ]
    assert statuses == [200, 200, 200, 200, 429]


def test_a_keys_lower_limit_is_a_sub_limit_named_in_the_refusal(orchestrator, admin_stream) -> None:
    orchestrator.principals[API_KEY].api_key_id = "key-1"
    orchestrator.principals[API_KEY].rate_limit_per_minute = 2
    orchestrator.principals[API_KEY].rate_limit_per_hour = 100
    orchestrator.principals[OTHER_API_KEY] = auth_pb2.Principal(
        user_id="user-1", tenant_id="tenant-1", role="user", tier="free", api_key_id="key-2"
    )
    client = make_client(orchestrator, admin_stream)
    first = client.simulate_get("/api/v1/tasks")
    assert first.headers["X-RateLimit-Limit-Minute"] == "2"
    assert first.headers["X-RateLimit-Remaining-Minute"] == "1"
    assert first.headers["X-RateLimit-Limit-Hour"] == "6"
    assert client.simulate_get("/api/v1/tasks").status_code == 200
    refused = client.simulate_get("/api/v1/tasks")
    assert refused.status_code == 429
    assert (refused.json["window"], refused.json["counted_per"]) == ("minute", "api_key")
    # The refusal cost the user nothing: two of its four are used.
    other = client.simulate_get("/api/v1/tasks", headers={"X-API-Key": OTHER_API_KEY})
    assert (other.status_code, other.headers["X-RateLimit-Remaining-Minute"]) == (200, "1")


class BrokenLimiter:
    def admit(self, subject, claim=None):
        raise RedisUnavailableError("ConnectionError")


class BrokenStore:
    def claim(self, claim):
        raise RedisUnavailableError("ConnectionError")


def broken_state() -> CallerState:
    return CallerState(limiter=BrokenLimiter(), idempotency=BrokenStore())


def test_an_unreachable_limiter_fails_open_by_default(orchestrator, admin_stream) -> None:
    client = make_client(orchestrator, admin_stream, broken_state())
    before = decisions("rate_limit", "failed_open")
    unavailable = decisions("idempotency", "unavailable")
    response = client.simulate_post("/api/v1/tasks", json={"query": "hi"}, headers={"Idempotency-Key": "k"})
    assert response.status_code == 200
    assert "X-RateLimit-Limit-Minute" not in response.headers
    assert decisions("rate_limit", "failed_open") == before + 1
    assert decisions("idempotency", "unavailable") == unavailable + 1


def test_an_unreachable_limiter_fails_closed_when_configured(orchestrator, admin_stream) -> None:
    client = make_client(orchestrator, admin_stream, broken_state(), TASKGATE_RATE_LIMIT_FAIL_CLOSED="1")
    before = decisions("rate_limit", "failed_closed")
    response = client.simulate_get("/api/v1/tasks")
    assert (response.status_code, response.json["code"], response.headers["Retry-After"]) == (
        503,
        "unavailable",
        "1",
    )
    assert orchestrator.calls_named("list_tasks") == []
    assert decisions("rate_limit", "failed_closed") == before + 1


def test_the_limiter_can_be_switched_off_in_test_only(orchestrator, admin_stream) -> None:
    client = make_client(orchestrator, admin_stream, TASKGATE_RATE_LIMIT_DISABLED="1", TASKGATE_ENV="test")
    for _ in range(6):
        response = client.simulate_get("/api/v1/tasks")
        assert "X-RateLimit-Limit-Minute" not in response.headers
    assert response.status_code == 200


def submit(client, body, key: str = "key-1", path: str = "/api/v1/tasks", **headers):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return client.simulate_post(
        path, body=data, headers={"Content-Type": "application/json", "Idempotency-Key": key, **headers}
    )


@pytest.fixture
def roomy(orchestrator, admin_stream) -> falcon.testing.TestClient:
    state = CallerState(limiter=InMemorySlidingWindowLimiter(), idempotency=InMemoryIdempotencyStore())
    return make_client(orchestrator, admin_stream, state, TASKGATE_RATE_LIMIT_TIERS="{}")


def test_a_repeat_replays_the_first_response_byte_for_byte(roomy, orchestrator) -> None:
    first = submit(roomy, {"query": "hi", "mode": "simple"})
    again = submit(roomy, b'{ "mode" : "simple",\n "query": "hi" }')
    assert first.status_code == again.status_code == 200
    assert again.content == first.content
    for name in ("Content-Type", "X-Workflow-ID", "X-Session-ID"):
        assert again.headers[name] == first.headers[name]
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["X-Idempotency-Cached"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["X-Request-ID"] != first.headers["X-Request-ID"]
    assert len(orchestrator.calls_named("submit_task")) == 1
    assert orchestrator.calls_named("submit_task")[0][1].query == "hi"


def test_the_same_key_with_another_body_is_422(roomy, orchestrator) -> None:
    submit(roomy, {"query": "hi"})
    response = submit(roomy, {"query": "bye"})
    assert (response.status_code, response.json["code"]) == (422, "idempotency_key_mismatch")
    assert len(orchestrator.calls_named("submit_task")) == 1


def test_client_errors_are_replayed_and_server_errors_are_not(roomy, orchestrator) -> None:
    invalid = submit(roomy, {"query": ""}, key="bad-request")
    assert invalid.status_code == 400
    assert submit(roomy, {"query": ""}, key="bad-request").headers["Idempotent-Replayed"] == "true"
    orchestrator.failures["submit_task"] = FakeRpcError(grpc.StatusCode.UNAVAILABLE)
    assert submit(roomy, {"query": "hi"}, key="outage").status_code == 503
    del orchestrator.failures["submit_task"]
    retried = submit(roomy, {"query": "hi"}, key="outage")
    assert retried.status_code == 200
    assert "Idempotent-Replayed" not in retried.headers


def test_a_repeat_while_the_first_runs_is_409(roomy, orchestrator) -> None:
    during = []
    submit_task = orchestrator.submit_task

    def submit_and_repeat(request, context):
        during.append(submit(roomy, {"query": "hi"}))
        return submit_task(request, context)

    orchestrator.submit_task = submit_and_repeat
    assert submit(roomy, {"query": "hi"}).status_code == 200
    assert during[0].status_code == 409
    assert (during[0].json["code"], during[0].headers["Retry-After"]) == ("idempotency_key_in_flight", "1")


@pytest.mark.parametrize("key", ["", "x" * 256, "caf\u00e9"])
def test_a_malformed_key_is_400(roomy, orchestrator, key) -> None:
    environ = falcon.testing.create_environ(
        "/api/v1/tasks",
        method="POST",
        body=b'{"query": "hi"}',
        headers={"Content-Type": "application/json", "X-API-Key": API_KEY},
    )
    environ["HTTP_IDEMPOTENCY_KEY"] = key
    start_response = falcon.testing.StartResponseMock()
    body = json.loads(b"".join(roomy.app(environ, start_response)))
    assert start_response.status.startswith("400")
    assert body["details"] == [
        {"field": "Idempotency-Key", "message": "must be 1 to 255 printable ASCII characters"}
    ]
    assert orchestrator.calls_named("submit_task") == []


def test_keys_are_scoped_to_the_route(roomy, orchestrator) -> None:
    assert submit(roomy, {"query": "hi"}).status_code == 200
    streamed = submit(roomy, {"query": "hi"}, path="/api/v1/tasks/stream")
    assert streamed.status_code == 201
    assert "Idempotent-Replayed" not in streamed.headers
    assert len(orchestrator.calls_named("submit_task")) == 2


def test_a_chunked_body_is_fingerprinted_and_still_read(roomy, orchestrator) -> None:
    environ = falcon.testing.create_environ(
        "/api/v1/tasks",
        method="POST",
        body=b'{"query": "chunked"}',
        headers={
            "Content-Type": "application/json",
            "Transfer-Encoding": "chunked",
            "X-API-Key": API_KEY,
            "Idempotency-Key": "chunky",
        },
    )
    del environ["CONTENT_LENGTH"]
    start_response = falcon.testing.StartResponseMock()
    b"".join(roomy.app(environ, start_response))
    assert start_response.status == "200 OK"
    assert orchestrator.calls_named("submit_task")[0][1].query == "chunked"
    assert submit(roomy, {"query": "chunked"}, key="chunky").headers["Idempotent-Replayed"] == "true"


def test_keys_on_reads_are_ignored(roomy, orchestrator) -> None:
    for _ in range(2):
        response = roomy.simulate_get("/api/v1/tasks", headers={"Idempotency-Key": ""})
        assert response.status_code == 200
        assert "Idempotent-Replayed" not in response.headers
