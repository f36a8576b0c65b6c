"""Liveness and readiness."""

from taskgate.rfc3339 import parse_datetime


def test_health_answers_without_asking_anyone(client, orchestrator) -> None:
    for path in ("/health", "/healthz"):
        response = client.simulate_get(path)
        assert response.status_code == 200
        assert (response.json["status"], response.json["version"]) == ("healthy", "0.1.0")
        parse_datetime(response.json["time"])
    assert orchestrator.calls == []


def test_ready_when_the_orchestrator_is_serving(client, orchestrator) -> None:
    for path in ("/readiness", "/ready", "/readyz"):
        response = client.simulate_get(path)
        assert response.status_code == 200
        assert response.json == {"status": "ready", "checks": {"orchestrator": "ok"}}
    assert orchestrator.calls_named("is_serving")[0][1] <= 1.0


def test_not_ready_when_the_orchestrator_is_not_serving(client, orchestrator) -> None:
    orchestrator.serving = False
    response = client.simulate_get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "not ready", "checks": {"orchestrator": "unavailable"}}


def test_security_headers_are_on_every_response(client) -> None:
    for response in (client.simulate_get("/health"), client.simulate_get("/nowhere")):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
        assert "Strict-Transport-Security" not in response.headers


def test_hsts_only_over_https(client) -> None:
    response = client.simulate_get("/health", protocol="https")
    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


class _Redis:
    def __init__(self, reachable: bool) -> None:
        self.reachable = reachable

    def is_reachable(self) -> bool:
        return self.reachable


def test_readiness_also_checks_redis_when_the_gateway_uses_it(orchestrator) -> None:
    import falcon.testing

    from gateway.resources.health import ReadinessResource

    app = falcon.App()
    redis = _Redis(reachable=True)
    app.add_route("/readiness", ReadinessResource(orchestrator, redis))
    client = falcon.testing.TestClient(app)

    assert client.simulate_get("/readiness").json == {
        "status": "ready",
        "checks": {"orchestrator": "ok", "redis": "ok"},
    }
    redis.reachable = False
    response = client.simulate_get("/readiness")
    assert response.status_code == 503
    assert response.json["checks"] == {"orchestrator": "ok", "redis": "unavailable"}
