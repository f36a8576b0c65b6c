"""The access log: one line per request, with the route template and never a credential."""

import json
import logging
from wsgiref.util import setup_testing_defaults

import pytest

from tests.unit.gateway.fakes import API_KEY


@pytest.fixture
def log(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="gateway.access")
    return caplog


def record_text(record: logging.LogRecord) -> str:
    return repr(vars(record))


def test_one_line_per_request_with_route_status_duration_and_ids(client, log) -> None:
    client.simulate_get("/api/v1/tasks/task-1", headers={"X-Request-ID": "req-log-1"})
    (line,) = [record for record in log.records if record.name == "gateway.access"]
    assert (line.method, line.route, line.status, line.request_id, line.user_id) == (
        "GET",
        "/api/v1/tasks/{task_id}",
        404,
        "req-log-1",
        "user-1",
    )
    assert line.duration_ms >= 0


@pytest.mark.parametrize(
    "query",
    [
        {"workflow_id": "wf-1", "api_key": API_KEY},
        {"workflow_id": "wf-1", "token": API_KEY},
        {"workflow_id": "bad id", "api_key": API_KEY},
    ],
)
def test_query_credentials_never_reach_the_log(client, log, query) -> None:
    client.simulate_get("/api/v1/stream/sse", params=query, headers={"X-API-Key": ""})
    client.simulate_get("/api/v1/tasks", params=query, headers={"X-API-Key": ""})
    client.simulate_get(f"/api/v1/tasks/{API_KEY}", params=query)
    assert len([record for record in log.records if record.name == "gateway.access"]) == 3
    for record in log.records:
        assert API_KEY not in record_text(record)
        assert API_KEY not in record.getMessage()


def test_a_request_falcon_refuses_before_any_middleware_is_still_a_logged_400(client, log) -> None:
    # Falcon answers the WEBSOCKET method 400 before any process_request has run.
    environ = {"REQUEST_METHOD": "WEBSOCKET", "PATH_INFO": "/health"}
    setup_testing_defaults(environ)
    answer = {}
    body = b"".join(client.app(environ, lambda status, headers, exc_info=None: answer.update(headers)))
    assert json.loads(body)["code"] == "bad_request"
    assert answer["x-request-id"] and answer["x-trace-id"]
    (line,) = [record for record in log.records if record.name == "gateway.access"]
    assert (line.method, line.status) == ("WEBSOCKET", 400)
