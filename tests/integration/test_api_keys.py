"""API keys through the gateway, with real processes: list, create, expire, revoke, rate-limit overrides.

Every user here is made through ``POST /api/v1/auth/register``; each test runs on both stores.
"""

import datetime
import subprocess
import time

import grpc
import httpx
import pytest

from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from tests.integration.accounts import register
from tests.integration.processes import REPO
from tests.integration.processes import taskgate_command

KEY_FIELDS = {
    "id",
    "name",
    "description",
    "key_prefix",
    "scopes",
    "created_at",
    "last_used_at",
    "expires_at",
    "is_active",
    "rate_limit_per_minute",
    "rate_limit_per_hour",
    "budgets",
}


@pytest.fixture()
def ada(stack):
    """A user of one test's own, which it may change."""
    account = register(stack.url)
    yield account
    account.close()


@pytest.fixture(scope="module")
def reader(stack):
    """A user the tests that change nothing share (registering costs a password hash)."""
    account = register(stack.url)
    yield account
    account.close()


@pytest.fixture()
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


def set_role(stack, email: str, role: str) -> None:
    subprocess.run(
        taskgate_command("users", "set-role", "--email", email, "--role", role),
        env=stack.env,
        cwd=REPO,
        check=True,
        capture_output=True,
        timeout=60,
    )


def in_the_future(**delta) -> str:
    return (
        (datetime.datetime.now(datetime.UTC) + datetime.timedelta(**delta)).isoformat().replace("+00:00", "Z")
    )


# API keys.


def test_keys_are_listed_without_secrets_and_a_new_key_is_shown_once(ada):
    created = ada.token_client.post(
        "/api/v1/auth/api-keys",
        json={
            "name": "ci",
            "description": "the CI runner",
            "expires_at": in_the_future(days=30),
            "scopes": ["tasks:read"],
        },
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert key["api_key"].startswith("sk_") and key["key_prefix"] == key["api_key"][:11]
    assert created.headers["Cache-Control"] == "no-store"
    assert (
        httpx.get(
            str(ada.key_client.base_url) + "/api/v1/auth/me", headers={"X-API-Key": key["api_key"]}
        ).status_code
        == 200
    )

    listed = ada.key_client.get("/api/v1/auth/api-keys").json()
    assert listed["total"] == len(listed["keys"]) == 2
    newest = listed["keys"][0]
    assert set(newest) == KEY_FIELDS
    assert (newest["id"], newest["name"], newest["scopes"], newest["is_active"]) == (
        key["id"],
        "ci",
        ["tasks:read"],
        True,
    )
    assert newest["expires_at"] and newest["rate_limit_per_minute"] is None
    assert listed["keys"][1]["name"] == "default"
    assert key["api_key"] not in str(listed) and ada.api_key not in str(listed)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "name"),
        ({"name": "  "}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"name": "k", "expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
        ({"name": "k", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "k", "scopes": "tasks"}, "scopes"),
        ({"name": "k", "scopes": ["Tasks Read"]}, "scopes"),
        ({"name": "k", "description": 5}, "description"),
    ],
)
def test_invalid_new_keys_are_400(reader, body, field):
    response = reader.key_client.post("/api/v1/auth/api-keys", json=body)

    assert response.status_code == 400
    assert [detail["field"] for detail in response.json()["details"]] == [field]


def test_an_expired_key_is_refused(ada, http):
    key = ada.key_client.post(
        "/api/v1/auth/api-keys", json={"name": "brief", "expires_at": in_the_future(seconds=1)}
    )
    time.sleep(1.5)

    assert http.get("/api/v1/tasks", headers={"X-API-Key": key.json()["api_key"]}).status_code == 401
    listed = ada.key_client.get("/api/v1/auth/api-keys").json()["keys"]
    assert next(k for k in listed if k["name"] == "brief")["is_active"] is False


def test_revoking_a_key_stops_it_and_shows_it_inactive(ada, http):
    key = ada.key_client.post("/api/v1/auth/api-keys", json={"name": "to revoke"}).json()

    response = ada.token_client.delete(f"/api/v1/auth/api-keys/{key['id']}")
    assert (response.status_code, response.json()) == (200, {"success": True})
    assert ada.token_client.delete(f"/api/v1/auth/api-keys/{key['id']}").status_code == 200
    # Never validated before, so no gateway worker holds it in its cache.
    assert http.get("/api/v1/tasks", headers={"X-API-Key": key["api_key"]}).status_code == 401
    listed = ada.key_client.get("/api/v1/auth/api-keys").json()["keys"]
    assert next(k for k in listed if k["id"] == key["id"])["is_active"] is False


@pytest.mark.parametrize(("key_id", "status"), [("no-such-key", 404), ("bad id!", 400)])
def test_revoking_an_unknown_key_is_404_and_a_malformed_id_400(reader, key_id, status):
    assert reader.key_client.delete(f"/api/v1/auth/api-keys/{key_id}").status_code == status


def test_only_an_admin_or_owner_of_the_tenant_sets_a_keys_rate_limits(stack, ada):
    key = ada.key_client.post("/api/v1/auth/api-keys", json={"name": "limited"}).json()
    path = f"/api/v1/auth/api-keys/{key['id']}"

    refused = ada.key_client.patch(path, json={"rate_limit_per_minute": 5})
    assert (refused.status_code, refused.json()["code"]) == (403, "forbidden")

    set_role(stack, ada.email, "admin")
    # The role is read from the account, so the token issued while ada was a user works.
    response = ada.token_client.patch(path, json={"rate_limit_per_minute": 5, "rate_limit_per_hour": 50})
    assert response.status_code == 200, response.text
    assert (response.json()["rate_limit_per_minute"], response.json()["rate_limit_per_hour"]) == (5, 50)
    assert principal(stack, key["api_key"]).rate_limit_per_minute == 5

    cleared = ada.key_client.patch(path, json={"rate_limit_per_minute": None}).json()
    assert (cleared["rate_limit_per_minute"], cleared["rate_limit_per_hour"]) == (None, 50)

    other_admin = register(stack.url)
    set_role(stack, other_admin.email, "owner")
    assert other_admin.key_client.patch(path, json={"rate_limit_per_minute": 1}).status_code == 404
    other_admin.close()


@pytest.mark.parametrize(
    "body",
    [{}, {"rate_limit_per_minute": 0}, {"rate_limit_per_hour": "5"}, {"rate_limit_per_minute": 10**10}],
)
def test_invalid_rate_limit_changes_are_400(reader, body):
    key_id = reader.key_client.get("/api/v1/auth/api-keys").json()["keys"][0]["id"]
    assert reader.key_client.patch(f"/api/v1/auth/api-keys/{key_id}", json=body).status_code == 400


def principal(stack, api_key: str) -> auth_pb2.Principal:
    """Ask the orchestrator, as the gateway does, whom a key belongs to."""
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        reply = auth_pb2_grpc.AuthServiceStub(channel).ValidateApiKey(
            auth_pb2.ValidateApiKeyRequest(api_key=api_key),
            metadata=(("x-taskgate-service-token", stack.service_token),),
        )
    return reply.principal
