"""The admin server's lean ``GET /stream/sse`` on real sockets: frames, refusals, leaving, stalling, stopping.

The server is the one the orchestrator and stream processes run (``AdminServer`` with the lean SSE
path of ``admin.sse_connection``), on a loopback port, over a real SQLite store and in-process bus.
Refusals are compared with what the admin app itself answers (the same request, handed to uvicorn
because it carries ``Content-Length: 0``).
"""

import asyncio
import json
import socket

import pytest

from orchestrator.admin.app import create_admin_app
from orchestrator.admin.server import AdminServer
from orchestrator.admin.sse_connection import SseStreams
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.bus import InProcessEventBus
from orchestrator.domain.tasks import NewTask
from orchestrator.engine.recorder import EventRecorder
from orchestrator.store import open_store
from orchestrator.streaming import WorkflowStreams

TOKEN = "service-token-0123456789"
WORKFLOW = "task-1"
OWNER = {"x-taskgate-service-token": TOKEN, "x-taskgate-user-id": "u1"}
WAIT_SECONDS = 30.0


class Admin:
    """A store with one workflow (``task-1`` of ``u1``), a bus, and the admin server on a free port."""

    def __init__(self, tmp_path, write_timeout: float = 30.0, buffer: int = 1000) -> None:
        self._tmp_path = tmp_path
        self._write_timeout = write_timeout
        self._buffer = buffer

    async def __aenter__(self) -> "Admin":
        self.store = await open_store(f"sqlite:///{self._tmp_path}/db/taskgate.db")
        await self.store.migrate()
        await self.store.create_task(NewTask(WORKFLOW, "u1", "t1", "s1", "query", "standard", {}, {}))
        self.bus = InProcessEventBus()
        self.recorder = EventRecorder(self.store, self.bus, WORKFLOW)
        streams = WorkflowStreams(self.store, self.bus, self._buffer)
        self.metrics = StreamMetrics(self.bus.watcher_count)
        app = create_admin_app(streams, TOKEN, self.metrics, 10.0, self._write_timeout)
        sse = SseStreams(streams, TOKEN, self.metrics, 10.0, self._write_timeout)
        self.server = AdminServer(app, "127.0.0.1", 0, ping_seconds=10.0, sse=sse)
        self.port = await self.server.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.server.stop()
        await self.store.close()

    async def request(self, target: str, headers: dict[str, str]):
        """Open a connection and send ``GET target``; return the reader and writer."""
        return await streams_of(await self.send_request(target, headers))

    async def send_request(self, target: str, headers: dict[str, str], receive_buffer: int | None = None):
        """Send ``GET target`` on a new socket that nothing reads until the caller does; return it."""
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        sock.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(sock, ("127.0.0.1", self.port))
        lines = [f"GET {target} HTTP/1.1", f"Host: 127.0.0.1:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        await loop.sock_sendall(sock, ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        return sock

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels)


async def streams_of(sock: socket.socket):
    """Start reading a socket: an asyncio reader and writer over it."""
    return await asyncio.open_connection(sock=sock, limit=1 << 24)


async def read_response(reader) -> tuple[int, dict[str, str], bytes]:
    """Read a whole response (its body de-chunked); the server ends it or closes the connection."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), WAIT_SECONDS)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ")[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), WAIT_SECONDS)
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int(await asyncio.wait_for(reader.readuntil(b"\r\n"), WAIT_SECONDS), 16)
            chunk = await asyncio.wait_for(reader.readexactly(size + 2), WAIT_SECONDS)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await asyncio.wait_for(reader.read(), WAIT_SECONDS)
    return status, headers, body


async def wait_until(condition, what: str) -> None:
    for _ in range(int(WAIT_SECONDS / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def frames_of(body: bytes) -> list[dict[str, str]]:
    frames = []
    for block in body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            name, _, value = line.partition(": ")
            if name:
                fields[name] = value
        if fields:
            frames.append(fields)
    return frames


def test_a_stream_replays_then_follows_live_events_to_its_end(tmp_path):
    async def scenario():
        async with Admin(tmp_path) as admin:
            await admin.recorder.emit("WORKFLOW_STARTED")
            await admin.recorder.emit("LLM_PARTIAL", payload={"delta": "Hel"})
            reader, writer = await admin.request(f"/stream/sse?workflow_id={WORKFLOW}", OWNER)
            head = await asyncio.wait_for(reader.readuntil(b"retry: 3000\n\n\r\n"), WAIT_SECONDS)
            await wait_until(lambda: admin.bus.watcher_count() == 1, "the subscription")
            await admin.recorder.emit("LLM_PARTIAL", payload={"delta": "lo"})
            await admin.recorder.emit("STREAM_END")
            rest = await asyncio.wait_for(reader.read(), WAIT_SECONDS)
            writer.close()
            await wait_until(
                lambda: admin.sample("taskgate_admin_open_streams", transport="sse") == 0, "close"
            )
            return head, rest, admin.bus.watcher_count()

    head, rest, watchers = asyncio.run(scenario())
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 200 OK"
    assert "content-type: text/event-stream" in lines
    assert "cache-control: no-cache" in lines
    assert "x-accel-buffering: no" in lines
    assert "transfer-encoding: chunked" in lines
    assert rest.endswith(b"0\r\n\r\n")
    body = rest.replace(b"\r\n", b"\n")
    frames = [frame for frame in frames_of(body) if "id" in frame]
    assert [frame["id"] for frame in frames] == ["1", "2", "3", "4"]
    assert [frame["event"] for frame in frames][-1] == "done"
    assert json.loads(frames[2]["data"])["delta"] == "lo"
    assert watchers == 0


def test_a_resumed_stream_with_a_type_filter_gets_only_what_it_asked_for(tmp_path):
    async def scenario():
        async with Admin(tmp_path) as admin:
            for event_type in ("WORKFLOW_STARTED", "LLM_PARTIAL", "LLM_PARTIAL", "LLM_OUTPUT", "STREAM_END"):
                await admin.recorder.emit(event_type)
            target = f"/stream/sse?workflow_id={WORKFLOW}&types=LLM_PARTIAL,STREAM_END"
            reader, writer = await admin.request(target, {**OWNER, "Last-Event-ID": "2"})
            status, _, body = await read_response(reader)
            writer.close()
            return status, body

    status, body = asyncio.run(scenario())
    assert status == 200
    frames = frames_of(body)
    assert frames[0] == {"retry": "3000"}
    assert [frame["id"] for frame in frames[1:]] == ["3", "5"]


REFUSALS = [
    ("no service token", f"/stream/sse?workflow_id={WORKFLOW}", {"x-taskgate-user-id": "u1"}, 401),
    (
        "wrong service token",
        f"/stream/sse?workflow_id={WORKFLOW}",
        {"x-taskgate-service-token": "wrong-token-0123456789", "x-taskgate-user-id": "u1"},
        401,
    ),
    ("no caller", f"/stream/sse?workflow_id={WORKFLOW}", {"x-taskgate-service-token": TOKEN}, 401),
    ("no workflow", "/stream/sse", OWNER, 400),
    ("malformed workflow", "/stream/sse?workflow_id=a%20b", OWNER, 400),
    ("bad resume point", f"/stream/sse?workflow_id={WORKFLOW}&last_event_id=x", OWNER, 400),
    ("bad Last-Event-ID", f"/stream/sse?workflow_id={WORKFLOW}", {**OWNER, "Last-Event-ID": "-1"}, 400),
    ("bad types", f"/stream/sse?workflow_id={WORKFLOW}&types=,,", OWNER, 400),
    ("unknown workflow", "/stream/sse?workflow_id=task-2", OWNER, 404),
    ("someone else's", f"/stream/sse?workflow_id={WORKFLOW}", {**OWNER, "x-taskgate-user-id": "u2"}, 404),
    (
        "missing scope",
        f"/stream/sse?workflow_id={WORKFLOW}",
        {**OWNER, "x-taskgate-scopes": "tasks:write"},
        403,
    ),
]


@pytest.mark.parametrize(
    ("case", "target", "headers", "status"), REFUSALS, ids=[case[0] for case in REFUSALS]
)
def test_a_refusal_is_the_admin_apps_status_and_json_before_any_stream_byte(
    tmp_path, case, target, headers, status
):
    async def scenario():
        async with Admin(tmp_path) as admin:
            reader, writer = await admin.request(target, headers)
            lean = await read_response(reader)
            writer.close()
            # The same request with an (empty) body is not a plain stream request: the app answers it.
            reader, writer = await admin.request(target, {**headers, "Content-Length": "0"})
            app = await read_response(reader)
            writer.close()
            return lean, app, admin.bus.watcher_count()

    (lean_status, lean_headers, lean_body), (app_status, _, app_body), watchers = asyncio.run(scenario())
    assert lean_status == app_status == status
    assert lean_headers["content-type"] == "application/json"
    assert json.loads(lean_body) == json.loads(app_body)
    assert set(json.loads(lean_body)) >= {"error", "code"}
    assert watchers == 0


def test_health_metrics_and_other_methods_are_served_by_the_app_on_the_same_port(tmp_path):
    async def scenario():
        async with Admin(tmp_path) as admin:
            answers = []
            for request_line in ("GET /health", "GET /metrics", "POST /stream/sse", "GET /nowhere"):
                method, target = request_line.split(" ")
                reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
                writer.write(f"{method} {target} HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n".encode())
                answers.append(await read_response(reader))
                writer.close()
            # A keep-alive connection handed to the app serves a second request too.
            reader, writer = await asyncio.open_connection("127.0.0.1", admin.port)
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            answers.append(await read_response(reader))
            answers.append(await read_response(reader))
            writer.close()
            return answers

    health, metrics, post, nowhere, first, second = asyncio.run(scenario())
    assert health[0] == 200 and json.loads(health[2]) == {"status": "healthy"}
    assert metrics[0] == 200 and b"taskgate_admin_open_streams" in metrics[2]
    assert post[0] == 405
    assert nowhere[0] == 404
    assert first[0] == second[0] == 200


def test_a_client_that_leaves_releases_its_subscription_at_once(tmp_path):
    async def scenario():
        async with Admin(tmp_path) as admin:
            await admin.recorder.emit("WORKFLOW_STARTED")
            reader, writer = await admin.request(f"/stream/sse?workflow_id={WORKFLOW}", OWNER)
            await asyncio.wait_for(reader.readuntil(b"event: "), WAIT_SECONDS)
            await wait_until(lambda: admin.bus.watcher_count() == 1, "the subscription")
            opened = admin.sample("taskgate_admin_open_streams", transport="sse")
            writer.close()
            # No event follows: the stream must notice the client leaving by itself.
            await wait_until(lambda: admin.bus.watcher_count() == 0, "the subscription to be released")
            await wait_until(
                lambda: admin.sample("taskgate_admin_open_streams", transport="sse") == 0, "close"
            )
            return opened

    assert asyncio.run(scenario()) == 1


def test_a_client_that_stops_reading_is_cut_off_after_the_write_timeout(tmp_path):
    async def scenario():
        async with Admin(tmp_path, write_timeout=0.5) as admin:
            await admin.recorder.emit("WORKFLOW_STARTED")
            sock = await admin.send_request(f"/stream/sse?workflow_id={WORKFLOW}", OWNER, receive_buffer=4096)
            await wait_until(lambda: admin.bus.watcher_count() == 1, "the subscription")
            # Far more than the socket buffers and the transport's hold; the client reads nothing.
            delta = "x" * 64 * 1024
            for _ in range(200):
                await admin.recorder.emit("LLM_PARTIAL", payload={"delta": delta})
                if admin.sample("taskgate_admin_stream_cutoffs_total", reason="write_stalled"):
                    break
            await wait_until(
                lambda: admin.sample("taskgate_admin_stream_cutoffs_total", reason="write_stalled") == 1,
                "the stalled client to be cut off",
            )
            await wait_until(lambda: admin.bus.watcher_count() == 0, "the subscription to be released")
            sock.close()
            return admin.sample("taskgate_admin_stream_cutoffs_total", reason="fell_behind")

    assert asyncio.run(scenario()) == 0


def test_a_reader_that_falls_behind_gets_the_overflow_frame_with_its_resume_point(tmp_path):
    async def scenario():
        async with Admin(tmp_path, buffer=5) as admin:
            await admin.recorder.emit("WORKFLOW_STARTED")
            sock = await admin.send_request(f"/stream/sse?workflow_id={WORKFLOW}", OWNER, receive_buffer=4096)
            await wait_until(lambda: admin.bus.watcher_count() == 1, "the subscription")
            delta = "x" * 64 * 1024
            for _ in range(200):
                await admin.recorder.emit("LLM_PARTIAL", payload={"delta": delta})
                if admin.bus.watcher_count() == 0:
                    break
            reader, writer = await streams_of(sock)
            status, _, body = await read_response(reader)
            writer.close()
            return status, body, admin.sample("taskgate_admin_stream_cutoffs_total", reason="fell_behind")

    status, body, fell_behind = asyncio.run(scenario())
    assert status == 200
    frames = [frame for frame in frames_of(body) if "id" in frame]
    last = frames[-1]
    assert last["event"] == "error"
    error = json.loads(last["data"])
    assert error["code"] == "stream_overflow"
    assert [int(frame["id"]) for frame in frames[:-1]] == list(range(1, len(frames)))
    assert error["last_event_id"] == len(frames) - 1
    assert fell_behind == 1


def test_stopping_the_server_ends_open_streams_within_its_grace_period(tmp_path):
    async def scenario():
        admin = Admin(tmp_path)
        await admin.__aenter__()
        try:
            await admin.recorder.emit("WORKFLOW_STARTED")
            reader, writer = await admin.request(f"/stream/sse?workflow_id={WORKFLOW}", OWNER)
            await asyncio.wait_for(reader.readuntil(b"event: "), WAIT_SECONDS)
            await asyncio.wait_for(admin.server.stop(), WAIT_SECONDS)
            rest = await asyncio.wait_for(reader.read(), WAIT_SECONDS)
            writer.close()
            return rest, admin.bus.watcher_count()
        finally:
            await admin.store.close()

    rest, watchers = asyncio.run(scenario())
    # Cut, not ended: no last chunk, so the client knows to resume.
    assert not rest.endswith(b"0\r\n\r\n")
    assert watchers == 0
