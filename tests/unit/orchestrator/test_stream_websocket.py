"""The admin server's ``/stream/ws``: messages, closes, refusals, leaving clients and stalled ones."""

import asyncio
import datetime
import json

import falcon
import falcon.testing
import pytest

from orchestrator.admin.app import create_admin_app
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.websocket import SEND_SCOPE_KEY
from orchestrator.admin.websocket import WebSocketConnections
from orchestrator.admin.websocket import WebSocketStalledError
from orchestrator.errors import TaskNotFoundError
from orchestrator.events import Event
from orchestrator.events import overflow_data
from orchestrator.events import overflow_frame
from orchestrator.streaming import StreamOverflowError

TOKEN = "service-token-0123456789"
OWNER = {"x-taskgate-service-token": TOKEN, "x-taskgate-user-id": "u-1"}
WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)


def event(seq: int, event_type: str, **fields) -> Event:
    return Event(workflow_id="wf-1", seq=seq, type=event_type, timestamp=WHEN, **fields)


EVENTS = [
    event(1, "WORKFLOW_STARTED"),
    event(2, "LLM_PARTIAL", payload={"delta": "Hi"}),
    event(3, "LLM_OUTPUT", payload={"response": "Hi."}),
    event(4, "STREAM_END"),
]


class FakeEngine:
    """Owns ``wf-1`` (user ``u-1``); ``follow`` plays the script it is given."""

    def __init__(self, script=None) -> None:
        self.script = script or (lambda after_seq, types: _replay(EVENTS, after_seq, types))
        self.follows: list[tuple[str, int, list[str] | None]] = []
        self.closed = asyncio.Event()
        self.feed = None  # The task feed's route is not exercised here.

    async def require_workflow(self, caller, workflow_id: str) -> None:
        if workflow_id != "wf-1" or caller.user_id != "u-1":
            raise TaskNotFoundError(workflow_id)

    def follow(self, workflow_id: str, after_seq: int, types, idle_seconds=None) -> "ScriptedFollower":
        self.follows.append((workflow_id, after_seq, types))
        return ScriptedFollower(self, after_seq, types)


class ScriptedFollower:
    """An EventFollower that plays its engine's script until it ends or is stopped."""

    def __init__(self, engine: FakeEngine, after_seq: int, types) -> None:
        self._engine = engine
        self._after_seq = after_seq
        self._types = types
        self._task: asyncio.Task | None = None

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def events(self):
        script = self._engine.script(self._after_seq, self._types)
        try:
            while True:
                self._task = asyncio.ensure_future(anext(script))
                try:
                    item = await self._task
                except (StopAsyncIteration, asyncio.CancelledError):
                    return
                yield item
        finally:
            await script.aclose()
            self._engine.closed.set()


async def _replay(events, after_seq, types):
    for item in events:
        if item.seq > after_seq and (types is None or item.type in types):
            yield item


def cutoffs(metrics: StreamMetrics, reason: str) -> float:
    return metrics.registry.get_sample_value("taskgate_admin_stream_cutoffs_total", {"reason": reason})


def open_ws(metrics: StreamMetrics) -> float:
    return metrics.registry.get_sample_value("taskgate_admin_open_streams", {"transport": "ws"})


def admin_app(engine: FakeEngine, metrics: StreamMetrics, write_timeout: float = 5.0):
    return create_admin_app(engine, TOKEN, metrics, ping_seconds=10.0, write_timeout_seconds=write_timeout)


async def wait_for_no_open_stream(metrics: StreamMetrics) -> None:
    for _ in range(500):
        if open_ws(metrics) == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the WebSocket stream is still counted as open")


async def receive_until_closed(ws) -> list[str]:
    messages = []
    try:
        while True:
            messages.append(await ws.receive_text())
    except falcon.WebSocketDisconnected:
        return messages


def test_the_ws_message_is_the_sse_data_and_the_event_json_for_the_end():
    for item in EVENTS[:-1]:
        data_line = item.sse_frame().decode().split("\n")[2]
        assert data_line == "data: " + item.ws_message()
    assert json.loads(EVENTS[-1].ws_message()) == EVENTS[-1].to_dict()
    assert json.loads(EVENTS[1].ws_message())["delta"] == "Hi"
    assert EVENTS[2].ws_message() is EVENTS[2].ws_message()


def test_the_overflow_message_is_the_sse_overflow_data():
    assert overflow_frame(12).decode().split("\n")[2] == "data: " + overflow_data(12)


def test_events_arrive_as_text_messages_then_a_close_1000():
    async def scenario():
        engine, metrics = FakeEngine(), StreamMetrics(lambda: 0)
        async with falcon.testing.ASGIConductor(admin_app(engine, metrics)) as conductor:
            async with conductor.simulate_ws(
                "/stream/ws",
                query_string="workflow_id=wf-1&types=LLM_PARTIAL,STREAM_END",
                headers={**OWNER, "Last-Event-ID": "1"},
            ) as ws:
                messages = await receive_until_closed(ws)
            await wait_for_no_open_stream(metrics)
        return messages, ws.close_code, engine.follows

    messages, close_code, follows = asyncio.run(scenario())
    assert messages == [EVENTS[1].ws_message(), EVENTS[3].ws_message()]
    assert close_code == 1000
    assert follows == [("wf-1", 1, ["LLM_PARTIAL", "STREAM_END"])]


def test_a_watcher_that_fell_behind_gets_the_overflow_json_and_1013():
    async def overflowing(after_seq, types):
        yield EVENTS[0]
        raise StreamOverflowError("wf-1", 1)

    async def scenario():
        engine, metrics = FakeEngine(overflowing), StreamMetrics(lambda: 0)
        app = admin_app(engine, metrics)
        async with falcon.testing.ASGIConductor(app) as conductor:
            async with conductor.simulate_ws(
                "/stream/ws", query_string="workflow_id=wf-1", headers=OWNER
            ) as ws:
                messages = await receive_until_closed(ws)
            await wait_for_no_open_stream(metrics)
        return messages, ws.close_code, cutoffs(metrics, "fell_behind")

    messages, close_code, fell_behind = asyncio.run(scenario())
    assert messages == [EVENTS[0].ws_message(), overflow_data(1)]
    assert close_code == 1013
    assert fell_behind == 1


def test_a_client_that_leaves_ends_the_follow_at_once():
    async def endless(after_seq, types):
        yield EVENTS[0]
        await asyncio.Event().wait()

    async def scenario():
        engine, metrics = FakeEngine(endless), StreamMetrics(lambda: 0)
        async with falcon.testing.ASGIConductor(admin_app(engine, metrics)) as conductor:
            async with conductor.simulate_ws(
                "/stream/ws", query_string="workflow_id=wf-1", headers=OWNER
            ) as ws:
                first = await ws.receive_text()
                opened = open_ws(metrics)
                await ws.close()
            await asyncio.wait_for(engine.closed.wait(), timeout=5)
            await wait_for_no_open_stream(metrics)
        return first, opened

    first, opened = asyncio.run(scenario())
    assert first == EVENTS[0].ws_message()
    assert opened == 1


@pytest.mark.parametrize(
    ("query", "headers", "code"),
    [
        ("workflow_id=wf-1", {}, 3401),
        ("workflow_id=wf-1", {"x-taskgate-service-token": TOKEN}, 3401),
        ("workflow_id=wf-1", {**OWNER, "x-taskgate-user-id": "u-2"}, 3404),
        ("workflow_id=nope", OWNER, 3404),
        ("workflow_id=wf-1&last_event_id=x", OWNER, 3400),
        ("", OWNER, 3400),
    ],
)
def test_without_the_http_response_extension_a_refusal_is_a_close_before_accepting(query, headers, code):
    async def scenario():
        engine = FakeEngine()
        async with falcon.testing.ASGIConductor(admin_app(engine, StreamMetrics(lambda: 0))) as conductor:
            with pytest.raises(falcon.WebSocketDisconnected) as raised:
                async with conductor.simulate_ws("/stream/ws", query_string=query, headers=headers):
                    pass
            return raised.value.code, engine.follows

    close_code, follows = asyncio.run(scenario())
    assert close_code == code
    assert follows == []


async def call_ws(app, path: str, query: bytes, headers: dict) -> list[dict]:
    """Run one WebSocket connection through the ASGI app as a server with the HTTP response extension."""
    sent: list[dict] = []
    incoming = asyncio.Queue()
    incoming.put_nowait({"type": "websocket.connect"})
    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [(name.lower().encode(), value.encode()) for name, value in headers.items()],
        "subprotocols": [],
        "extensions": {"websocket.http.response": {}},
    }

    async def send(message: dict) -> None:
        sent.append(message)
        if message["type"] in ("websocket.close", "websocket.http.response.body"):
            incoming.put_nowait({"type": "websocket.disconnect", "code": 1000})

    await app(scope, incoming.get, send)
    return sent


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({}, 401, {"error": "Service token required", "code": "unauthorized"}),
        ({**OWNER, "x-taskgate-user-id": "u-2"}, 404, {"error": "Workflow not found", "code": "not_found"}),
    ],
)
def test_with_the_extension_a_refusal_is_an_http_error_with_the_json_body(headers, status, body):
    sent = asyncio.run(
        call_ws(admin_app(FakeEngine(), StreamMetrics(lambda: 0)), "/stream/ws", b"workflow_id=wf-1", headers)
    )

    assert [message["type"] for message in sent] == [
        "websocket.http.response.start",
        "websocket.http.response.body",
    ]
    assert sent[0]["status"] == status
    assert (b"content-type", b"application/json") in sent[0]["headers"]
    assert json.loads(sent[1]["body"]) == body


def test_a_send_that_stalls_cuts_the_client_off_and_drops_what_follows():
    metrics = StreamMetrics(lambda: 0)
    sent: list[dict] = []
    blocked = asyncio.Event()

    async def send(message: dict) -> None:
        if message["type"] == "websocket.send":
            await blocked.wait()
        sent.append(message)

    async def app(scope, receive, guarded_send):
        assert scope[SEND_SCOPE_KEY] is guarded_send
        await guarded_send({"type": "websocket.accept"})
        with pytest.raises(WebSocketStalledError):
            await guarded_send({"type": "websocket.send", "text": "x"})
        await guarded_send({"type": "websocket.close", "code": 1000})

    asyncio.run(WebSocketConnections(app, metrics, 0.05)({"type": "websocket"}, None, send))

    assert sent == [{"type": "websocket.accept"}]
    assert cutoffs(metrics, "write_stalled") == 1


def test_http_requests_pass_through_the_websocket_wrapper_untouched():
    seen = []

    async def app(scope, receive, send):
        seen.append((scope, send))

    async def send(message):
        pass

    scope = {"type": "http"}
    asyncio.run(WebSocketConnections(app, StreamMetrics(lambda: 0), 1.0)(scope, None, send))
    assert seen == [(scope, send)]
