"""Live event streams over WebSocket through the gateway's relay, with real processes and sockets."""

import contextlib
import json
import urllib.parse

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect

from tests.integration.conftest import TERMINAL_STATUSES
from tests.integration.processes import start_gateway
from tests.integration.processes import wait_until
from tests.integration.stream_metrics import admin_metric
from tests.integration.stream_metrics import gateway_open_streams

OPEN_WS = ("taskgate_admin_open_streams", {"transport": "ws"})
HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
}
# A bound on waits that take a second or two on an idle machine; a loaded one can be many times
# slower, and every wait ends as soon as its condition holds.
SETTLE_SECONDS = 60.0


def _ws_url(base_url: str, params: dict, path: str = "/api/v1/stream/ws") -> str:
    return base_url.replace("http://", "ws://", 1) + path + "?" + urllib.parse.urlencode(params)


def _http_url(stack) -> str:
    return stack.url + "/api/v1/stream/ws"


def _open(stack, params: dict, headers: dict | None = None) -> ClientConnection:
    return connect(_ws_url(stack.url, params), additional_headers=headers or {}, open_timeout=SETTLE_SECONDS)


def _get(url: str, **kwargs) -> httpx.Response:
    # httpx waits 5 seconds by default, which a loaded machine can exceed.
    return httpx.get(url, timeout=SETTLE_SECONDS, **kwargs)


def _read_all(ws: ClientConnection, timeout: float = SETTLE_SECONDS) -> tuple[list[dict], int | None]:
    """Read text messages until the server closes; return them as JSON and the close code."""
    messages = []
    try:
        while True:
            message = ws.recv(timeout=timeout)
            assert isinstance(message, str)
            messages.append(json.loads(message))
    except ConnectionClosed:
        pass
    return messages, ws.close_code


def _refusal(base_url: str, params: dict, headers: dict | None = None, path: str = "/api/v1/stream/ws"):
    """Try to open a WebSocket that must be refused; return the HTTP response of the refusal."""
    with pytest.raises(InvalidStatus) as raised:
        connect(
            _ws_url(base_url, params, path), additional_headers=headers or {}, open_timeout=SETTLE_SECONDS
        )
    return raised.value.response


def _simulated(partials: int, step_seconds: float) -> dict:
    return {"context": {"simulation": {"partials": partials, "step_seconds": step_seconds}}}


def test_a_live_task_s_events_arrive_once_in_order_then_close_1000(stack, alice):
    task_id = alice.submit("Explain WebSocket framing in two sentences.")["task_id"]

    with _open(stack, {"workflow_id": task_id}, alice.headers) as ws:
        messages, close_code = _read_all(ws)

    stored = alice.events(task_id)
    assert close_code == 1000
    assert [message["seq"] for message in messages] == [event["seq"] for event in stored]
    assert messages[-1]["type"] == "STREAM_END"
    for message, event in zip(messages, stored, strict=True):
        assert message["type"] == event["type"] and message["payload"] == event["payload"]
        assert message["message"] == event["message"] and message["timestamp"] == event["timestamp"]
        assert message["workflow_id"] == task_id and message["stream_id"] == str(event["seq"])
        if event["type"] == "LLM_PARTIAL":
            assert message["delta"] == event["payload"]["delta"]
        if event["type"] == "LLM_OUTPUT":
            assert message["response"]


def test_a_finished_task_resumes_from_every_position(stack, alice, finished_task):
    task_id = finished_task["task_id"]
    total = len(alice.events(task_id))

    for position in range(total + 1):
        # Alternately by query parameter and by header.
        if position % 2:
            ws = _open(stack, {"workflow_id": task_id}, {**alice.headers, "Last-Event-ID": str(position)})
        else:
            ws = _open(stack, {"workflow_id": task_id, "last_event_id": position}, alice.headers)
        with ws:
            messages, close_code = _read_all(ws)
        assert [message["seq"] for message in messages] == list(range(position + 1, total + 1)), position
        assert close_code == 1000


def test_the_last_event_id_header_wins_over_the_query(stack, alice, finished_task):
    headers = {**alice.headers, "Last-Event-ID": "5"}
    with _open(stack, {"workflow_id": finished_task["task_id"], "last_event_id": 2}, headers) as ws:
        messages, _ = _read_all(ws)

    assert messages[0]["seq"] == 6


def test_the_types_filter_delivers_only_those_types_and_still_closes(stack, alice, finished_task):
    params = {"workflow_id": finished_task["task_id"], "types": "LLM_OUTPUT,WORKFLOW_COMPLETED"}

    with _open(stack, params, alice.headers) as ws:
        messages, close_code = _read_all(ws)

    assert [message["type"] for message in messages] == ["LLM_OUTPUT", "WORKFLOW_COMPLETED"]
    assert close_code == 1000


def test_another_user_s_and_an_unknown_workflow_are_404_before_the_upgrade(stack, bob, finished_task):
    for workflow_id in (finished_task["task_id"], "no-such-workflow"):
        response = _refusal(stack.url, {"workflow_id": workflow_id}, bob.headers)

        assert response.status_code == 404
        body = json.loads(bytes(response.body))
        assert body["code"] == "not_found" and body["request_id"]


def test_without_credentials_the_upgrade_is_401(stack, finished_task):
    response = _refusal(stack.url, {"workflow_id": finished_task["task_id"]})

    assert response.status_code == 401
    assert json.loads(bytes(response.body))["code"] == "unauthorized"


def test_the_api_key_query_parameter_works(stack, alice, finished_task):
    with _open(stack, {"workflow_id": finished_task["task_id"], "api_key": alice.api_key}) as ws:
        messages, close_code = _read_all(ws)

    assert messages[-1]["type"] == "STREAM_END" and close_code == 1000


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"workflow_id": "bad id!"},
        {"workflow_id": "x", "last_event_id": "-1"},
        {"workflow_id": "x", "types": "not a type"},
    ],
)
def test_bad_parameters_are_400_before_the_upgrade(stack, alice, params):
    response = _refusal(stack.url, params, alice.headers)

    assert response.status_code == 400
    body = json.loads(bytes(response.body))
    assert body["code"] and body["request_id"]


def test_a_plain_get_is_426_with_the_error_body(stack, alice, finished_task):
    response = _get(_http_url(stack), params={"workflow_id": finished_task["task_id"]}, headers=alice.headers)

    assert response.status_code == 426
    assert response.headers["upgrade"] == "websocket"
    assert response.json()["code"] == "upgrade_required" and response.json()["request_id"]


def test_a_bad_handshake_is_400(stack, alice, finished_task):
    params = {"workflow_id": finished_task["task_id"]}
    for bad in ({"Sec-WebSocket-Version": "8"}, {"Sec-WebSocket-Key": "too-short"}):
        headers = {**alice.headers, **HANDSHAKE, **bad}
        response = _get(_http_url(stack), params=params, headers=headers)

        assert response.status_code == 400, bad
        assert response.json()["code"] == "bad_request"


def test_the_admin_server_refuses_in_http_before_accepting(stack, finished_task):
    admin = stack.orchestrator.admin_url
    params = {"workflow_id": finished_task["task_id"]}
    someone_else = {"x-taskgate-service-token": stack.service_token, "x-taskgate-user-id": "someone-else"}

    unauthenticated = _refusal(admin, params, path="/stream/ws")
    not_theirs = _refusal(admin, params, someone_else, path="/stream/ws")

    assert unauthenticated.status_code == 401
    assert json.loads(bytes(unauthenticated.body))["code"] == "unauthorized"
    assert not_theirs.status_code == 404
    assert json.loads(bytes(not_theirs.body)) == {"error": "Workflow not found", "code": "not_found"}


def _ws_resources_freed(stack) -> bool:
    return (
        admin_metric(stack, OPEN_WS[0], **OPEN_WS[1]) == 0
        and admin_metric(stack, "taskgate_bus_subscriptions") == 0
        and gateway_open_streams(stack) == 0
    )


def test_clients_that_leave_free_their_streams_and_subscriptions_while_the_task_runs(stack, alice):
    # A task of some 250 seconds: the streams can only have ended because their clients left.
    task_id = alice.submit("A long task to walk away from.", **_simulated(500, 0.5))["task_id"]
    log_start = stack.gateway.log_path.stat().st_size
    try:
        wait_until(
            lambda: _ws_resources_freed(stack), timeout=SETTLE_SECONDS, what="no streams before the test"
        )
        with contextlib.ExitStack() as opened:
            sockets = [
                opened.enter_context(_open(stack, {"workflow_id": task_id}, alice.headers)) for _ in range(4)
            ]
            for ws in sockets:
                assert json.loads(ws.recv(timeout=SETTLE_SECONDS))["seq"] == 1
            wait_until(
                lambda: (
                    admin_metric(stack, *OPEN_WS[:1], **OPEN_WS[1]) == 4 and gateway_open_streams(stack) == 4
                ),
                timeout=SETTLE_SECONDS,
                what="4 streams",
            )

            # Two leave politely (a close frame), two just drop the connection.
            for ws in sockets[:2]:
                ws.close()
            for ws in sockets[2:]:
                ws.socket.close()

        wait_until(
            lambda: _ws_resources_freed(stack), timeout=SETTLE_SECONDS, what="every WebSocket stream freed"
        )
        assert alice.client.get(f"/api/v1/tasks/{task_id}").json()["status"] not in TERMINAL_STATUSES
    finally:
        alice.client.post(f"/api/v1/tasks/{task_id}/cancel")
    assert b"Traceback" not in stack.gateway.log_path.read_bytes()[log_start:]


def test_a_relay_that_ends_leaves_no_traceback_in_the_gateway_log(stack, alice, finished_task):
    log_start = stack.gateway.log_path.stat().st_size

    for _ in range(3):
        with _open(stack, {"workflow_id": finished_task["task_id"]}, alice.headers) as ws:
            _read_all(ws)
    wait_until(lambda: gateway_open_streams(stack) == 0, timeout=SETTLE_SECONDS, what="the relays to end")

    log = stack.gateway.log_path.read_bytes()[log_start:]
    assert b"Traceback" not in log and b'"level": "ERROR"' not in log


@pytest.fixture(scope="module")
def gthread_gateway(stack, tmp_path_factory):
    """A gateway on the gthread worker in front of the same orchestrator."""
    gateway = start_gateway(
        tmp_path_factory.mktemp("gthread-gateway"),
        TASKGATE_SERVICE_TOKEN=stack.service_token,
        TASKGATE_ORCHESTRATOR_ADDR=stack.env["TASKGATE_ORCHESTRATOR_ADDR"],
        TASKGATE_ADMIN_URL=stack.env["TASKGATE_ADMIN_URL"],
        TASKGATE_GATEWAY_WORKER_CLASS="gthread",
        TASKGATE_GATEWAY_WORKERS="1",
    )
    yield gateway
    gateway.stop()


def test_the_gthread_worker_answers_501(stack, gthread_gateway, alice, finished_task):
    response = _refusal(gthread_gateway.url, {"workflow_id": finished_task["task_id"]}, alice.headers)

    assert response.status_code == 501
    body = json.loads(bytes(response.body))
    assert body["code"] == "websocket_unsupported" and "gevent" in body["error"]
