"""Protobuf messages to the JSON shapes of API.md."""

import datetime
import json
from typing import Any

from google.protobuf import timestamp_pb2

from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.rfc3339 import format_datetime
from taskgate.task_statuses import status_name

_EPOCH = datetime.datetime(1970, 1, 1)


def timestamp(message: Any, field: str) -> str | None:
    """Return a Timestamp field of a message as RFC 3339, or None when it is unset.

    The time is the epoch plus the field's seconds and whole microseconds, as ``ToDatetime`` makes
    it, without that method's general path (a third of a task's serialization when it was used).
    """
    if not message.HasField(field):
        return None
    value: timestamp_pb2.Timestamp = getattr(message, field)
    since_epoch = datetime.timedelta(seconds=value.seconds, microseconds=value.nanos // 1000)
    return format_datetime(_EPOCH + since_epoch)


def task_summary(task: tasks_pb2.Task) -> dict[str, Any]:
    """Return a task as an item of ``GET /api/v1/tasks``."""
    return {
        "task_id": task.task_id,
        "query": task.query,
        "status": status_name(task.status),
        "mode": task.mode or None,
        "created_at": timestamp(task, "created_at"),
        "completed_at": timestamp(task, "completed_at"),
        "total_token_usage": {
            "total_tokens": task.usage.total_tokens,
            "prompt_tokens": task.usage.prompt_tokens,
            "completion_tokens": task.usage.completion_tokens,
            "cost_usd": task.usage.cost_usd,
        },
    }


def task_detail(task: tasks_pb2.Task) -> dict[str, Any]:
    """Return a task as ``GET /api/v1/tasks/{id}`` shows it."""
    return {
        "task_id": task.task_id,
        "workflow_id": task.workflow_id,
        "session_id": task.session_id or None,
        "query": task.query,
        "status": status_name(task.status),
        "progress": task.progress,
        "result": task.result or None,
        "response": _response(task.result),
        "error": task.error or None,
        "mode": task.mode or None,
        "context": _json_or_none(task.context_json),
        "model_used": task.model_used or None,
        "provider": task.provider or None,
        "usage": {
            "total_tokens": task.usage.total_tokens,
            "input_tokens": task.usage.prompt_tokens,
            "output_tokens": task.usage.completion_tokens,
            "estimated_cost": task.usage.cost_usd,
        },
        "pending_approval": _pending_approval(task),
        "created_at": timestamp(task, "created_at"),
        "updated_at": timestamp(task, "updated_at"),
        "started_at": timestamp(task, "started_at"),
        "completed_at": timestamp(task, "completed_at"),
    }


def submitted_task(response: tasks_pb2.SubmitTaskResponse) -> dict[str, Any]:
    """Return the body of a successful ``POST /api/v1/tasks``."""
    task = response.task
    return {
        "task_id": task.task_id,
        "workflow_id": task.workflow_id,
        "session_id": task.session_id,
        "status": status_name(task.status),
        "message": response.message or "Task submitted",
        "created_at": timestamp(task, "created_at"),
    }


def task_run(message: sessions_pb2.SessionTask | schedules_pb2.ScheduleRun) -> dict[str, Any]:
    """Return how a task went, the fields a session's history and a schedule's runs both show."""
    return {
        "workflow_id": message.workflow_id,
        "query": message.query,
        "status": message.status,
        "result": message.result or None,
        "error_message": message.error_message or None,
        "total_tokens": message.total_tokens,
        "total_cost_usd": message.total_cost_usd,
        "duration_ms": message.duration_ms,
        "started_at": timestamp(message, "started_at"),
        "completed_at": timestamp(message, "completed_at"),
    }


def json_object(text: str) -> dict[str, Any]:
    """Return a stored JSON object, such as a context; {} when it is empty or not an object."""
    value = _json_or_none(text)
    return value if isinstance(value, dict) else {}


def event(message: events_pb2.Event) -> dict[str, Any]:
    """Return an event in the event JSON of docs/internals.md."""
    payload = _json_or_none(message.payload_json)
    return {
        "workflow_id": message.workflow_id,
        "type": message.type,
        "agent_id": message.agent_id,
        "message": message.message,
        "payload": payload if payload is not None else {},
        "timestamp": timestamp(message, "timestamp"),
        "seq": message.seq,
        "stream_id": message.stream_id,
    }


# Task control and timeline.


def control_state(message: tasks_pb2.GetControlStateResponse) -> dict[str, Any]:
    """Return a task's control state as ``GET /api/v1/tasks/{id}/control-state`` shows it (unset: null)."""
    return {
        "is_paused": message.is_paused,
        "is_cancelled": message.is_cancelled,
        "paused_at": timestamp(message, "paused_at"),
        "pause_reason": message.pause_reason or None,
        "paused_by": message.paused_by or None,
        "cancel_reason": message.cancel_reason or None,
        "cancelled_by": message.cancelled_by or None,
    }


def timeline(message: events_pb2.GetTimelineResponse) -> dict[str, Any]:
    """Return a task's timeline as ``GET /api/v1/tasks/{id}/timeline`` shows it."""
    return {
        "workflow_id": message.workflow_id,
        "events": [
            {
                "seq": entry.seq,
                "type": entry.type,
                "agent_id": entry.agent_id,
                "message": entry.message,
                "timestamp": timestamp(entry, "timestamp"),
            }
            for entry in message.events
        ],
        "stats": {
            "duration_ms": message.stats.duration_ms,
            "event_count": message.stats.event_count,
            "by_type": dict(sorted(message.stats.by_type.items())),
        },
    }


def _pending_approval(task: tasks_pb2.Task) -> dict[str, Any] | None:
    if not task.HasField("pending_approval"):
        return None
    approval = task.pending_approval
    proposed_action = _json_or_none(approval.proposed_action_json)
    if proposed_action is None:
        proposed_action = approval.proposed_action_json or None
    return {
        "approval_id": approval.approval_id,
        "proposed_action": proposed_action,
        "reason": approval.reason,
        "requested_at": timestamp(approval, "requested_at"),
    }


def _response(result: str) -> Any:
    """Return the result parsed when it is a JSON object, else the text itself (None when empty)."""
    if not result:
        return None
    parsed = _json_or_none(result)
    return parsed if isinstance(parsed, dict) else result


def _json_or_none(text: str) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None
