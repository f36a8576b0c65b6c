"""A session as one JSON document, written piece by piece: the session, its tasks oldest first, their events.

The document uses the API's own shapes and time format, so a client can read an export with the
code it already has for the session, task and event JSON. ``LLM_PARTIAL`` events are left out:
their deltas concatenate to the ``LLM_OUTPUT`` event that follows them.

An export is bounded (``ExportLimits``) and streamed: ``ExportDocument`` receives the document's
pieces, counts their bytes and hands them on in chunks of about ``CHUNK_BYTES``, so what it holds
does not grow with the session. A piece that would take the document past its byte or event bound
is not written: the document is closed where it stands and its last member is ``"complete":
false``; a whole document ends with ``"complete": true``.
"""

import dataclasses
import datetime
from typing import Any

from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.tasks import TaskRecord
from orchestrator.events import Event
from orchestrator.events import compact_json
from taskgate.rfc3339 import format_datetime

EXPORT_FORMAT = "taskgate.session.v1"
#: The default bounds of one export (docs/api.md): its size in bytes and its number of events.
MAX_EXPORT_BYTES = 32 * 1024 * 1024
MAX_EXPORT_EVENTS = 50_000
#: About how much of the document is handed on at a time (one gRPC message, one HTTP chunk).
CHUNK_BYTES = 64 * 1024


@dataclasses.dataclass(frozen=True)
class ExportLimits:
    """The bounds of one export: at most ``max_bytes`` of JSON holding at most ``max_events`` events."""

    max_bytes: int = MAX_EXPORT_BYTES
    max_events: int = MAX_EXPORT_EVENTS


def document_head(summary: SessionSummary, active: bool, now: datetime.datetime) -> str:
    """Return the document up to its tasks: the format, the export time, the session, ``"tasks":[``."""
    head = compact_json(
        {"format": EXPORT_FORMAT, "exported_at": format_datetime(now), "session": _session(summary, active)}
    )
    return head[:-1] + ',"tasks":['


def task_head(task: TaskRecord, first: bool) -> str:
    """Return a task's object up to its events: its members, then ``"events":[``."""
    return ("" if first else ",") + compact_json(_task(task))[:-1] + ',"events":['


def event_piece(event: Event, first: bool) -> str:
    """Return an event's object as an element of its task's events."""
    return ("" if first else ",") + compact_json(event.to_dict())


TASK_END = "]}"


def document_end(complete: bool) -> str:
    """Return what ends the document once the tasks array is done: whether it holds the whole session."""
    return f'],"complete":{"true" if complete else "false"}}}'


# What closing a document cut short takes: its task's events and object, the tasks array, the end.
_CLOSING_ROOM = len(TASK_END + document_end(False))


class ExportDocument:
    """The document being written: counts its bytes and events, and hands it on in chunks.

    ``fits`` says whether a piece may be written with room left to close the document;
    ``complete`` turns False once a piece did not fit and the document is being closed early.
    """

    def __init__(self, limits: ExportLimits) -> None:
        self._limits = limits
        self.complete = True
        self._pieces: list[str] = []
        self._buffered = 0
        self.written_bytes = 0
        self.events = 0

    def fits(self, piece: str, events: int = 0) -> bool:
        """Whether the piece (holding ``events`` events) keeps the document within its bounds."""
        if self.events + events > self._limits.max_events:
            return False
        size = len(piece.encode("utf-8"))
        return self.written_bytes + size + _CLOSING_ROOM <= self._limits.max_bytes

    def write(self, piece: str, events: int = 0) -> None:
        """Add a piece to the document."""
        size = len(piece.encode("utf-8"))
        self._pieces.append(piece)
        self._buffered += size
        self.written_bytes += size
        self.events += events

    def ready_chunk(self) -> str | None:
        """Return (and forget) what is buffered once it reaches ``CHUNK_BYTES``; None until then."""
        if self._buffered < CHUNK_BYTES:
            return None
        return self.rest()

    def rest(self) -> str:
        """Return (and forget) everything buffered."""
        chunk = "".join(self._pieces)
        self._pieces.clear()
        self._buffered = 0
        return chunk


def _time(value: datetime.datetime | None) -> str | None:
    return format_datetime(value) if value is not None else None


def _session(summary: SessionSummary, active: bool) -> dict[str, Any]:
    session = summary.session
    return {
        "session_id": session.id,
        "user_id": session.user_id,
        "title": session.title,
        "context": session.context,
        "token_budget": session.token_budget,
        "tokens_used": session.tokens_used,
        "cost_usd": session.cost_usd,
        "task_count": session.task_count,
        "successful_tasks": summary.successful_tasks,
        "failed_tasks": summary.failed_tasks,
        "is_active": active,
        "created_at": _time(session.created_at),
        "updated_at": _time(session.updated_at),
        "last_activity_at": _time(session.last_activity_at),
        "expires_at": None,
    }


def _task(task: TaskRecord) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "workflow_id": task.workflow_id,
        "query": task.query,
        "status": task.status.value,
        "result": task.result or None,
        "error_message": task.error or None,
        "mode": task.mode,
        "context": task.context,
        "model_used": task.model_used or None,
        "provider": task.provider or None,
        "usage": {
            "total_tokens": task.usage.total_tokens,
            "prompt_tokens": task.usage.prompt_tokens,
            "completion_tokens": task.usage.completion_tokens,
            "cost_usd": task.usage.cost_usd,
        },
        "created_at": _time(task.created_at),
        "started_at": _time(task.started_at),
        "completed_at": _time(task.completed_at),
    }
