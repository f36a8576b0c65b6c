"""The admin stream client over a loopback socket: headers sent, chunked frames relayed on arrival."""

import http.server
import socket
import threading

import pytest

from gateway.admin_stream import AdminStreamClient
from gateway.admin_stream import StreamRequest
from gateway.caller import CallContext
from gateway.caller import Principal
from gateway.errors import ApiError

CONTEXT = CallContext(
    request_id="r-1",
    traceparent="00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    principal=Principal(user_id="u-1", tenant_id="t-1", role="user"),
)


class ChunkedSseHandler(http.server.BaseHTTPRequestHandler):
    """Sends two frames as chunks, the second only after the test has received the first."""

    protocol_version = "HTTP/1.1"
    seen: list[tuple[str, dict]] = []
    first_frame_received = threading.Event()

    def do_GET(self) -> None:
        type(self).seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._chunk(b"id: 1\nevent: A\ndata: {}\n\n")
        type(self).first_frame_received.wait(5)
        self._chunk(b"id: 2\nevent: done\ndata: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")

    def _chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""


@pytest.fixture
def admin_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), ChunkedSseHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    ChunkedSseHandler.first_frame_received.set()
    server.shutdown()
    server.server_close()


def test_frames_arrive_one_by_one_with_identity_headers(admin_server) -> None:
    client = AdminStreamClient(admin_server, "service-token-0123456789", connect_timeout_seconds=5)
    frames = client.open(StreamRequest("wf-1", ("A", "STREAM_END"), last_event_id=4), CONTEXT)
    assert next(frames) == b"id: 1\nevent: A\ndata: {}\n\n"
    ChunkedSseHandler.first_frame_received.set()
    assert list(frames) == [b"id: 2\nevent: done\ndata: [DONE]\n\n"]
    path, headers = ChunkedSseHandler.seen[-1]
    assert path == "/stream/sse?workflow_id=wf-1&types=A%2CSTREAM_END"
    assert headers["x-taskgate-service-token"] == "service-token-0123456789"
    assert (headers["x-taskgate-user-id"], headers["x-taskgate-tenant-id"]) == ("u-1", "t-1")
    assert (headers["x-request-id"], headers["Last-Event-ID"]) == ("r-1", "4")
    assert headers["traceparent"] == CONTEXT.traceparent


def test_an_unreachable_admin_server_is_503_with_retry_after() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = AdminStreamClient(
        f"http://127.0.0.1:{port}", "service-token-0123456789", connect_timeout_seconds=2
    )
    with pytest.raises(ApiError) as raised:
        client.open(StreamRequest("wf-1"), CONTEXT)
    assert raised.value.status_code == 503
    assert raised.value.headers == {"Retry-After": "1"}
