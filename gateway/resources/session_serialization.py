"""Session, turn, search and stats messages to the JSON shapes of API.md."""

from typing import Any

from gateway.resources.serialization import event
from gateway.resources.serialization import json_object
from gateway.resources.serialization import task_run
from gateway.resources.serialization import timestamp
from taskgate.orchestrator.v1 import sessions_pb2


def session_summary(session: sessions_pb2.Session) -> dict[str, Any]:
    """Return a session as an item of ``GET /api/v1/sessions``."""
    return {
        "session_id": session.session_id,
        "user_id": session.user_id,
        "title": session.title,
        "task_count": session.task_count,
        "tokens_used": session.tokens_used,
        "token_budget": session.token_budget or None,
        "created_at": timestamp(session, "created_at"),
        "updated_at": timestamp(session, "updated_at"),
        "last_activity_at": timestamp(session, "last_activity_at"),
        "is_active": session.is_active,
        "successful_tasks": session.successful_tasks,
        "failed_tasks": session.failed_tasks,
        "total_cost_usd": session.cost_usd,
        "latest_task_query": session.latest_task_query or None,
        "latest_task_status": session.latest_task_status or None,
    }


def session_detail(session: sessions_pb2.Session) -> dict[str, Any]:
    """Return a session as ``GET /api/v1/sessions/{id}`` shows it: the list item's fields and more."""
    return {
        **session_summary(session),
        "context": json_object(session.context_json),
        "cost_usd": session.cost_usd,
        "expires_at": timestamp(session, "expires_at"),
    }


def session_task(task: sessions_pb2.SessionTask) -> dict[str, Any]:
    """Return a task as an item of ``GET /api/v1/sessions/{id}/history`` (duration null until it ends)."""
    duration_ms = task.duration_ms if task.HasField("completed_at") else None
    return {"task_id": task.task_id, **task_run(task), "duration_ms": duration_ms}


def turn(message: sessions_pb2.SessionTurn, include_payload: bool) -> dict[str, Any]:
    """Return a turn of ``GET /api/v1/sessions/{id}/events``; events carry a payload only when asked."""
    events = []
    for item in message.events:
        shown = event(item)
        if not include_payload:
            del shown["payload"]
        events.append(shown)
    return {
        "turn": message.turn,
        "task_id": message.task_id,
        "user_query": message.user_query,
        "final_output": message.final_output,
        "timestamp": timestamp(message, "timestamp"),
        "events": events,
        "metadata": {
            "tokens_used": message.tokens_used,
            "execution_time_ms": message.execution_time_ms,
            "agents_involved": list(message.agents_involved),
        },
    }


def search_hit(hit: sessions_pb2.SearchHit) -> dict[str, Any]:
    """Return a hit of ``GET /api/v1/search``."""
    return {
        "task_id": hit.task_id,
        "session_id": hit.session_id,
        "snippet": hit.snippet,
        "created_at": timestamp(hit, "created_at"),
    }


def stats(response: sessions_pb2.GetStatsResponse) -> dict[str, Any]:
    """Return the body of ``GET /api/v1/stats``."""
    return {
        "window_days": response.window_days,
        "tasks": {"total": response.tasks_total, "by_status": dict(sorted(response.tasks_by_status.items()))},
        "sessions": {"total": response.sessions_total, "active": response.sessions_active},
        "tokens": {
            "total": response.usage.total_tokens,
            "prompt": response.usage.prompt_tokens,
            "completion": response.usage.completion_tokens,
        },
        "cost_usd": response.usage.cost_usd,
        "by_day": [
            {
                "date": day.date,
                "tasks": day.tasks,
                "tokens": day.usage.total_tokens,
                "cost_usd": day.usage.cost_usd,
            }
            for day in response.by_day
        ],
    }
