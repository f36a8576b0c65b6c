"""Security headers: on every response, the CSP on HTML, HSTS over TLS, each switchable."""

import falcon.testing
import pytest

from gateway.app import Dependencies
from gateway.app import create_app
from gateway.middleware.security_headers import HSTS
from gateway.resources.console import CONTENT_SECURITY_POLICY as CONSOLE_POLICY
from gateway.resources.docs_page import CONTENT_SECURITY_POLICY
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN

FIXED = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def client_with(orchestrator, admin_stream, switches: str) -> falcon.testing.TestClient:
    settings = GatewaySettings.from_env(
        {
            "TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN,
            "TASKGATE_ENV": "test",
            "TASKGATE_SECURITY_HEADERS": switches,
        }
    )
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=admin_stream)
    return falcon.testing.TestClient(create_app(settings, deps), headers={"X-API-Key": API_KEY})


@pytest.mark.parametrize(("path", "status"), [("/health", 200), ("/api/v1/tasks", 200), ("/nowhere", 404)])
def test_every_response_carries_the_fixed_headers(client, path, status) -> None:
    response = client.simulate_get(path)
    assert response.status_code == status
    assert {name: response.headers.get(name) for name in FIXED} == FIXED


def test_an_unauthenticated_error_carries_them_too(client) -> None:
    response = client.simulate_get("/api/v1/tasks", headers={"X-API-Key": ""})
    assert response.status_code == 401
    assert response.headers["X-Frame-Options"] == "DENY"


def test_html_gets_the_content_security_policy_and_json_does_not(client) -> None:
    assert client.simulate_get("/docs").headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "Content-Security-Policy" not in client.simulate_get("/health").headers


@pytest.mark.parametrize("path", ["/ui", "/ui/js/app.js", "/ui/missing.js"])
def test_the_console_gets_its_own_policy_on_every_answer(client, path) -> None:
    response = client.simulate_get(path, headers={"X-API-Key": ""})
    assert response.headers["Content-Security-Policy"] == CONSOLE_POLICY


def test_switching_the_csp_off_switches_the_consoles_off_too(orchestrator, admin_stream) -> None:
    response = client_with(orchestrator, admin_stream, "frame-options").simulate_get("/ui")
    assert response.status_code == 200
    assert "Content-Security-Policy" not in response.headers


def test_hsts_only_over_https(client) -> None:
    assert "Strict-Transport-Security" not in client.simulate_get("/health").headers
    response = client.simulate_get("/health", protocol="https")
    assert response.headers["Strict-Transport-Security"] == HSTS


def test_a_forwarded_proto_from_an_untrusted_peer_is_ignored(client) -> None:
    response = client.simulate_get("/health", headers={"X-Forwarded-Proto": "https"}, remote_addr="10.0.0.5")
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("peer", "forwarded", "hsts"),
    [
        ("10.0.0.5", "https", True),
        ("10.0.0.5", "HTTPS", True),
        ("10.0.0.5", "http, https", True),
        ("10.0.0.5", "https, http", False),
        ("10.0.0.5", "http", False),
        ("192.168.1.1", "https", False),
    ],
)
def test_a_trusted_proxy_s_forwarded_proto_counts(orchestrator, admin_stream, peer, forwarded, hsts) -> None:
    settings = GatewaySettings.from_env(
        {
            "TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN,
            "TASKGATE_ENV": "test",
            "TASKGATE_TRUSTED_PROXIES": "10.0.0.0/8",
        }
    )
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=admin_stream)
    client = falcon.testing.TestClient(create_app(settings, deps))
    response = client.simulate_get("/health", headers={"X-Forwarded-Proto": forwarded}, remote_addr=peer)
    assert ("Strict-Transport-Security" in response.headers) is hsts


def test_each_header_can_be_switched_off(orchestrator, admin_stream) -> None:
    client = client_with(orchestrator, admin_stream, "frame-options,hsts")
    response = client.simulate_get("/docs", protocol="https")
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Strict-Transport-Security"] == HSTS
    for name in ("X-Content-Type-Options", "Referrer-Policy", "Content-Security-Policy"):
        assert name not in response.headers


def test_none_sends_none(orchestrator, admin_stream) -> None:
    response = client_with(orchestrator, admin_stream, "none").simulate_get("/docs", protocol="https")
    for name in (*FIXED, "Content-Security-Policy", "Strict-Transport-Security"):
        assert name not in response.headers
