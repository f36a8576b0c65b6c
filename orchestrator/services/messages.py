"""Converting the store's records and events to their protobuf messages."""

import datetime
from typing import Any

from google.protobuf import timestamp_pb2

from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.errors import InvalidArgumentError
from orchestrator.events import Event
from orchestrator.events import compact_json
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.task_statuses import status_name
from taskgate.task_statuses import status_value

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)


def timestamp(value: datetime.datetime | None) -> timestamp_pb2.Timestamp | None:
    """Return a protobuf Timestamp, or None (the field stays unset) for None; a naive time is UTC.

    Built from its seconds and nanos at once: ``Timestamp.FromDatetime`` takes three times as long,
    and a task carries four of them.
    """
    if value is None:
        return None
    since = (value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)) - _EPOCH
    return timestamp_pb2.Timestamp(
        seconds=since.days * 86_400 + since.seconds, nanos=since.microseconds * 1000
    )


def status_to_proto(status: TaskStatus) -> int:
    """Return the protobuf enum value of a task status."""
    return status_value(status.value)


def status_from_proto(value: int) -> TaskStatus | None:
    """Return the task status of a protobuf enum value; None for UNSPECIFIED."""
    try:
        name = status_name(value)
    except ValueError:
        raise InvalidArgumentError("status", "status must be one of the task statuses") from None
    return None if name is None else TaskStatus(name)


def usage_to_proto(usage: TokenUsage) -> common_pb2.TokenUsage:
    """Return the TokenUsage message of tokens and money consumed."""
    return common_pb2.TokenUsage(
        total_tokens=usage.total_tokens,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost_usd=usage.cost_usd,
    )


def task_run_fields(task: TaskRecord) -> dict[str, Any]:
    """Return how a task went as the fields SessionTask and ScheduleRun share; its duration once it ended."""
    duration_ms = 0
    if task.started_at is not None and task.completed_at is not None:
        duration_ms = max(0, round((task.completed_at - task.started_at).total_seconds() * 1000))
    return {
        "workflow_id": task.workflow_id,
        "query": task.query,
        "status": task.status.value,
        "result": task.result,
        "error_message": task.error,
        "total_tokens": task.usage.total_tokens,
        "total_cost_usd": task.usage.cost_usd,
        "duration_ms": duration_ms,
        "started_at": timestamp(task.started_at),
        "completed_at": timestamp(task.completed_at),
    }


def task_to_proto(task: TaskRecord) -> tasks_pb2.Task:
    """Return the Task message of a stored task."""
    return tasks_pb2.Task(
        task_id=task.task_id,
        workflow_id=task.workflow_id,
        session_id=task.session_id,
        user_id=task.user_id,
        tenant_id=task.tenant_id,
        query=task.query,
        status=status_to_proto(task.status),
        progress=task.progress,
        result=task.result,
        error=task.error,
        mode=task.mode,
        context_json=compact_json(task.context),
        model_used=task.model_used,
        provider=task.provider,
        usage=usage_to_proto(task.usage),
        created_at=timestamp(task.created_at),
        updated_at=timestamp(task.updated_at),
        started_at=timestamp(task.started_at),
        completed_at=timestamp(task.completed_at),
    )


def event_to_proto(event: Event) -> events_pb2.Event:
    """Return the Event message of an event."""
    return events_pb2.Event(
        workflow_id=event.workflow_id,
        type=event.type,
        agent_id=event.agent_id,
        message=event.message,
        payload_json=event.payload_json,
        timestamp=timestamp(event.timestamp),
        seq=event.seq,
        stream_id=event.stream_id,
    )
