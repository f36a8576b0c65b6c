"""The workflow event value and its wire forms (Event JSON, SSE frame, WebSocket text), each computed once."""

import dataclasses
import datetime
import functools
import json
from collections.abc import Mapping
from typing import Any

from taskgate.rfc3339 import format_datetime
from taskgate.rfc3339 import utc_now

WORKFLOW_STARTED = "WORKFLOW_STARTED"
AGENT_STARTED = "AGENT_STARTED"
AGENT_THINKING = "AGENT_THINKING"
LLM_PARTIAL = "LLM_PARTIAL"
LLM_OUTPUT = "LLM_OUTPUT"
AGENT_COMPLETED = "AGENT_COMPLETED"
WORKFLOW_COMPLETED = "WORKFLOW_COMPLETED"
WORKFLOW_FAILED = "WORKFLOW_FAILED"
ERROR_OCCURRED = "ERROR_OCCURRED"
STREAM_END = "STREAM_END"
# Task control: the owner paused, resumed or cancelled the task, or it ran past its timeout.
WORKFLOW_PAUSED = "WORKFLOW_PAUSED"
WORKFLOW_RESUMED = "WORKFLOW_RESUMED"
WORKFLOW_CANCELLED = "WORKFLOW_CANCELLED"
WORKFLOW_TIMEOUT = "WORKFLOW_TIMEOUT"

# SSE event names that differ from the event type (docs/internals.md, "Event JSON").
SSE_NAMES = {
    LLM_PARTIAL: "thread.message.delta",
    LLM_OUTPUT: "thread.message.completed",
    ERROR_OCCURRED: "error",
    STREAM_END: "done",
    WORKFLOW_PAUSED: "workflow.paused",
    WORKFLOW_RESUMED: "workflow.resumed",
    WORKFLOW_CANCELLED: "workflow.cancelled",
}


def sse_name(event_type: str) -> str:
    """Return the SSE ``event:`` name of an event type."""
    return SSE_NAMES.get(event_type, event_type)


def compact_json(value: Any) -> str:
    """Serialise to JSON on one line without spaces, keeping non-ASCII text as is."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class Event:
    """One thing that happened in a workflow; ``seq`` is gap-free from 1 per workflow.

    Events are immutable and shared by every watcher, so their serialised forms are cached on
    first use: a thousand watchers of one workflow cost one serialisation per event.
    """

    workflow_id: str
    seq: int
    type: str
    message: str = ""
    payload: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    agent_id: str = ""
    timestamp: datetime.datetime = dataclasses.field(default_factory=utc_now)

    @property
    def stream_id(self) -> str:
        """The id a stream resumes from: the seq as text."""
        return str(self.seq)

    def to_dict(self) -> dict[str, Any]:
        """Return the Event JSON object of docs/internals.md."""
        return {
            "workflow_id": self.workflow_id,
            "type": self.type,
            "agent_id": self.agent_id,
            "message": self.message,
            "payload": dict(self.payload),
            "timestamp": format_datetime(self.timestamp),
            "seq": self.seq,
            "stream_id": self.stream_id,
        }

    @functools.cached_property
    def payload_json(self) -> str:
        """The payload as JSON text (what the store and the gRPC ``payload_json`` field carry)."""
        return compact_json(dict(self.payload))

    def sse_frame(self) -> bytes:
        """Return the complete SSE frame: ``id``, ``event`` and ``data`` lines and the blank line."""
        return self._sse_frame

    def ws_message(self) -> str:
        """Return the WebSocket text message: the SSE frame's data JSON (the Event JSON for STREAM_END)."""
        return self._data_json

    @functools.cached_property
    def _data_json(self) -> str:
        body = self.to_dict()
        if self.type == LLM_PARTIAL:
            body["delta"] = self.payload.get("delta", self.message)
        elif self.type == LLM_OUTPUT:
            body["response"] = self.payload.get("response", self.message)
        return compact_json(body)

    @functools.cached_property
    def _sse_frame(self) -> bytes:
        name = sse_name(self.type)
        data = "[DONE]" if self.type == STREAM_END else self._data_json
        return f"id: {self.seq}\nevent: {name}\ndata: {data}\n\n".encode()


def overflow_data(last_seq: int) -> str:
    """Return the JSON a watcher that fell too far behind gets last (SSE ``data:``, WebSocket message)."""
    return compact_json(
        {
            "error": f"Stream fell behind; reconnect with Last-Event-ID: {last_seq} to resume",
            "code": "stream_overflow",
            "last_event_id": last_seq,
        }
    )


def overflow_frame(last_seq: int) -> bytes:
    """Return the final ``error`` frame sent to a watcher that fell too far behind."""
    data = overflow_data(last_seq)
    id_line = f"id: {last_seq}\n" if last_seq > 0 else ""
    return f"{id_line}event: error\ndata: {data}\n\n".encode()
