"""Authentication: where credentials are taken from, which routes are public, what failure means."""

import grpc
import pytest

from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import OTHER_API_KEY
from tests.unit.gateway.fakes import FakeRpcError

NO_KEY = {"X-API-Key": ""}


@pytest.mark.parametrize("path", ["/health", "/healthz", "/readiness", "/ready", "/readyz", "/openapi.json"])
def test_public_routes_need_no_credential(client, path) -> None:
    assert client.simulate_get(path, headers=NO_KEY).status_code == 200


def test_without_a_credential_it_is_401_with_a_challenge(client, orchestrator) -> None:
    response = client.simulate_get("/api/v1/tasks", headers=NO_KEY)
    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'
    assert orchestrator.calls == []


def test_an_x_api_key_identifies_the_caller(client, orchestrator) -> None:
    assert client.simulate_get("/api/v1/tasks").status_code == 200
    _, _, context = orchestrator.calls_named("list_tasks")[0]
    assert (context.principal.user_id, context.principal.tenant_id, context.principal.role) == (
        "user-1",
        "tenant-1",
        "user",
    )


def test_a_bearer_api_key_is_accepted(client) -> None:
    response = client.simulate_get("/api/v1/tasks", headers={**NO_KEY, "Authorization": f"Bearer {API_KEY}"})
    assert response.status_code == 200


def test_x_api_key_wins_over_authorization(client, orchestrator) -> None:
    headers = {"X-API-Key": API_KEY, "Authorization": f"Bearer {OTHER_API_KEY}"}
    assert client.simulate_get("/api/v1/tasks", headers=headers).status_code == 200
    assert orchestrator.calls_named("validate_api_key")[0][1] == API_KEY


def test_a_shannon_style_key_is_normalised(client, orchestrator) -> None:
    shannon_key = "sk-shannon-" + API_KEY.removeprefix("sk_").upper()
    assert client.simulate_get("/api/v1/tasks", headers={"X-API-Key": shannon_key}).status_code == 200
    assert orchestrator.calls_named("validate_api_key")[0][1] == API_KEY


@pytest.mark.parametrize(
    "headers",
    [
        {"X-API-Key": "not-a-key"},
        {"X-API-Key": OTHER_API_KEY},
        {**NO_KEY, "Authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"},
        {**NO_KEY, "Authorization": f"Basic {API_KEY}"},
    ],
)
def test_bad_credentials_are_401(client, headers) -> None:
    response = client.simulate_get("/api/v1/tasks", headers=headers)
    assert response.status_code == 401
    assert response.json["code"] == "unauthorized"


@pytest.mark.parametrize("name", ["api_key", "token"])
def test_query_credentials_work_on_stream_routes(client, name) -> None:
    response = client.simulate_get(
        "/api/v1/stream/sse", params={"workflow_id": "t-1", name: API_KEY}, headers=NO_KEY
    )
    assert response.status_code == 200


@pytest.mark.parametrize("name", ["api_key", "token"])
def test_query_credentials_are_ignored_elsewhere(client, name) -> None:
    response = client.simulate_get("/api/v1/tasks", params={name: API_KEY}, headers=NO_KEY)
    assert response.status_code == 401


@pytest.mark.parametrize(
    ("grpc_code", "status"), [(grpc.StatusCode.UNAVAILABLE, 503), (grpc.StatusCode.DEADLINE_EXCEEDED, 504)]
)
def test_an_orchestrator_that_cannot_answer_is_not_a_401(client, orchestrator, grpc_code, status) -> None:
    orchestrator.failures["validate_api_key"] = FakeRpcError(grpc_code)
    response = client.simulate_get("/api/v1/tasks")
    assert response.status_code == status
    assert "WWW-Authenticate" not in response.headers


def test_validation_carries_the_request_id_but_no_identity(client, orchestrator) -> None:
    client.simulate_get("/api/v1/tasks", headers={"X-Request-ID": "r-9"})
    _, _, context = orchestrator.calls_named("validate_api_key")[0]
    assert (context.request_id, context.principal) == ("r-9", None)


def test_unknown_routes_are_404_even_without_a_credential(client) -> None:
    assert client.simulate_get("/api/v1/nothing", headers=NO_KEY).status_code == 404
