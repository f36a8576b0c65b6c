"""Event JSON and SSE frames: the name mapping, the added fields, and one serialisation per event."""

import datetime
import json

import pytest

from orchestrator.events import Event
from orchestrator.events import overflow_frame
from orchestrator.events import sse_name

WHEN = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)


def event(event_type: str, **fields) -> Event:
    values = {"workflow_id": "task-1", "seq": 7, "type": event_type, "timestamp": WHEN, **fields}
    return Event(**values)


def parse_frame(frame: bytes) -> tuple[dict[str, str], str]:
    assert frame.endswith(b"\n\n")
    lines = frame.decode().removesuffix("\n\n").split("\n")
    fields = dict(line.split(": ", 1) for line in lines)
    return fields, fields["data"]


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("LLM_PARTIAL", "thread.message.delta"),
        ("LLM_OUTPUT", "thread.message.completed"),
        ("ERROR_OCCURRED", "error"),
        ("STREAM_END", "done"),
        ("WORKFLOW_PAUSED", "workflow.paused"),
        ("WORKFLOW_RESUMED", "workflow.resumed"),
        ("WORKFLOW_CANCELLED", "workflow.cancelled"),
        ("WORKFLOW_STARTED", "WORKFLOW_STARTED"),
        ("AGENT_THINKING", "AGENT_THINKING"),
    ],
)
def test_sse_names_follow_the_mapping(event_type, name):
    assert sse_name(event_type) == name
    fields, _ = parse_frame(event(event_type).sse_frame())
    assert fields["event"] == name


def test_to_dict_is_the_event_json_shape():
    body = event(
        "AGENT_STARTED", message="started", payload={"n": 1.5, "nested": {"a": [1]}}, agent_id="a1"
    ).to_dict()
    assert body == {
        "workflow_id": "task-1",
        "type": "AGENT_STARTED",
        "agent_id": "a1",
        "message": "started",
        "payload": {"n": 1.5, "nested": {"a": [1]}},
        "timestamp": "2026-01-02T03:04:05.678Z",
        "seq": 7,
        "stream_id": "7",
    }


def test_frame_lines_are_id_event_data_in_order():
    frame = event("AGENT_STARTED", message="line one\nline two").sse_frame()
    assert frame.startswith(b"id: 7\nevent: AGENT_STARTED\ndata: {")
    _, data = parse_frame(frame)
    assert json.loads(data)["message"] == "line one\nline two"


def test_delta_frame_adds_the_chunk_text():
    _, data = parse_frame(event("LLM_PARTIAL", message="Hel", payload={"delta": "Hel"}).sse_frame())
    body = json.loads(data)
    assert body["delta"] == "Hel"
    assert body["type"] == "LLM_PARTIAL"
    assert {"workflow_id", "type", "seq", "stream_id", "timestamp", "message"} <= body.keys()


def test_completed_frame_adds_the_response():
    _, data = parse_frame(event("LLM_OUTPUT", payload={"response": "Hello.", "usage": {}}).sse_frame())
    assert json.loads(data)["response"] == "Hello."


def test_done_frame_carries_the_id_and_done_marker():
    assert event("STREAM_END").sse_frame() == b"id: 7\nevent: done\ndata: [DONE]\n\n"


def test_frame_is_serialised_once_per_event():
    shared = event("AGENT_STARTED", payload={"k": "v"})
    assert shared.sse_frame() is shared.sse_frame()


def test_non_ascii_text_survives_the_frame():
    _, data = parse_frame(event("LLM_PARTIAL", payload={"delta": "é 東京 \u2028"}).sse_frame())
    assert json.loads(data)["delta"] == "é 東京 \u2028"


def test_overflow_frame_tells_the_client_where_to_resume():
    fields, data = parse_frame(overflow_frame(12))
    assert fields["id"] == "12"
    assert fields["event"] == "error"
    body = json.loads(data)
    assert body["last_event_id"] == 12
    assert "12" in body["error"]
    assert body["code"] == "stream_overflow"
