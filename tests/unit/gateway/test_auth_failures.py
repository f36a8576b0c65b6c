"""Failed authentications per address group: /64 grouping, the limit's 429, and what passes it.

These run the real app over in-memory fakes with small limits; tests/integration/test_credential_abuse.py
runs the same through gunicorn, the orchestrator and Redis.
"""

import secrets

import falcon.testing
import grpc
import pytest
from prometheus_client import REGISTRY

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.errors import error_for_rpc
from gateway.rate_limit.client_address import address_group
from gateway.settings import GatewaySettings
from taskgate import wire
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN
from tests.unit.gateway.fakes import FakeAdminStream
from tests.unit.gateway.fakes import FakeOrchestrator
from tests.unit.gateway.fakes import FakeRpcError

LIMIT = 3


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("203.0.113.9", "203.0.113.9"),
        ("2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
        ("[2001:db8:1:2::9]:443", "2001:db8:1:2::/64"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("::1", "::/64"),
        ("", ""),
        ("not an address", "not an address"),
    ],
)
def test_ipv4_addresses_count_alone_and_ipv6_ones_by_their_64(address, group) -> None:
    assert address_group(address) == group


def app_client(orchestrator: FakeOrchestrator, **env: str) -> falcon.testing.TestClient:
    settings = GatewaySettings.from_env(
        {
            "TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN,
            "TASKGATE_ENV": "test",
            "TASKGATE_TRUSTED_PROXIES": "127.0.0.1",
            "TASKGATE_AUTH_FAILURES_PER_MINUTE": str(LIMIT),
            "TASKGATE_API_KEY_REJECTION_CACHE_SECONDS": "0",
            **env,
        }
    )
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=FakeAdminStream())
    return falcon.testing.TestClient(create_app(settings, deps))


def get_tasks(client, address: str, key: str | None = None) -> falcon.testing.Result:
    headers = {"X-Forwarded-For": address}
    if key is not None:
        headers["X-API-Key"] = key
    return client.simulate_get("/api/v1/tasks", headers=headers, remote_addr="127.0.0.1")


def refusals_counted() -> float:
    labels = {"decision": "auth_failures_limited"}
    return REGISTRY.get_sample_value("taskgate_rate_limit_decisions_total", labels) or 0.0


def random_key() -> str:
    return "sk_" + secrets.token_hex(32)


def test_failures_beyond_the_limit_are_refused_unchecked_per_64_and_other_addresses_go_on() -> None:
    orchestrator = FakeOrchestrator()
    client = app_client(orchestrator)
    counted_before = refusals_counted()
    guesser = "2001:db8:5:6::1"
    answers = [get_tasks(client, guesser, random_key()) for _ in range(LIMIT)]
    assert [answer.status_code for answer in answers] == [401] * LIMIT
    assert len(orchestrator.calls_named("validate_api_key")) == LIMIT

    # The failure that does not fit is 429, and from then on keys are refused without a lookup.
    for address in (guesser, "2001:db8:5:6:ffff::2"):
        refused = get_tasks(client, address, random_key())
        assert refused.status_code == 429
        assert refused.json["code"] == "too_many_auth_failures"
        assert refused.json["window"] == "minute"
        assert 1 <= int(refused.headers["Retry-After"]) <= 60
        assert "WWW-Authenticate" not in refused.headers
    assert get_tasks(client, guesser).status_code == 429
    assert len(orchestrator.calls_named("validate_api_key")) == LIMIT + 1
    assert refusals_counted() - counted_before == 3

    # Another /64 and an IPv4 client are untouched, with good keys and with bad ones.
    assert get_tasks(client, "2001:db8:5:7::1", API_KEY).status_code == 200
    assert get_tasks(client, "198.51.100.20", random_key()).status_code == 401


def test_a_key_validated_lately_still_works_from_a_refused_address() -> None:
    orchestrator = FakeOrchestrator()
    client = app_client(orchestrator)
    assert get_tasks(client, "198.51.100.30", API_KEY).status_code == 200
    for _ in range(LIMIT + 1):
        get_tasks(client, "198.51.100.30", random_key())
    assert get_tasks(client, "198.51.100.30", random_key()).status_code == 429
    assert get_tasks(client, "198.51.100.30", API_KEY).status_code == 200


class RefusingLogins(FakeOrchestrator):
    """Refuses every login as a wrong password."""

    def login(self, request, context):
        self._record("login", request, context)
        raise FakeRpcError(grpc.StatusCode.UNAUTHENTICATED, "Invalid email or password")


def test_failed_logins_count_and_a_refused_address_cannot_log_in_until_the_window_frees() -> None:
    orchestrator = RefusingLogins()
    client = app_client(orchestrator)
    body = {"email": "ada@example.com", "password": "wrong password"}
    headers = {"X-Forwarded-For": "198.51.100.40"}
    statuses = [
        client.simulate_post(
            "/api/v1/auth/login", json=body, headers=headers, remote_addr="127.0.0.1"
        ).status_code
        for _ in range(LIMIT + 2)
    ]
    assert statuses == [401] * LIMIT + [429, 429]
    assert len(orchestrator.calls_named("login")) == LIMIT + 1


def test_with_rate_limits_off_failures_are_not_limited() -> None:
    orchestrator = FakeOrchestrator()
    client = app_client(orchestrator, TASKGATE_RATE_LIMIT_DISABLED="1")
    assert {get_tasks(client, "198.51.100.50", random_key()).status_code for _ in range(LIMIT * 3)} == {401}


def test_the_orchestrators_retry_after_becomes_the_header_of_a_429_and_a_503() -> None:
    throttled = FakeRpcError(
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "Too many failed logins for this account; try again later",
        ((wire.ERROR_CODE, wire.LOGIN_THROTTLED), (wire.RETRY_AFTER, "17")),
    )
    error = error_for_rpc(throttled)
    assert (error.status_code, error.error_code, error.headers["Retry-After"]) == (
        429,
        "login_throttled",
        "17",
    )
    busy = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "busy", ((wire.RETRY_AFTER, "2"),))
    assert error_for_rpc(busy).headers["Retry-After"] == "2"
    for nonsense in ("-1", "0", "１", "99999999", "soon"):
        odd = FakeRpcError(grpc.StatusCode.UNAVAILABLE, "busy", ((wire.RETRY_AFTER, nonsense),))
        assert error_for_rpc(odd).headers["Retry-After"] == "1"
