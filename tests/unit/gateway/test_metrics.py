"""Metrics: what requests, failures and streams count, /metrics and its token, worker sums."""

import subprocess
import sys
from wsgiref.util import setup_testing_defaults

import falcon.testing
import grpc
import pytest
from prometheus_client import REGISTRY
from prometheus_client import multiprocess

from gateway import metrics
from gateway.app import Dependencies
from gateway.app import create_app
from gateway.settings import GatewaySettings
from tests.unit.gateway.fakes import OTHER_API_KEY
from tests.unit.gateway.fakes import SERVICE_TOKEN
from tests.unit.gateway.fakes import FakeRpcError

METRICS_TOKEN = "metrics-token-0123456789"


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def requests_counted(route: str, method: str, status: str) -> float:
    return sample("taskgate_http_requests_total", route=route, method=method, status=status)


def test_a_request_is_counted_by_route_template_method_and_status_and_timed(client) -> None:
    before = requests_counted("/api/v1/tasks/{task_id}", "GET", "404")
    timed_before = sample(
        "taskgate_http_request_duration_seconds_count", route="/api/v1/tasks/{task_id}", method="GET"
    )
    assert client.simulate_get("/api/v1/tasks/task-99").status_code == 404
    assert requests_counted("/api/v1/tasks/{task_id}", "GET", "404") == before + 1
    assert (
        sample("taskgate_http_request_duration_seconds_count", route="/api/v1/tasks/{task_id}", method="GET")
        == timed_before + 1
    )


def test_unknown_routes_and_methods_share_one_label_each(client) -> None:
    before = requests_counted("unmatched", "GET", "404")
    client.simulate_get("/no/such/route/12345")
    assert requests_counted("unmatched", "GET", "404") == before + 1

    other_before = requests_counted("/health", "OTHER", "405")
    environ = {"REQUEST_METHOD": "PROPFIND", "PATH_INFO": "/health"}
    setup_testing_defaults(environ)
    b"".join(client.app(environ, lambda status, headers, exc_info=None: None))
    assert requests_counted("/health", "OTHER", "405") == other_before + 1


@pytest.mark.parametrize(
    ("headers", "reason"), [({"X-API-Key": ""}, "missing"), ({"X-API-Key": OTHER_API_KEY}, "invalid")]
)
def test_a_401_counts_as_an_auth_failure(client, headers, reason) -> None:
    before = sample("taskgate_auth_failures_total", reason=reason)
    assert client.simulate_get("/api/v1/tasks", headers=headers).status_code == 401
    assert sample("taskgate_auth_failures_total", reason=reason) == before + 1


def test_a_failed_orchestrator_call_is_counted_by_grpc_code(client, orchestrator) -> None:
    orchestrator.failures["list_tasks"] = FakeRpcError(grpc.StatusCode.DEADLINE_EXCEEDED)
    before = sample("taskgate_upstream_errors_total", code="DEADLINE_EXCEEDED")
    assert client.simulate_get("/api/v1/tasks").status_code == 504
    assert sample("taskgate_upstream_errors_total", code="DEADLINE_EXCEEDED") == before + 1


def test_an_open_stream_is_counted_until_the_server_closes_it(client, admin_stream) -> None:
    before = sample("taskgate_open_streams")
    response = client.simulate_get("/api/v1/stream/sse", params={"workflow_id": "wf-1"})
    assert response.status_code == 200
    assert sample("taskgate_open_streams") == before
    assert admin_stream.opened[0][2].closed


def test_a_counted_stream_is_counted_once_and_closes_what_it_wraps() -> None:
    class Body:
        closed = 0

        def __iter__(self):
            return iter([b"a", b"b"])

        def close(self):
            self.closed += 1

    before = sample("taskgate_open_streams")
    body = Body()
    stream = metrics.CountedStream(body)
    assert sample("taskgate_open_streams") == before + 1
    assert list(stream) == [b"a", b"b"]
    stream.close()
    stream.close()
    assert sample("taskgate_open_streams") == before
    assert body.closed == 1


def test_metrics_are_served_without_an_api_key_in_the_text_format(client) -> None:
    client.simulate_get("/health")
    response = client.simulate_get("/metrics", headers={"X-API-Key": ""})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    for name in (
        "taskgate_http_requests_total",
        "taskgate_http_request_duration_seconds_bucket",
        "taskgate_rate_limit_decisions_total",
        "taskgate_idempotency_decisions_total",
        "taskgate_upstream_errors_total",
        "taskgate_auth_failures_total",
        "taskgate_open_streams",
    ):
        assert f"# TYPE {name.removesuffix('_bucket')}" in response.text
    assert 'taskgate_http_requests_total{method="GET",route="/health",status="200"}' in response.text


@pytest.fixture
def token_client(orchestrator, admin_stream) -> falcon.testing.TestClient:
    settings = GatewaySettings.from_env(
        {
            "TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN,
            "TASKGATE_ENV": "test",
            "TASKGATE_METRICS_TOKEN": METRICS_TOKEN,
        }
    )
    deps = Dependencies.from_settings(settings, orchestrator=orchestrator, admin_stream=admin_stream)
    return falcon.testing.TestClient(create_app(settings, deps))


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token-0123456789", METRICS_TOKEN, "Basic x"])
def test_with_a_token_configured_metrics_need_it(token_client, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = token_client.simulate_get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'
    assert response.json["code"] == "unauthorized"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer"])
def test_the_configured_token_opens_the_metrics(token_client, scheme) -> None:
    response = token_client.simulate_get("/metrics", headers={"Authorization": f"{scheme} {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert "taskgate_http_requests_total" in response.text


_COUNT_IN_A_WORKER = """
import os
from gateway import metrics
metrics.REQUESTS.labels(route="/health", method="GET", status="200").inc()
metrics.OPEN_STREAMS.inc()
print(os.getpid())
"""


def test_with_a_multiprocess_directory_the_exposition_sums_every_process(tmp_path, monkeypatch) -> None:
    environment = {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    pids = [
        int(
            subprocess.run(
                [sys.executable, "-c", _COUNT_IN_A_WORKER],
                env=environment,
                capture_output=True,
                check=True,
                timeout=60,
            ).stdout
        )
        for _ in range(2)
    ]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    text = metrics.exposition().decode()
    assert 'taskgate_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert "taskgate_open_streams 2.0" in text

    # What gunicorn's child_exit hook does for a dead worker: its streams are gone, its counts stay.
    multiprocess.mark_process_dead(pids[0], str(tmp_path))
    text = metrics.exposition().decode()
    assert 'taskgate_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert "taskgate_open_streams 1.0" in text
