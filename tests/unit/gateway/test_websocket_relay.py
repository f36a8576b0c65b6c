"""The upstream handshake against a loopback admin server, and the relay over cooperative sockets."""

import json
import socket
import threading

import gevent
import gevent.socket
import pytest

from gateway import websocket_relay
from gateway.admin_stream import StreamRequest
from gateway.admin_websocket import AdminWebSocketClient
from gateway.caller import CallContext
from gateway.caller import Principal
from gateway.errors import ApiError
from gateway.websocket_handshake import ClientHandshake
from gateway.websocket_handshake import accept_value

KEY = "dGhlIHNhbXBsZSBub25jZQ=="
TOKEN = "service-token-0123456789"
CONTEXT = CallContext(request_id="r-1", principal=Principal(user_id="u-1", tenant_id="t-1", role="user"))
FIRST_FRAME = b"\x81\x02hi"
WORKFLOW = StreamRequest("wf-1")


class OneShotServer:
    """Accepts one connection, records the request head, and answers with the given bytes."""

    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.request = b""
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}"

    def _serve(self) -> None:
        connection, _ = self.listener.accept()
        with connection:
            while b"\r\n\r\n" not in self.request:
                self.request += connection.recv(4096)
            connection.sendall(self.answer)
            connection.shutdown(socket.SHUT_WR)
            connection.recv(1)

    def close(self) -> None:
        self.listener.close()
        self.thread.join(timeout=5)


def open_through(answer: bytes, request: StreamRequest = WORKFLOW):
    server = OneShotServer(answer)
    try:
        client = AdminWebSocketClient(server.url, TOKEN, timeout_seconds=5)
        upstream = client.open(request, CONTEXT, ClientHandshake(KEY, protocol="v1"))
        upstream.close()
        return upstream, server.request.decode()
    finally:
        server.close()


def test_a_switched_upstream_keeps_the_first_frames_that_came_with_its_head() -> None:
    answer = (
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept_value(KEY).encode() + b"\r\nSec-WebSocket-Protocol: v1\r\n\r\n"
    )
    upstream, request = open_through(answer + FIRST_FRAME, StreamRequest("wf-1", ("LLM_OUTPUT",), 4))
    assert upstream.response.status == 101
    assert upstream.response.header("Sec-WebSocket-Protocol") == "v1"
    assert upstream.pending == FIRST_FRAME
    lines = request.split("\r\n")
    assert lines[0] == "GET /stream/ws?workflow_id=wf-1&types=LLM_OUTPUT HTTP/1.1"
    assert {
        f"x-taskgate-service-token: {TOKEN}",
        "x-taskgate-user-id: u-1",
        "x-taskgate-tenant-id: t-1",
        "x-request-id: r-1",
        "Last-Event-ID: 4",
        f"Sec-WebSocket-Key: {KEY}",
        "Sec-WebSocket-Protocol: v1",
    } <= set(lines)


def test_an_upstream_refusal_keeps_its_status_and_message() -> None:
    body = json.dumps({"error": "Workflow not found", "code": "not_found"}).encode()
    answer = b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with pytest.raises(ApiError) as raised:
        open_through(answer)
    assert (raised.value.status_code, raised.value.message) == (404, "Workflow not found")


@pytest.mark.parametrize(
    ("answer", "status"),
    [
        (b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\n{}", 500),
        (b"HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: wrong\r\n\r\n", 503),
        (b"garbage\r\n\r\n", 503),
        (b"HTTP/1.1 101 Switching", 503),
    ],
)
def test_a_faulty_upstream_is_never_passed_on(answer, status) -> None:
    with pytest.raises(ApiError) as raised:
        open_through(answer)
    assert raised.value.status_code == status


def test_an_unreachable_admin_server_is_503() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AdminWebSocketClient(f"http://127.0.0.1:{port}", TOKEN, timeout_seconds=2)
    with pytest.raises(ApiError) as raised:
        client.open(StreamRequest("wf-1"), CONTEXT, ClientHandshake(KEY))
    assert raised.value.status_code == 503


def receive_all(sock) -> bytes:
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


def test_the_relay_copies_both_ways_and_ends_when_both_sides_have_closed() -> None:
    client, client_peer = gevent.socket.socketpair()
    upstream, upstream_peer = gevent.socket.socketpair()
    relaying = gevent.spawn(websocket_relay.relay, client, upstream, FIRST_FRAME, 5.0)

    client_peer.sendall(b"from the client")
    assert upstream_peer.recv(100) == b"from the client"
    upstream_peer.sendall(b"from upstream")
    upstream_peer.shutdown(socket.SHUT_WR)
    assert receive_all(client_peer) == FIRST_FRAME + b"from upstream"
    client_peer.close()

    relaying.join(timeout=5)
    assert relaying.dead and relaying.successful()
    assert receive_all(upstream_peer) == b""


def test_a_client_that_stops_reading_ends_the_relay(monkeypatch) -> None:
    monkeypatch.setattr(websocket_relay, "CLOSE_GRACE_SECONDS", 0.2)
    client, client_peer = gevent.socket.socketpair()
    upstream, upstream_peer = gevent.socket.socketpair()
    for sock in (client, client_peer):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    relaying = gevent.spawn(websocket_relay.relay, client, upstream, b"", 0.2)

    def flood() -> None:
        try:
            while True:
                upstream_peer.sendall(b"x" * 65536)
        except OSError:
            return

    flooding = gevent.spawn(flood)
    relaying.join(timeout=10)
    assert relaying.dead
    # The admin server's side sees the end of the connection, which ends its stream.
    flooding.join(timeout=10)
    assert flooding.dead
    for sock in (client_peer, upstream_peer):
        sock.close()


class Upstream:
    def __init__(self) -> None:
        self.closed = False
        self.sock = None
        self.pending = b""

    def close(self) -> None:
        self.closed = True


def test_closing_a_relay_never_started_leaves_the_client_connection_alone() -> None:
    client, client_peer = socket.socketpair()
    upstream = Upstream()
    websocket_relay.WebSocketRelay(client, upstream, 1.0).close()
    client_peer.sendall(b"still open")
    assert upstream.closed
    assert client.recv(100) == b"still open"
    client.close()
    client_peer.close()


def test_closing_a_switched_relay_ends_the_client_connection(monkeypatch) -> None:
    monkeypatch.setattr(websocket_relay, "relay", lambda *args: None)
    client, client_peer = socket.socketpair()
    upstream = Upstream()
    body = websocket_relay.WebSocketRelay(client, upstream, 1.0)
    assert list(body) == [b""]
    body.close()
    assert upstream.closed
    assert client_peer.recv(100) == b""
    assert client.recv(100) == b""
    client.close()
    client_peer.close()
