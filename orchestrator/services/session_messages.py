"""Converting sessions, their turns, search hits and usage stats to their protobuf messages."""

import datetime

from orchestrator.domain.sessions import SearchHit
from orchestrator.domain.sessions import SessionSummary
from orchestrator.domain.sessions import UsageStats
from orchestrator.domain.tasks import TaskRecord
from orchestrator.engine.sessions import Turn
from orchestrator.engine.sessions import is_active
from orchestrator.events import compact_json
from orchestrator.services.messages import event_to_proto
from orchestrator.services.messages import task_run_fields
from orchestrator.services.messages import timestamp
from orchestrator.services.messages import usage_to_proto
from taskgate.orchestrator.v1 import sessions_pb2


def session_to_proto(summary: SessionSummary, now: datetime.datetime) -> sessions_pb2.Session:
    """Return the Session message of a session and its aggregates (token_budget 0: no budget)."""
    session = summary.session
    return sessions_pb2.Session(
        session_id=session.id,
        user_id=session.user_id,
        title=session.title,
        context_json=compact_json(session.context),
        token_budget=session.token_budget or 0,
        tokens_used=session.tokens_used,
        cost_usd=session.cost_usd,
        task_count=session.task_count,
        successful_tasks=summary.successful_tasks,
        failed_tasks=summary.failed_tasks,
        latest_task_query=summary.latest_task_query,
        latest_task_status=summary.latest_task_status.value if summary.latest_task_status else "",
        is_active=is_active(summary, now),
        created_at=timestamp(session.created_at),
        updated_at=timestamp(session.updated_at),
        last_activity_at=timestamp(session.last_activity_at),
    )


def session_task_to_proto(task: TaskRecord) -> sessions_pb2.SessionTask:
    """Return the SessionTask message of a task; its duration is known once it has ended."""
    return sessions_pb2.SessionTask(task_id=task.task_id, **task_run_fields(task))


def turn_to_proto(turn: Turn, include_payload: bool) -> sessions_pb2.SessionTurn:
    """Return the SessionTurn message of a turn; event payloads only when asked for."""
    events = []
    for event in turn.events:
        message = event_to_proto(event)
        if not include_payload:
            message.ClearField("payload_json")
        events.append(message)
    return sessions_pb2.SessionTurn(
        turn=turn.number,
        task_id=turn.task.task_id,
        user_query=turn.task.query,
        final_output=turn.task.result,
        timestamp=timestamp(turn.task.created_at),
        events=events,
        tokens_used=turn.task.usage.total_tokens,
        execution_time_ms=turn.execution_time_ms,
        agents_involved=turn.agents_involved,
    )


def search_hit_to_proto(hit: SearchHit) -> sessions_pb2.SearchHit:
    """Return the SearchHit message of a hit."""
    return sessions_pb2.SearchHit(
        task_id=hit.task_id,
        session_id=hit.session_id,
        snippet=hit.snippet,
        created_at=timestamp(hit.created_at),
    )


def stats_to_proto(days: int, stats: UsageStats) -> sessions_pb2.GetStatsResponse:
    """Return the GetStats answer of a window and the usage over it."""
    return sessions_pb2.GetStatsResponse(
        window_days=days,
        tasks_total=sum(stats.tasks_by_status.values()),
        tasks_by_status={status.value: count for status, count in stats.tasks_by_status.items()},
        sessions_total=stats.sessions_total,
        sessions_active=stats.sessions_active,
        usage=usage_to_proto(stats.usage),
        by_day=[
            sessions_pb2.DayUsage(date=day.date, tasks=day.tasks, usage=usage_to_proto(day.usage))
            for day in stats.by_day
        ],
    )
