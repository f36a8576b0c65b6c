"""The WebSocket route's checks: the client's handshake, the forwarded request, the 101 hand-over."""

import falcon
import falcon.testing
import pytest

from gateway.errors import ApiError
from gateway.websocket_handshake import ClientHandshake
from gateway.websocket_handshake import accept_value
from gateway.websocket_handshake import client_handshake
from gateway.websocket_handshake import parse_response_head
from gateway.websocket_handshake import upgrade_request
from gateway.websocket_relay import UpgradableApp
from gateway.websocket_relay import hand_over

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "keep-alive, Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": KEY,
}


def handshake_of(headers: dict) -> ClientHandshake:
    return client_handshake(falcon.testing.create_req(headers=headers))


def refusal(headers: dict) -> ApiError:
    with pytest.raises(ApiError) as raised:
        handshake_of(headers)
    return raised.value


def test_a_valid_handshake_keeps_the_key_subprotocols_and_extensions() -> None:
    headers = {
        **HANDSHAKE,
        "Sec-WebSocket-Protocol": "v1, v2",
        "Sec-WebSocket-Extensions": "permessage-deflate",
    }
    assert handshake_of(headers) == ClientHandshake(KEY, "v1, v2", "permessage-deflate")
    assert handshake_of(HANDSHAKE) == ClientHandshake(KEY)


@pytest.mark.parametrize(
    "missing",
    [
        {"Upgrade": ""},
        {"Upgrade": "h2c"},
        {"Connection": "keep-alive"},
        {"Connection": ""},
    ],
)
def test_a_request_that_asks_for_no_websocket_is_426(missing) -> None:
    error = refusal({**HANDSHAKE, **missing})
    assert (error.status_code, error.error_code) == (426, "upgrade_required")
    assert error.headers["Upgrade"] == "websocket"


def test_another_protocol_version_is_400_naming_the_supported_one() -> None:
    error = refusal({**HANDSHAKE, "Sec-WebSocket-Version": "8"})
    assert (error.status_code, error.error_code) == (400, "bad_request")
    assert error.headers["Sec-WebSocket-Version"] == "13"


@pytest.mark.parametrize("key", ["", "not base64!", "dG9vIHNob3J0", KEY + "AAAA"])
def test_a_key_that_is_not_16_bytes_in_base64_is_400(key) -> None:
    error = refusal({**HANDSHAKE, "Sec-WebSocket-Key": key})
    assert (error.status_code, error.error_code) == (400, "bad_request")


def test_the_accept_value_is_the_one_of_rfc_6455() -> None:
    assert accept_value(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_the_upgrade_request_carries_the_handshake_and_the_given_headers() -> None:
    handshake = ClientHandshake(KEY, protocol="v1", extensions="permessage-deflate")
    message = upgrade_request(
        "admin:8081", "/stream/ws?workflow_id=wf-1", handshake, {"x-taskgate-user-id": "u-1"}
    )
    lines = message.decode().split("\r\n")
    assert lines[0] == "GET /stream/ws?workflow_id=wf-1 HTTP/1.1"
    assert message.endswith(b"\r\n\r\n")
    assert {
        "Host: admin:8081",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: v1",
        "Sec-WebSocket-Extensions: permessage-deflate",
        "x-taskgate-user-id: u-1",
    } <= set(lines)


@pytest.mark.parametrize(
    ("target", "headers"),
    [("/stream/ws?a=1", {"x-evil": "a\r\nInjected: yes"}), ("/stream/ws?a=1 HTTP/1.0\r\n", {})],
)
def test_the_upgrade_request_refuses_line_breaks(target, headers) -> None:
    with pytest.raises(ValueError):
        upgrade_request("admin", target, ClientHandshake(KEY), headers)


def test_a_response_head_is_parsed_with_case_insensitive_headers() -> None:
    head = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nSec-WebSocket-Accept: abc"
    response = parse_response_head(head)
    assert response.status == 101
    assert response.header("Sec-WebSocket-Accept") == "abc"
    assert response.header("Upgrade") == "websocket"
    assert response.header("Sec-WebSocket-Protocol") is None


@pytest.mark.parametrize("head", [b"", b"SSH-2.0-OpenSSH", b"HTTP/1.1 abc Nope", b"HTTP/2 101"])
def test_a_malformed_response_head_is_a_value_error(head) -> None:
    with pytest.raises(ValueError):
        parse_response_head(head)


@pytest.mark.parametrize(
    ("query", "headers", "status", "code"),
    [
        ({}, HANDSHAKE, 400, "validation_failed"),
        ({"workflow_id": "wf-1"}, {}, 426, "upgrade_required"),
        ({"workflow_id": "wf-1"}, {**HANDSHAKE, "Sec-WebSocket-Key": "short"}, 400, "bad_request"),
        # No gunicorn socket here, as under a worker that cannot hold connections (gthread).
        ({"workflow_id": "wf-1"}, HANDSHAKE, 501, "websocket_unsupported"),
    ],
)
def test_the_route_refuses_in_http_before_any_upgrade(client, query, headers, status, code) -> None:
    response = client.simulate_get("/api/v1/stream/ws", params=query, headers=headers)
    assert response.status_code == status
    assert response.json["code"] == code and response.json["request_id"]


def test_the_route_needs_credentials(client) -> None:
    response = client.simulate_get(
        "/api/v1/stream/ws", params={"workflow_id": "wf-1"}, headers={**HANDSHAKE, "X-API-Key": ""}
    )
    assert response.status_code == 401


class Body:
    """A handed-over body that records whether it was closed."""

    def __init__(self) -> None:
        self.closed = False

    def __iter__(self):
        return iter([b"", b"switched"])

    def close(self) -> None:
        self.closed = True


class Switching:
    def __init__(self, body: Body, status: str = falcon.HTTP_101) -> None:
        self.body = body
        self.status = status

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.status = self.status
        resp.set_header("Upgrade", "websocket")
        hand_over(req.env, self.body)


class FailAfterwards:
    def process_response(self, req, resp, resource, req_succeeded) -> None:
        raise falcon.HTTPInternalServerError()


def test_a_101_returns_the_handed_over_body() -> None:
    body = Body()
    app = UpgradableApp()
    app.add_route("/switch", Switching(body))
    result = falcon.testing.simulate_get(app, "/switch")
    assert result.status_code == 101
    assert result.content == b"switched"
    assert result.headers["upgrade"] == "websocket"


def test_a_handed_over_body_is_closed_when_the_answer_is_no_101() -> None:
    body = Body()
    app = UpgradableApp(middleware=[FailAfterwards()])
    app.add_route("/switch", Switching(body))
    result = falcon.testing.simulate_get(app, "/switch")
    assert result.status_code == 500
    assert body.closed
