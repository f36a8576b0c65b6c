"""What browsers get from a real gunicorn gateway: CORS for allowed origins, security headers."""

import httpx
import pytest

from tests.integration.processes import free_port
from tests.integration.processes import start_gateway

ALLOWED = "https://app.example.com"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    """A gateway allowing one origin behind a proxy on 127.0.0.1; it needs no orchestrator here."""
    gateway = start_gateway(
        tmp_path_factory.mktemp("cors"),
        TASKGATE_CORS_ORIGINS=ALLOWED,
        TASKGATE_TRUSTED_PROXIES="127.0.0.1",
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{free_port()}",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield gateway
    gateway.stop()


def test_a_preflight_is_answered_before_authentication(gateway) -> None:
    response = httpx.options(
        gateway.url + "/api/v1/tasks/t-1/cancel",
        headers={
            "Origin": ALLOWED,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, idempotency-key, x-api-key",
        },
    )
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    assert response.headers["Access-Control-Allow-Methods"] == "POST"
    assert "Idempotency-Key" in response.headers["Access-Control-Allow-Headers"]
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_a_preflight_from_another_origin_is_refused(gateway) -> None:
    response = httpx.options(
        gateway.url + "/api/v1/tasks",
        headers={"Origin": "https://evil.example.com", "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers


def test_an_error_is_readable_by_the_allowed_origin_with_its_headers(gateway) -> None:
    response = httpx.get(gateway.url + "/api/v1/tasks", headers={"Origin": ALLOWED})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED
    exposed = response.headers["Access-Control-Expose-Headers"]
    for name in (
        "X-Request-ID",
        "X-Trace-ID",
        "X-Workflow-ID",
        "X-RateLimit-Remaining-Minute",
        "Retry-After",
    ):
        assert name in exposed


def test_security_headers_and_hsts_when_the_trusted_proxy_took_tls(gateway) -> None:
    response = httpx.get(gateway.url + "/docs", headers={"X-Forwarded-Proto": "https"})
    assert response.status_code == 200
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none';")
    assert response.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in httpx.get(gateway.url + "/docs").headers
