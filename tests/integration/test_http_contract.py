"""The HTTP contract's status codes and headers, against real gunicorn gateways (API.md, Conventions).

Each error status of API.md, with the header it must carry; never a 500 for a client's mistake,
never a stack in a body; request ids and trace context reach the orchestrator; credentials in a
URL never reach a log.
"""

import concurrent.futures
import json
import secrets
import socket
import threading
import time

import grpc
import httpx
import pytest

from tests.integration.processes import free_port
from tests.integration.processes import start_gateway
from tests.integration.processes import wait_until

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
WELL_FORMED_KEY = "sk_" + "0f" * 32


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    """Check the one error body of API.md and the ids every response carries; return the body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) <= {"error", "code", "request_id", "details", "window"}
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert response.headers["X-Trace-ID"]
    assert "Traceback" not in response.text and 'File "' not in response.text
    if code is not None:
        assert body["code"] == code
    return body


def read_response(connection: socket.socket) -> str:
    """Read one whole HTTP response (headers and a Content-Length body) from a raw connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += connection.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += connection.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_400_for_malformed_json_with_a_static_message(alice) -> None:
    response = alice.client.post(
        "/api/v1/tasks", content=b'{"query": "x",', headers={"Content-Type": "application/json"}
    )
    assert assert_error(response, 400, "bad_request")["error"] == "Request body is not valid JSON"


def test_400_for_invalid_fields_lists_each_in_details(alice) -> None:
    response = alice.client.post("/api/v1/tasks", json={"query": "", "mode": "fast", "max_iterations": 0})
    body = assert_error(response, 400, "validation_failed")
    assert {detail["field"] for detail in body["details"]} == {"query", "mode", "max_iterations"}
    assert all(isinstance(detail["message"], str) for detail in body["details"])


@pytest.mark.parametrize("path", ["/api/v1/tasks/bad%20id", "/api/v1/sessions/" + "x" * 129])
def test_400_for_a_malformed_id_in_the_path(alice, path) -> None:
    assert_error(alice.client.get(path), 400, "validation_failed")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": WELL_FORMED_KEY},
        {"Authorization": "Bearer not-a-key"},
        {"Authorization": "Basic eDp5"},
    ],
)
def test_401_with_the_bearer_challenge(stack, headers) -> None:
    response = httpx.get(stack.url + "/api/v1/tasks", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="taskgate"'


def test_401_for_query_credentials_outside_the_stream_routes(stack, alice) -> None:
    for name in ("api_key", "token"):
        response = httpx.get(stack.url + "/api/v1/tasks", params={name: alice.api_key})
        assert_error(response, 401, "unauthorized")


def test_404_for_an_unknown_route_with_the_error_body(stack) -> None:
    assert_error(httpx.get(stack.url + "/api/v2/nothing"), 404, "not_found")


def test_404_names_the_missing_thing(alice) -> None:
    assert (
        assert_error(alice.client.get("/api/v1/tasks/no-such-task"), 404, "not_found")["error"]
        == "Task not found"
    )


@pytest.mark.parametrize(
    ("method", "path", "allowed"), [("DELETE", "/api/v1/tasks", {"GET", "POST"}), ("PUT", "/health", {"GET"})]
)
def test_405_lists_the_allowed_methods(alice, method, path, allowed) -> None:
    response = alice.client.request(method, path)
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].replace(" ", "").split(",")) - {"OPTIONS"} == allowed


def test_409_for_a_state_conflict(alice, finished_task) -> None:
    response = alice.client.post(f"/api/v1/tasks/{finished_task['task_id']}/cancel")
    assert assert_error(response, 409, "conflict")["error"] == "Task has already finished"


def test_413_before_the_body_is_read(stack, alice) -> None:
    host, port = stack.env["TASKGATE_GATEWAY_BIND"].split(":")
    head = (
        "POST /api/v1/tasks HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
        f"X-API-Key: {alice.api_key}\r\nContent-Length: {1024 * 1024 * 1024}\r\n\r\n"
    )
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        # Only the headers of a 1 GiB body are sent: the answer cannot wait for the body.
        connection.sendall(head.encode())
        answer = read_response(connection)
    assert answer.startswith("HTTP/1.1 413 ")
    assert json.loads(answer.partition("\r\n\r\n")[2])["code"] == "payload_too_large"
    assert time.monotonic() - started < 5


def test_413_for_a_chunked_body_over_the_cap(alice) -> None:
    def chunks():
        for _ in range(20):
            yield b'{"query": "' + b"x" * 65536

    response = alice.client.post(
        "/api/v1/tasks", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")


def test_415_for_a_body_that_is_not_json(alice) -> None:
    response = alice.client.post("/api/v1/tasks", content=b"query=hi", headers={"Content-Type": "text/plain"})
    assert_error(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        (
            "POST",
            "/api/v1/tasks",
            {"json": {"query": "x", "context": "not an object", "max_iterations": "1e999"}},
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"content": b"\xff\xfe\x00", "headers": {"Content-Type": "application/json"}},
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"content": b"[" * 100000, "headers": {"Content-Type": "application/json"}},
        ),
        (
            "POST",
            "/api/v1/tasks",
            {"content": b'{"query": NaN}', "headers": {"Content-Type": "application/json"}},
        ),
        (
            "GET",
            "/api/v1/tasks",
            {"params": {"limit": "99999999999999999999", "offset": "-1", "status": "\u0000"}},
        ),
        ("GET", "/api/v1/search?q=%ED%A0%80%FF", {}),
        ("GET", "/api/v1/stats", {"params": {"days": "NaN"}}),
        ("PATCH", "/api/v1/sessions/s-1", {"json": {"title": ["a"]}}),
        (
            "GET",
            "/api/v1/stream/sse",
            {"params": {"workflow_id": "../../etc/passwd", "last_event_id": "1e3"}},
        ),
        ("GET", "/api/v1/tasks/%00", {}),
    ],
)
def test_a_client_mistake_is_never_a_server_error(alice, method, path, kwargs) -> None:
    response = alice.client.request(method, path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    assert_error(response, response.status_code)


def test_every_response_carries_request_and_trace_ids(stack, alice) -> None:
    for response in (
        httpx.get(stack.url + "/health", headers={"X-Request-ID": "contract-1", "traceparent": TRACEPARENT}),
        alice.client.get(
            "/api/v1/tasks/missing", headers={"X-Request-ID": "contract-1", "traceparent": TRACEPARENT}
        ),
    ):
        assert response.headers["X-Request-ID"] == "contract-1"
        assert response.headers["X-Trace-ID"] == TRACE_ID
    response = httpx.get(stack.url + "/health", headers={"X-Request-ID": "not valid!"})
    assert response.headers["X-Request-ID"] != "not valid!"


def test_a_forwarded_proto_from_an_untrusted_peer_does_not_turn_on_hsts(stack) -> None:
    # gunicorn alone would believe 127.0.0.1; the gateway trusts only TASKGATE_TRUSTED_PROXIES.
    response = httpx.get(stack.url + "/health", headers={"X-Forwarded-Proto": "https"})
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "Strict-Transport-Security" not in response.headers


def test_the_request_id_and_traceparent_reach_the_orchestrator(stack, alice) -> None:
    request_id = f"contract-{secrets.token_hex(8)}"
    alice.client.get("/api/v1/tasks", headers={"X-Request-ID": request_id, "traceparent": TRACEPARENT})

    def logged_line():
        lines = stack.orchestrator.log_path.read_text().splitlines()
        return [line for line in lines if request_id in line and "TaskService/ListTasks" in line]

    (line,) = wait_until(logged_line, timeout=10, what="the orchestrator's log line of the call")
    assert f'"traceparent": "{TRACEPARENT}"' in line
    assert '"code": "OK"' in line


def test_credentials_in_urls_never_reach_a_log(stack, alice, finished_task) -> None:
    stream = f"/api/v1/stream/sse?workflow_id={finished_task['task_id']}"
    for name in ("api_key", "token"):
        with httpx.stream("GET", f"{stack.url}{stream}&{name}={alice.api_key}", timeout=30) as response:
            assert response.status_code == 200
            response.read()
        httpx.get(f"{stack.url}/api/v1/tasks?{name}={alice.api_key}")
        httpx.get(f"{stack.url}/api/v1/stream/sse?workflow_id=bad%20id&{name}={alice.api_key}")
    host, port = stack.env["TASKGATE_GATEWAY_BIND"].split(":")
    # A request line gunicorn cannot parse is quoted in its error log: the key must not be.
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(f"GET {stream}&api_key={alice.api_key}\x01 HTTP/1.1\r\nHost: g\r\n\r\n".encode())
        assert connection.recv(100).startswith(b"HTTP/1.1 400 ")
    wait_until(lambda: "Invalid HTTP request line" in stack.gateway.log_path.read_text(), timeout=10)
    for log in (stack.gateway.log_path, stack.orchestrator.log_path):
        assert alice.api_key not in log.read_text()


@pytest.fixture(scope="module")
def unreachable_gateway(tmp_path_factory):
    """A gateway whose orchestrator and stream server do not listen at all."""
    tmp = tmp_path_factory.mktemp("unreachable")
    gateway = start_gateway(
        tmp,
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{free_port()}",
        TASKGATE_ADMIN_URL=f"http://127.0.0.1:{free_port()}",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield gateway
    gateway.stop()


@pytest.fixture(scope="module")
def slow_gateway(tmp_path_factory):
    """A gateway with a short deadline whose orchestrator takes seconds to validate a key."""
    released = threading.Event()

    def validate_slowly(request: bytes, context: grpc.ServicerContext) -> bytes:
        released.wait(timeout=10)
        return b""

    server = grpc.server(concurrent.futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "taskgate.orchestrator.v1.AuthService",
                {"ValidateApiKey": grpc.unary_unary_rpc_method_handler(validate_slowly)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    gateway = start_gateway(
        tmp_path_factory.mktemp("slow"),
        TASKGATE_ORCHESTRATOR_ADDR=f"127.0.0.1:{port}",
        TASKGATE_UPSTREAM_TIMEOUT_SECONDS="0.5",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield gateway
    released.set()
    gateway.stop()
    server.stop(grace=None)


def test_503_with_retry_after_while_the_orchestrator_is_unreachable(unreachable_gateway) -> None:
    headers = {"X-API-Key": WELL_FORMED_KEY}
    for path in ("/api/v1/tasks", "/api/v1/stream/sse?workflow_id=wf-1"):
        response = httpx.get(unreachable_gateway.url + path, headers=headers, timeout=10)
        assert_error(response, 503, "unavailable")
        assert response.headers["Retry-After"] == "1"
    response = httpx.get(unreachable_gateway.url + "/readiness", timeout=10)
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"


def test_504_when_the_orchestrator_does_not_answer_in_time(slow_gateway) -> None:
    started = time.monotonic()
    response = httpx.get(
        slow_gateway.url + "/api/v1/tasks", headers={"X-API-Key": WELL_FORMED_KEY}, timeout=10
    )
    assert_error(response, 504, "upstream_timeout")
    assert time.monotonic() - started < 3
