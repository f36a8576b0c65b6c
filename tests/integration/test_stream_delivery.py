"""Event streams under pressure: resuming while events arrive, leaving, and clients that stop reading."""

import json
import random
import socket
import threading
import time

import httpx
import pytest

from tests.integration.conftest import TERMINAL_STATUSES
from tests.integration.conftest import _user
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.sse import parse_frames
from tests.integration.sse import read_stream
from tests.integration.stream_metrics import admin_metric
from tests.integration.stream_metrics import gateway_open_streams

OPEN_SSE = ("taskgate_admin_open_streams", {"transport": "sse"})
# Bounds on waits for what takes a second or two on an idle machine; a loaded one can be many times
# slower, and every wait ends as soon as its condition holds.
SETTLE_SECONDS = 60.0
# A 20,000-event burst takes tens of seconds to fill a stalled reader's buffers on a loaded machine;
# only then does a write deadline start to run. Tests that wait for one get a longer test timeout.
BURST_SECONDS = 300.0
burst_test = pytest.mark.timeout(2 * BURST_SECONDS)
STALLED_CLIENT_MESSAGE = "stream cut off: the client stopped reading"


def _sse(stack) -> str:
    return stack.url + "/api/v1/stream/sse"


def _seqs(frames) -> list[int]:
    return [int(frame.id) for frame in frames]


def _simulated(partials: int, step_seconds: float) -> dict:
    return {"context": {"simulation": {"partials": partials, "step_seconds": step_seconds}}}


def _event_count(user, task_id: str) -> int:
    response = user.client.get(f"/api/v1/tasks/{task_id}/events", params={"limit": 1})
    assert response.status_code == 200, response.text
    return response.json()["count"]


def _join_all(threads: list[threading.Thread]) -> None:
    deadline = time.monotonic() + BURST_SECONDS
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads)


def _run_all(targets) -> None:
    threads = [threading.Thread(target=target) for target in targets]
    for thread in threads:
        thread.start()
    _join_all(threads)


def test_resuming_a_live_task_from_every_position_gets_the_rest_exactly_once(stack, alice):
    task_id = alice.submit("Stream forty deltas, please.", **_simulated(40, 0.04))["task_id"]
    resumed: dict[int, list[int]] = {}
    resumers: list[threading.Thread] = []

    def resume(position: int) -> None:
        headers = {**alice.headers, "Last-Event-ID": str(position)}
        resumed[position] = _seqs(read_stream(_sse(stack), headers, {"workflow_id": task_id}))

    # Every frame the first watcher sees starts a resume from it while the task is still writing.
    with httpx.stream(
        "GET", _sse(stack), headers=alice.headers, params={"workflow_id": task_id}, timeout=60
    ) as response:
        first = []
        for frame in parse_frames(response.iter_lines()):
            if frame.event is None:
                continue
            first.append(int(frame.id))
            thread = threading.Thread(target=resume, args=(int(frame.id),))
            thread.start()
            resumers.append(thread)
    _join_all(resumers)

    total = _event_count(alice, task_id)
    assert first == list(range(1, total + 1))
    assert sorted(resumed) == first
    for position, seqs in resumed.items():
        assert seqs == list(range(position + 1, total + 1)), position


def test_watchers_joining_while_a_burst_is_written_miss_nothing_and_repeat_nothing(stack, alice):
    # No pause between events: replay and live overlap for every watcher that joins mid-burst.
    task_id = alice.submit("Burst of deltas.", **_simulated(400, 0.0))["task_id"]
    starts = [0, 1, 2, 5, 10, 50, 100, 200, 300, 399] + random.sample(range(1, 400), 10)  # noqa: S311
    results: dict[int, list[int]] = {}

    def watch(index: int, start: int) -> None:
        time.sleep(random.uniform(0, 0.3))  # noqa: S311 - jitter, not a secret
        headers = {**alice.headers, "Last-Event-ID": str(start)}
        results[index] = _seqs(read_stream(_sse(stack), headers, {"workflow_id": task_id}))

    _run_all([lambda i=i, s=s: watch(i, s) for i, s in enumerate(starts)])

    total = _event_count(alice, task_id)
    assert total > 400
    for index, start in enumerate(starts):
        assert results[index] == list(range(start + 1, total + 1)), start


def test_a_types_filter_on_a_live_task_still_ends_the_stream_after_the_task(stack, alice):
    task_id = alice.submit("Only the deltas.", **_simulated(6, 0.05))["task_id"]

    frames = read_stream(_sse(stack), alice.headers, {"workflow_id": task_id, "types": "LLM_PARTIAL"})

    assert [frame.json()["type"] for frame in frames] == ["LLM_PARTIAL"] * 6
    assert alice.wait_finished(task_id, timeout=SETTLE_SECONDS)["status"] == "COMPLETED"


def _raw_request(
    base_url: str, target: str, headers: dict, receive_buffer: int | None = None
) -> socket.socket:
    """Send a GET on a plain socket (with a small receive window if asked); the test reads it, or not."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket()
    if receive_buffer is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((host, int(port)))
    lines = [
        f"GET {target} HTTP/1.1",
        f"Host: {host}",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def _status_line(sock: socket.socket) -> bytes:
    """Read a raw response's status line (the rest stays unread in the socket)."""
    sock.settimeout(SETTLE_SECONDS)
    line = bytearray()
    while not line.endswith(b"\r\n"):
        byte = sock.recv(1)
        if not byte:
            break
        line += byte
    return bytes(line)


def _logged_since(log_path, offset: int, message: str) -> bool:
    return message.encode() in log_path.read_bytes()[offset:]


def _open_raw_stream(stack, user, task_id: str, receive_buffer: int | None = None) -> socket.socket:
    """Open an SSE request through the gateway on a plain socket."""
    headers = {"X-API-Key": user.api_key, "Accept": "text/event-stream"}
    return _raw_request(stack.url, f"/api/v1/stream/sse?workflow_id={task_id}", headers, receive_buffer)


def _stream_resources_freed(stack, expected_open: float = 0.0) -> bool:
    return (
        admin_metric(stack, OPEN_SSE[0], **OPEN_SSE[1]) == expected_open
        and admin_metric(stack, "taskgate_bus_subscriptions") == expected_open
        and gateway_open_streams(stack) == expected_open
    )


def test_clients_that_leave_free_their_streams_and_subscriptions_while_the_task_runs(stack, alice):
    # A task of some 1000 seconds: the streams can only have ended because their clients left.
    task_id = alice.submit("A long task to walk away from.", **_simulated(2000, 0.5))["task_id"]
    try:
        wait_until(
            lambda: _stream_resources_freed(stack), timeout=SETTLE_SECONDS, what="no streams before the test"
        )
        polite = []
        client = httpx.Client(timeout=SETTLE_SECONDS)
        for _ in range(3):
            request = client.build_request(
                "GET", _sse(stack), headers=alice.headers, params={"workflow_id": task_id}
            )
            response = client.send(request, stream=True)
            lines = response.iter_lines()
            next(lines)
            polite.append((response, lines))
        rude = [_open_raw_stream(stack, alice, task_id) for _ in range(3)]
        for sock in rude:
            assert _status_line(sock).startswith(b"HTTP/1.1 200")
        wait_until(
            lambda: admin_metric(stack, *OPEN_SSE[:1], **OPEN_SSE[1]) == 6,
            timeout=SETTLE_SECONDS,
            what="6 streams",
        )

        for response, _ in polite:
            response.close()
        client.close()
        for sock in rude:
            sock.close()

        wait_until(lambda: _stream_resources_freed(stack), timeout=SETTLE_SECONDS, what="every stream freed")
        assert alice.client.get(f"/api/v1/tasks/{task_id}").json()["status"] not in TERMINAL_STATUSES
    finally:
        alice.client.post(f"/api/v1/tasks/{task_id}/cancel")


@pytest.fixture(scope="module")
def tight_stack(tmp_path_factory):
    """A stack on SQLite whose only way to end a stalled stream is its short write deadline.

    However slowly a loaded machine writes a burst, a reader that stops reading is cut off by the
    write deadline and nothing else: watcher buffers hold every event of a burst, so no watcher
    falls behind, and WebSocket keep-alive pings (which the raw clients here never answer) are
    too far apart to time out first.
    """
    running = start_stack(
        tmp_path_factory.mktemp("tight-streams"),
        TASKGATE_STREAM_BUFFER="100000",
        TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS="4",
        TASKGATE_SSE_PING_SECONDS="3600",
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def carol(tight_stack):
    user = _user(tight_stack, "carol@example.com")
    yield user
    user.client.close()


def _read_frames(sock: socket.socket, until: bytes, timeout: float = SETTLE_SECONDS) -> list[dict]:
    """Read the rest of a raw SSE response and return its event frames as dicts of their fields."""
    sock.settimeout(timeout)
    received = bytearray()
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
        if until in received:
            break
    _, _, body = bytes(received).partition(b"\r\n\r\n")
    frames = []
    for block in body.decode().split("\n\n"):
        fields = {}
        for line in block.split("\n"):
            # Chunked transfer coding puts size lines between frames; they have no "name: value".
            name, separator, value = line.partition(": ")
            if separator and name in ("id", "event", "data"):
                fields[name] = value
        if "event" in fields:
            frames.append(fields)
    return frames


def _follow_to_the_end(stack, user, task_id: str) -> list[int]:
    """Read a task's stream to its end as a well-behaved client does: resuming whenever cut off."""
    seqs: list[int] = []
    while True:
        headers = {**user.headers, "Last-Event-ID": str(seqs[-1] if seqs else 0)}
        frames = read_stream(_sse(stack), headers, {"workflow_id": task_id}, timeout=60)
        seqs.extend(int(frame.id) for frame in frames if frame.event != "error")
        if frames and frames[-1].event == "done":
            return seqs


@pytest.fixture(scope="module")
def patient_stack(tmp_path_factory):
    """A stack on SQLite with 50-event watcher buffers and the longest write deadline allowed.

    The slow reader below reads nothing until the whole burst has been written, which takes minutes
    on a loaded machine; it must be cut off for falling behind, never by the write deadline.
    """
    running = start_stack(
        tmp_path_factory.mktemp("patient-streams"),
        TASKGATE_STREAM_BUFFER="50",
        TASKGATE_STREAM_WRITE_TIMEOUT_SECONDS="3600",
    )
    yield running
    running.stop()


def _open_raw_admin_stream(stack, user, task_id: str) -> socket.socket:
    """Open the admin server's stream as the gateway does, on a socket with a tiny receive window."""
    user_id = user.client.get("/api/v1/auth/me").json()["user_id"]
    headers = {"x-taskgate-service-token": stack.service_token, "x-taskgate-user-id": user_id}
    target = f"/stream/sse?workflow_id={task_id}"
    return _raw_request(stack.orchestrator.admin_url, target, headers, receive_buffer=4096)


@burst_test
def test_a_reader_that_falls_behind_is_cut_off_with_a_resume_point_and_resumes_without_loss(patient_stack):
    dave = _user(patient_stack, "dave@example.com")
    # About 7 MB of frames, more than one connection's kernel buffers (some 4 MB here) hold, so a
    # reader that reads nothing falls more than 50 events behind long before the task ends.
    task_id = dave.submit("A long burst for a slow reader.", **_simulated(20000, 0.0002))["task_id"]
    sock = _open_raw_admin_stream(patient_stack, dave, task_id)
    everyone_else = _follow_to_the_end(patient_stack, dave, task_id)
    dave.wait_finished(task_id, timeout=SETTLE_SECONDS)

    frames = _read_frames(sock, until=b"stream_overflow")
    sock.close()

    last = frames[-1]
    assert last["event"] == "error"
    error = json.loads(last["data"])
    assert error["code"] == "stream_overflow"
    received = [int(frame["id"]) for frame in frames[:-1]]
    assert received == list(range(1, len(received) + 1))
    assert error["last_event_id"] == received[-1] == int(last["id"])
    assert admin_metric(patient_stack, "taskgate_admin_stream_cutoffs_total", reason="fell_behind") >= 1
    # Another watcher of the same task, meanwhile, was not held back: it got everything.
    total = _event_count(dave, task_id)
    assert everyone_else == list(range(1, total + 1))
    # Resuming from the resume point gets the rest, without gap or repeat.
    headers = {**dave.headers, "Last-Event-ID": str(error["last_event_id"])}
    rest = _seqs(read_stream(_sse(patient_stack), headers, {"workflow_id": task_id}, timeout=60))
    assert received + rest == list(range(1, total + 1))
    dave.client.close()


@burst_test
def test_a_client_that_stops_reading_is_disconnected_and_frees_everything(tight_stack, carol):
    wait_until(
        lambda: _stream_resources_freed(tight_stack),
        timeout=SETTLE_SECONDS,
        what="no streams before the test",
    )
    log_start = tight_stack.gateway.log_path.stat().st_size
    # About 7 MB of frames: more than the kernel buffers of a connection (some 4 MB here) hold.
    task_id = carol.submit("A burst nobody reads.", **_simulated(20000, 0.0002))["task_id"]
    sock = _open_raw_stream(tight_stack, carol, task_id, receive_buffer=4096)
    try:
        assert _status_line(sock).startswith(b"HTTP/1.1 200")
        # The client never reads on: once the buffers are full the gateway's write to it stalls,
        # and after the write deadline the gateway drops it and closes the upstream stream.
        wait_until(
            lambda: (
                _logged_since(tight_stack.gateway.log_path, log_start, STALLED_CLIENT_MESSAGE)
                and _stream_resources_freed(tight_stack)
            ),
            timeout=BURST_SECONDS,
            what="the stalled client cut off and every stream freed",
        )
    finally:
        sock.close()
    assert "Traceback" not in tight_stack.gateway.log_path.read_text()


@burst_test
def test_the_admin_server_cuts_off_a_stream_reader_that_stops_reading(tight_stack, carol):
    stalled_before = admin_metric(tight_stack, "taskgate_admin_stream_cutoffs_total", reason="write_stalled")
    task_id = carol.submit("A burst the gateway stops reading.", **_simulated(20000, 0.0002))["task_id"]
    sock = _open_raw_admin_stream(tight_stack, carol, task_id)
    try:
        wait_until(
            lambda: (
                admin_metric(tight_stack, "taskgate_admin_stream_cutoffs_total", reason="write_stalled")
                > stalled_before
            ),
            timeout=BURST_SECONDS,
            what="the admin server to cut the stalled stream",
        )
        wait_until(
            lambda: _stream_resources_freed(tight_stack), timeout=SETTLE_SECONDS, what="every stream freed"
        )
    finally:
        sock.close()
    assert "Traceback" not in tight_stack.orchestrator.log_path.read_text()


@burst_test
def test_a_websocket_client_that_stops_reading_is_cut_off_by_the_relay(tight_stack, carol):
    wait_until(
        lambda: _stream_resources_freed(tight_stack),
        timeout=SETTLE_SECONDS,
        what="no streams before the test",
    )
    log_start = tight_stack.gateway.log_path.stat().st_size
    # About 6 MB of messages: more than the kernel buffers of the gateway's client connection hold.
    task_id = carol.submit("A burst no WebSocket reads.", **_simulated(20000, 0.0002))["task_id"]
    handshake = {
        "X-API-Key": carol.api_key,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    target = f"/api/v1/stream/ws?workflow_id={task_id}"
    sock = _raw_request(tight_stack.url, target, handshake, receive_buffer=4096)
    try:
        assert _status_line(sock).startswith(b"HTTP/1.1 101")
        # Never read again: the relay's write to the client stalls, and after the write deadline
        # the gateway drops the client and closes the upstream WebSocket.
        wait_until(
            lambda: (
                _logged_since(tight_stack.gateway.log_path, log_start, STALLED_CLIENT_MESSAGE)
                and admin_metric(tight_stack, "taskgate_admin_open_streams", transport="ws") == 0
                and _stream_resources_freed(tight_stack)
            ),
            timeout=BURST_SECONDS,
            what="the stalled WebSocket client cut off and its stream freed",
        )
    finally:
        sock.close()
    assert "Traceback" not in tight_stack.gateway.log_path.read_text()
