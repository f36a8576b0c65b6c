"""CORS: the exact origin allowlist, preflights before authentication, exposed headers."""

import falcon.testing
import pytest

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.middleware.cors import EXPOSED_RESPONSE_HEADERS
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN

ALLOWED = "https://app.example.com"
PREFLIGHT = {"Origin": ALLOWED, "Access-Control-Request-Method": "POST"}


def client_allowing(orchestrator, admin_stream, origins: str) -> falcon.testing.TestClient:
    settings = GatewaySettings.from_env(
        {"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "test", "TASKGATE_CORS_ORIGINS": origins}
    )
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=admin_stream)
    return falcon.testing.TestClient(create_app(settings, deps))


@pytest.fixture
def cors_client(orchestrator, admin_stream) -> falcon.testing.TestClient:
    return client_allowing(orchestrator, admin_stream, ALLOWED)


def test_a_preflight_from_an_allowed_origin_is_answered_without_credentials(
    cors_client, orchestrator
) -> None:
    response = cors_client.simulate_options(
        "/api/v1/tasks", headers={**PREFLIGHT, "Access-Control-Request-Headers": "content-type,x-api-key"}
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed_headers = response.headers["Access-Control-Allow-Headers"].lower()
    assert {"content-type", "x-api-key", "authorization", "idempotency-key"} <= set(
        allowed_headers.split(", ")
    )
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert response.content == b""
    assert orchestrator.calls == []


def test_a_preflight_lists_the_methods_of_its_route(cors_client) -> None:
    response = cors_client.simulate_options("/api/v1/sessions/s-1", headers=PREFLIGHT)
    assert response.headers["Access-Control-Allow-Methods"] == "DELETE, GET, PATCH"


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example.com", "https://app.example.com.evil.com", "http://app.example.com", "null"],
)
def test_a_preflight_from_another_origin_is_403_without_cors_headers(cors_client, origin) -> None:
    response = cors_client.simulate_options("/api/v1/tasks", headers={**PREFLIGHT, "Origin": origin})
    assert response.status_code == 403
    assert response.json["code"] == "origin_not_allowed"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_a_preflight_to_an_unknown_route_is_404(cors_client) -> None:
    response = cors_client.simulate_options("/api/v1/nothing-here", headers=PREFLIGHT)
    assert response.status_code == 404


def test_an_allowed_origin_may_read_answers_and_errors_with_the_exposed_headers(cors_client) -> None:
    for headers, status in (({"X-API-Key": API_KEY}, 200), ({}, 401)):
        response = cors_client.simulate_get("/api/v1/tasks", headers={"Origin": ALLOWED, **headers})
        assert response.status_code == status
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
        exposed = response.headers["Access-Control-Expose-Headers"].split(", ")
        assert exposed == list(EXPOSED_RESPONSE_HEADERS)
        assert response.headers["Vary"] == "Origin"


def test_the_exposed_headers_cover_rate_limits_traces_tasks_and_idempotency() -> None:
    assert {
        "X-RateLimit-Limit-Minute",
        "X-RateLimit-Remaining-Minute",
        "X-RateLimit-Limit-Hour",
        "X-RateLimit-Remaining-Hour",
        "X-RateLimit-Reset",
        "RateLimit",
        "RateLimit-Policy",
        "Retry-After",
        "X-Request-ID",
        "X-Trace-ID",
        "X-Workflow-ID",
        "X-Session-ID",
        "Idempotent-Replayed",
        "Link",
    } <= set(EXPOSED_RESPONSE_HEADERS)


def test_another_origin_gets_no_cors_headers_but_the_same_answer(cors_client) -> None:
    response = cors_client.simulate_get("/health", headers={"Origin": "https://evil.example.com"})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.headers["Vary"] == "Origin"


def test_a_plain_options_request_is_not_a_preflight(cors_client) -> None:
    response = cors_client.simulate_options("/api/v1/tasks")
    assert response.status_code == 200
    assert response.headers["Allow"] == "GET, POST"
    assert "Access-Control-Allow-Methods" not in response.headers


def test_without_an_allowlist_nothing_is_added(orchestrator, admin_stream) -> None:
    client = client_allowing(orchestrator, admin_stream, "")
    response = client.simulate_options("/api/v1/tasks", headers=PREFLIGHT)
    assert response.status_code == 403
    response = client.simulate_get("/health", headers={"Origin": ALLOWED})
    assert "Vary" not in response.headers
    assert "Access-Control-Allow-Origin" not in response.headers


def test_dev_allows_the_gateway_s_own_origins() -> None:
    settings = GatewaySettings.from_env({"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "dev"})
    assert settings.cors_origins == ("http://localhost:8080", "http://127.0.0.1:8080")
