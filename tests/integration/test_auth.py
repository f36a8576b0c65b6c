"""Accounts through the gateway, with real processes: register, login, refresh, me, API keys.

Every user here is made through ``POST /api/v1/auth/register``; each test runs on both stores.
"""

import statistics
import time

import grpc
import httpx
import pytest

from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from tests.integration.accounts import PASSWORD
from tests.integration.accounts import register
from tests.integration.accounts import unique_email
from tests.integration.processes import create_api_key
from tests.integration.processes import wait_until


@pytest.fixture()
def ada(stack):
    """A user of one test's own, which it may change."""
    account = register(stack.url, name="Ada Lovelace", username="ada")
    yield account
    account.close()


@pytest.fixture(scope="module")
def reader(stack):
    """A user the tests that change nothing share (registering costs a password hash)."""
    account = register(stack.url, name="Ada Lovelace", username="ada")
    yield account
    account.close()


@pytest.fixture()
def http(stack):
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        yield client


# Registration.


def test_registration_creates_a_user_in_a_new_tenant_logged_in_with_a_first_key(stack, http):
    email = unique_email("Reg").upper()
    response = http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) >= {"user_id", "tenant_id", "access_token", "refresh_token", "expires_in", "api_key"}
    assert body["expires_in"] == 3600
    assert response.headers["Cache-Control"] == "no-store"
    for headers in ({"X-API-Key": body["api_key"]}, {"Authorization": f"Bearer {body['access_token']}"}):
        me = http.get("/api/v1/auth/me", headers=headers).json()
        assert (me["user_id"], me["tenant_id"], me["email"]) == (
            body["user_id"],
            body["tenant_id"],
            email.lower(),
        )
        assert (me["role"], me["username"]) == ("user", email.lower().split("@")[0])
    other = register(stack.url)
    assert other.tenant_id != body["tenant_id"]
    other.close()


def test_a_taken_email_is_409_whatever_its_case(reader, http):
    response = http.post("/api/v1/auth/register", json={"email": reader.email.upper(), "password": PASSWORD})

    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"email": "not-an-email", "password": PASSWORD}, {"email"}),
        ({"email": "a@b", "password": PASSWORD}, {"email"}),
        ({"password": PASSWORD}, {"email"}),
        ({"email": "short@example.com", "password": "seven77"}, {"password"}),
        ({"email": "nopass@example.com"}, {"password"}),
        ({"email": "x@example.com", "password": 12345678}, {"password"}),
        ({"email": "x@example.com", "password": PASSWORD, "username": "has space"}, {"username"}),
        ({"email": "bad", "password": "short"}, {"email", "password"}),
    ],
)
def test_invalid_registrations_are_400_naming_each_field(http, body, fields):
    response = http.post("/api/v1/auth/register", json=body)

    assert response.status_code == 400
    assert {detail["field"] for detail in response.json()["details"]} == fields


def test_a_registration_that_is_not_json_is_refused(http):
    assert (
        http.post(
            "/api/v1/auth/register", content=b"email=a", headers={"Content-Type": "text/plain"}
        ).status_code
        == 415
    )
    assert (
        http.post(
            "/api/v1/auth/register", content=b"[]", headers={"Content-Type": "application/json"}
        ).status_code
        == 400
    )


# Login.


def test_login_issues_a_working_pair(ada, http):
    response = http.post("/api/v1/auth/login", json={"email": ada.email.upper(), "password": PASSWORD})

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["token_type"], body["expires_in"]) == ("Bearer", 3600)
    assert response.headers["Cache-Control"] == "no-store"
    me = http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.json()["user_id"] == ada.user_id
    refreshed = http.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refreshed.status_code == 200


def test_a_wrong_password_and_an_unknown_email_get_the_same_401_in_about_the_same_time(ada, http):
    def attempt(email: str) -> tuple[float, httpx.Response]:
        started = time.perf_counter()
        response = http.post("/api/v1/auth/login", json={"email": email, "password": "wrong password"})
        return time.perf_counter() - started, response

    wrong = [attempt(ada.email) for _ in range(3)]
    unknown = [attempt(unique_email("nobody")) for _ in range(3)]

    bodies = {(r.status_code, r.json()["error"], r.json()["code"]) for _, r in wrong + unknown}
    assert bodies == {(401, "Invalid credentials", "unauthorized")}
    assert all(r.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"' for _, r in wrong + unknown)
    # An unknown email is checked against a dummy hash: no shortcut that would reveal it.
    assert statistics.median(t for t, _ in unknown) > 0.5 * statistics.median(t for t, _ in wrong)


def test_a_user_made_by_the_cli_has_no_password_to_log_in_with(stack, http):
    email = unique_email("cli")
    key = create_api_key(stack.env, email)

    assert http.get("/api/v1/auth/me", headers={"X-API-Key": key}).json()["email"] == email
    assert http.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD}).status_code == 401
    assert http.post("/api/v1/auth/register", json={"email": email, "password": PASSWORD}).status_code == 409


@pytest.mark.parametrize(
    "body", [{}, {"email": "a@example.com"}, {"email": "", "password": "x"}, {"password": 5}]
)
def test_a_login_without_both_fields_is_400(http, body):
    assert http.post("/api/v1/auth/login", json=body).status_code == 400


# Refresh tokens.


def test_refresh_rotates_and_a_reused_token_revokes_its_whole_family(ada, http):
    first = ada.refresh_token
    second = http.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first and pair["token_type"] == "Bearer"
    assert (
        http.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {pair['access_token']}"}).status_code
        == 200
    )

    reused = http.post("/api/v1/auth/refresh", json={"refresh_token": first})
    assert reused.status_code == 401
    # The family is revoked: the current token, never used, is refused too.
    assert http.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401
    # Another login starts a family of its own.
    login = http.post("/api/v1/auth/login", json={"email": ada.email, "password": PASSWORD}).json()
    assert (
        http.post("/api/v1/auth/refresh", json={"refresh_token": login["refresh_token"]}).status_code == 200
    )


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"refresh_token": "rt_unknown"}, 401),
        ({"refresh_token": "x" * 129}, 400),
        ({}, 400),
        ({"refresh_token": 1}, 400),
    ],
)
def test_bad_refresh_tokens_are_refused(http, body, status):
    assert http.post("/api/v1/auth/refresh", json=body).status_code == status


# The caller.


@pytest.mark.parametrize("kind", ["api_key", "jwt"])
def test_me_describes_the_account_and_its_rate_limits(reader, kind):
    response = reader.client(kind).get("/api/v1/auth/me")

    assert response.status_code == 200
    me = response.json()
    assert me | {"rate_limits": None, "budgets": None} == {
        "user_id": reader.user_id,
        "tenant_id": reader.tenant_id,
        "email": reader.email,
        "username": "ada",
        "name": "Ada Lovelace",
        "role": "user",
        "tier": "free",
        "rate_limits": None,
        "budgets": None,
        # The key carries no budgets of its own (an access token has no key at all).
        "key_budgets": None,
    }
    for window in ("minute", "hour"):
        limits = me["rate_limits"][window]
        assert isinstance(limits["limit"], int) and 0 <= limits["remaining"] <= limits["limit"]
    # The test tiers set no token or cost budget: none to run out of, and when its window resets.
    for window in ("tokens_minute", "cost_day"):
        budget = me["budgets"][window]
        assert budget["limit"] is None and budget["remaining"] is None
        assert budget["used"] >= 0 and budget["reset"].endswith("Z")


def test_me_needs_credentials(http):
    assert http.get("/api/v1/auth/me").status_code == 401


def test_account_rpcs_answer_only_the_gateway(stack):
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        auth = auth_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.RpcError) as caught:
            auth.Login(auth_pb2.LoginRequest(email="a@example.com", password=PASSWORD))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_a_registered_user_runs_tasks_with_a_token(reader):
    task = reader.token_client.post("/api/v1/tasks", json={"query": "What is 2+2?"}).json()

    finished = wait_until(
        lambda: (
            (t := reader.token_client.get(f"/api/v1/tasks/{task['task_id']}").json())["status"] == "COMPLETED"
            and t
        ),
        what="the task to complete",
    )
    assert finished["task_id"] == task["task_id"]
    assert reader.key_client.get(f"/api/v1/tasks/{task['task_id']}").status_code == 200
