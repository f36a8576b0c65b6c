"""Account routes and access tokens at the gateway, with the orchestrator faked."""

import datetime

import falcon.testing
import grpc
import pytest

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.caller import Principal
from gateway.errors import ValidationError
from gateway.middleware.auth import DEV_PRINCIPAL
from gateway.resources.auth import rate_limits
from gateway.resources.auth_requests import create_key_request
from gateway.resources.auth_requests import update_key_request
from gateway.settings import GatewaySettings
from taskgate.access_tokens import AccessClaims
from taskgate.access_tokens import issue_access_token
from taskgate.jwt_secret import derive_from_service_token
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import WindowStatus
from tests.unit.gateway.fakes import SERVICE_TOKEN
from tests.unit.gateway.fakes import FakeAdminStream
from tests.unit.gateway.fakes import FakeOrchestrator
from tests.unit.gateway.fakes import FakeRpcError

NO_KEY = {"X-API-Key": ""}


class FakeAccounts(FakeOrchestrator):
    """The fake orchestrator with the account calls."""

    def register_user(self, request, context):
        self._record("register_user", request, context)
        tokens = auth_pb2.TokenPair(access_token="at", refresh_token="rt", expires_in=3600)
        return auth_pb2.RegisterUserResponse(user_id="u-9", tenant_id="t-9", tokens=tokens, api_key="sk_new")

    def login(self, request, context):
        self._record("login", request, context)
        if request.password != "right password":
            raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Invalid email or password")
        return auth_pb2.TokenPair(access_token="at", refresh_token="rt", expires_in=3600)

    def get_current_user(self, context):
        self._record("get_current_user", None, context)
        principal = context.principal
        return auth_pb2.GetCurrentUserResponse(
            user_id=principal.user_id,
            tenant_id=principal.tenant_id,
            email="a@example.com",
            role=principal.role,
        )


def token(**changes) -> str:
    claims = AccessClaims(
        **{"user_id": "jwt-user", "tenant_id": "jwt-tenant", "role": "admin", "tier": "pro"} | changes
    )
    secret = derive_from_service_token(SERVICE_TOKEN)
    return issue_access_token(claims, secret, "taskgate", datetime.datetime.now(datetime.UTC))[0]


def client_for(**variables: str) -> tuple[falcon.testing.TestClient, FakeAccounts]:
    settings = GatewaySettings.from_env(
        {"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "test", **variables}
    )
    orchestrator = FakeAccounts()
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=FakeAdminStream())
    return falcon.testing.TestClient(create_app(settings, deps)), orchestrator


def test_a_bearer_access_token_is_verified_locally_into_the_principal() -> None:
    client, orchestrator = client_for()

    response = client.simulate_get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token()}"})

    assert response.status_code == 200
    assert orchestrator.calls_named("validate_api_key") == []
    principal = orchestrator.calls_named("get_current_user")[0][2].principal
    assert (principal.user_id, principal.tenant_id, principal.role, principal.tier) == (
        "jwt-user",
        "jwt-tenant",
        "admin",
        "pro",
    )


def test_a_token_signed_for_another_issuer_is_401() -> None:
    client, _ = client_for(TASKGATE_JWT_ISSUER="elsewhere")
    response = client.simulate_get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token()}"})
    assert (response.status_code, response.json["error"]) == (401, "Invalid or expired access token")


def test_a_token_works_in_the_stream_query_only() -> None:
    client, _ = client_for()
    assert (
        client.simulate_get("/api/v1/stream/sse", params={"workflow_id": "t-1", "token": token()}).status_code
        == 200
    )
    assert client.simulate_get("/api/v1/tasks", params={"token": token()}).status_code == 401
    assert (
        client.simulate_get(
            "/api/v1/stream/sse", params={"workflow_id": "t-1", "api_key": token()}
        ).status_code
        == 401
    )


def test_the_auth_routes_that_create_credentials_are_public_and_not_cached() -> None:
    client, orchestrator = client_for()

    registered = client.simulate_post(
        "/api/v1/auth/register", json={"email": "Ada@Example.com", "password": "long enough"}
    )
    assert registered.status_code == 201
    assert registered.json == {
        "user_id": "u-9",
        "tenant_id": "t-9",
        "access_token": "at",
        "refresh_token": "rt",
        "token_type": "Bearer",
        "expires_in": 3600,
        "api_key": "sk_new",
    }
    assert registered.headers["Cache-Control"] == "no-store"
    assert orchestrator.calls_named("register_user")[0][1].email == "ada@example.com"
    assert (
        client.simulate_post(
            "/api/v1/auth/login", json={"email": "a@b.co", "password": "right password"}
        ).json["token_type"]
        == "Bearer"
    )
    wrong = client.simulate_post("/api/v1/auth/login", json={"email": "a@b.co", "password": "wrong"})
    assert (wrong.status_code, wrong.json["error"]) == (401, "Invalid credentials")


def test_without_credentials_the_bypass_acts_as_the_dev_user_and_checks_presented_ones() -> None:
    client, orchestrator = client_for(TASKGATE_SKIP_AUTH="1")

    assert client.simulate_get("/api/v1/auth/me").status_code == 200
    assert orchestrator.calls_named("get_current_user")[0][2].principal == DEV_PRINCIPAL
    assert client.simulate_get("/api/v1/tasks", headers={"X-API-Key": "sk_" + "9" * 64}).status_code == 401
    assert client_for()[0].simulate_get("/api/v1/auth/me").status_code == 401


def test_me_shows_the_windows_counted_for_the_request_else_the_limits_untouched() -> None:
    status = RateLimitStatus(
        allowed=True,
        windows=(WindowStatus("minute", 60, 59, 0.0), WindowStatus("hour", 1000, 990, 0.0)),
    )
    # A key's own limit is a sub-limit: the lower one binds, a higher one changes nothing.
    principal = Principal("u", "t", "user", tier="pro", rate_limit_per_minute=5, rate_limit_per_hour=50_000)
    tiers = {"default": TierLimits(60, 1000), "pro": TierLimits(600, 10000)}

    assert rate_limits(status, principal, tiers) == {
        "minute": {"limit": 60, "remaining": 59},
        "hour": {"limit": 1000, "remaining": 990},
    }
    assert rate_limits(None, principal, tiers) == {
        "minute": {"limit": 5, "remaining": 5},
        "hour": {"limit": 10000, "remaining": 10000},
    }


def test_rate_limit_changes_keep_absent_fields_and_clear_null_ones() -> None:
    request = update_key_request("k-1", {"rate_limit_per_minute": None, "rate_limit_per_hour": 100})
    assert request.HasField("rate_limit_per_minute") and request.rate_limit_per_minute == 0
    assert request.rate_limit_per_hour == 100
    assert not update_key_request("k-1", {"rate_limit_per_hour": 7}).HasField("rate_limit_per_minute")
    with pytest.raises(ValidationError):
        update_key_request("k-1", {"rate_limit_per_minute": True})


def test_a_new_keys_expiry_is_rfc_3339_in_the_future() -> None:
    request = create_key_request({"name": "ci", "expires_at": "2999-01-02T03:04:05.5+01:00"})
    assert request.expires_at.ToJsonString() == "2999-01-02T02:04:05.500Z"
    for value in ("2999-01-02", "2999-01-02 03:04:05Z", 5, "2000-01-01T00:00:00Z"):
        with pytest.raises(ValidationError):
            create_key_request({"name": "ci", "expires_at": value})
