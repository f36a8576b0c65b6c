"""A session as one JSON document: the session, its tasks oldest first, and each task's events.

The document uses the API's own shapes and time format, so a client can read an export with the
code it already has for the session, task and event JSON. ``LLM_PARTIAL`` events are left out:
their deltas concatenate to the ``LLM_OUTPUT`` event that follows them.
"""

import datetime
from collections.abc import Mapping
from typing import Any

from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.tasks import TaskRecord
from orchestrator.errors import SessionTooLargeError
from orchestrator.events import Event
from orchestrator.events import compact_json
from taskgate.rfc3339 import format_datetime

EXPORT_FORMAT = "taskgate.session.v1"
# Under the gateway's 64 MiB gRPC receive limit, with room to spare.
MAX_EXPORT_BYTES = 32 * 1024 * 1024


def export_document(
    summary: SessionSummary,
    active: bool,
    tasks: list[TaskRecord],
    events: Mapping[str, list[Event]],
    now: datetime.datetime,
) -> str:
    """Return the export as JSON text; raise SessionTooLargeError past ``MAX_EXPORT_BYTES``."""
    document = {
        "format": EXPORT_FORMAT,
        "exported_at": format_datetime(now),
        "session": _session(summary, active),
        "tasks": [_task(task, events.get(task.task_id, [])) for task in tasks],
    }
    text = compact_json(document)
    if len(text.encode("utf-8")) > MAX_EXPORT_BYTES:
        raise SessionTooLargeError()
    return text


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


def _task(task: TaskRecord, events: list[Event]) -> dict[str, Any]:
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
        "events": [event.to_dict() for event in events],
    }
