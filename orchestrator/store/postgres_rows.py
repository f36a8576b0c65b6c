"""Mapping of PostgreSQL rows (dicts) to the store's records."""

import datetime
from typing import Any

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event

Row = dict[str, Any]

# Every column of tasks but the search index's own (``search_vector``), which no record needs.
TASK_COLUMNS = (
    "task_id, user_id, tenant_id, session_id, query, status, progress, result, error, mode,"
    " context_json, options_json, model_used, provider, prompt_tokens, completion_tokens, total_tokens,"
    " cost_usd, created_at, updated_at, started_at, completed_at, claimed_by, lease_expires_at,"
    " pause_requested, paused_at, pause_reason, paused_by, cancel_requested, cancel_reason, cancelled_by,"
    " run_seconds"
)


def utc(value: datetime.datetime | None) -> datetime.datetime | None:
    """Return a timestamptz value as an aware datetime in ``datetime.UTC`` (None stays None)."""
    return value.astimezone(datetime.UTC) if value is not None else None


def user_from_row(row: Row, prefix: str = "") -> UserRecord:
    """Return the UserRecord of a row (columns optionally prefixed, as in a join)."""
    return UserRecord(
        row[f"{prefix}id"],
        row[f"{prefix}tenant_id"],
        row[f"{prefix}email"],
        row[f"{prefix}username"],
        row[f"{prefix}role"],
        row[f"{prefix}tier"],
        utc(row[f"{prefix}created_at"]),
        name=row[f"{prefix}name"],
    )


def api_key_from_row(row: Row) -> ApiKeyRecord:
    """Return the ApiKeyRecord of a row."""
    return ApiKeyRecord(
        id=row["id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        key_prefix=row["key_prefix"],
        key_hash=row["key_hash"],
        created_at=utc(row["created_at"]),
        last_used_at=utc(row["last_used_at"]),
        expires_at=utc(row["expires_at"]),
        revoked_at=utc(row["revoked_at"]),
        description=row["description"],
        scopes=tuple(row["scopes_json"]),
        rate_limit_per_minute=row["rate_limit_per_minute"],
        rate_limit_per_hour=row["rate_limit_per_hour"],
    )


def session_from_row(row: Row) -> SessionRecord:
    """Return the SessionRecord of a row."""
    return SessionRecord(
        id=row["id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        title=row["title"],
        tokens_used=row["tokens_used"],
        cost_usd=row["cost_usd"],
        task_count=row["task_count"],
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        deleted_at=utc(row["deleted_at"]),
        token_budget=row["token_budget"],
        context=row["context_json"],
        last_activity_at=utc(row["last_activity_at"]),
    )


def task_from_row(row: Row) -> TaskRecord:
    """Return the TaskRecord of a row (``json`` columns arrive decoded)."""
    return TaskRecord(
        task_id=row["task_id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        session_id=row["session_id"],
        query=row["query"],
        status=TaskStatus(row["status"]),
        progress=row["progress"],
        result=row["result"],
        error=row["error"],
        mode=row["mode"],
        context=row["context_json"],
        options=row["options_json"],
        model_used=row["model_used"],
        provider=row["provider"],
        usage=TokenUsage(row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]),
        created_at=utc(row["created_at"]),
        updated_at=utc(row["updated_at"]),
        started_at=utc(row["started_at"]),
        completed_at=utc(row["completed_at"]),
        claimed_by=row["claimed_by"],
        lease_expires_at=utc(row["lease_expires_at"]),
        control=control_state_from_row(row),
        run_seconds=row["run_seconds"],
    )


def control_state_from_row(row: Row) -> ControlState:
    """Return the ControlState of a row holding the tasks table's control columns."""
    return ControlState(
        pause_requested=row["pause_requested"],
        paused_at=utc(row["paused_at"]),
        pause_reason=row["pause_reason"],
        paused_by=row["paused_by"],
        cancel_requested=row["cancel_requested"],
        cancel_reason=row["cancel_reason"],
        cancelled_by=row["cancelled_by"],
    )


def event_from_row(row: Row) -> Event:
    """Return the Event of a row."""
    return Event(
        workflow_id=row["workflow_id"],
        seq=row["seq"],
        type=row["type"],
        message=row["message"],
        payload=row["payload_json"],
        agent_id=row["agent_id"],
        timestamp=utc(row["timestamp"]),
    )
