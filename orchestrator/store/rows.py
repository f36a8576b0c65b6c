"""Mapping of rows to the store's records, the same for both databases.

Times arrive as text from SQLite and as ``timestamptz`` from PostgreSQL, JSON as text or already
parsed: ``stored_time`` and ``json_value`` take either.
"""

import datetime
import json
from typing import Any

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event
from orchestrator.store.database import Row
from orchestrator.store.dialect import TIME_FORMAT

# Every column of tasks but the search index's own (``search_vector``), which no record needs.
TASK_COLUMNS = (
    "task_id, user_id, tenant_id, session_id, query, status, progress, result, error, mode,"
    " context_json, options_json, model_used, provider, prompt_tokens, completion_tokens, total_tokens,"
    " cost_usd, created_at, updated_at, started_at, completed_at, claimed_by, lease_expires_at,"
    " pause_requested, paused_at, pause_reason, paused_by, cancel_requested, cancel_reason, cancelled_by,"
    " run_seconds, claim_epoch"
)


def json_value(value: Any) -> Any:
    """Return the value of a JSON column: PostgreSQL's ``json`` type arrives parsed, text does not."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def stored_time(value: Any) -> datetime.datetime | None:
    """Return a stored time as an aware datetime in ``datetime.UTC`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        return datetime.datetime.strptime(value, TIME_FORMAT).replace(tzinfo=datetime.UTC)
    return value.astimezone(datetime.UTC)


def user_from_row(row: Row, prefix: str = "") -> UserRecord:
    """Return the UserRecord of a row (columns optionally prefixed, as in a join)."""
    return UserRecord(
        row[f"{prefix}id"],
        row[f"{prefix}tenant_id"],
        row[f"{prefix}email"],
        row[f"{prefix}username"],
        row[f"{prefix}role"],
        row[f"{prefix}tier"],
        stored_time(row[f"{prefix}created_at"]),
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
        created_at=stored_time(row["created_at"]),
        last_used_at=stored_time(row["last_used_at"]),
        expires_at=stored_time(row["expires_at"]),
        revoked_at=stored_time(row["revoked_at"]),
        description=row["description"],
        scopes=tuple(json_value(row["scopes_json"])),
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
        created_at=stored_time(row["created_at"]),
        updated_at=stored_time(row["updated_at"]),
        deleted_at=stored_time(row["deleted_at"]),
        token_budget=row["token_budget"],
        context=json_value(row["context_json"]),
        last_activity_at=stored_time(row["last_activity_at"]),
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
        context=json_value(row["context_json"]),
        options=json_value(row["options_json"]),
        model_used=row["model_used"],
        provider=row["provider"],
        usage=TokenUsage(row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]),
        created_at=stored_time(row["created_at"]),
        updated_at=stored_time(row["updated_at"]),
        started_at=stored_time(row["started_at"]),
        completed_at=stored_time(row["completed_at"]),
        claimed_by=row["claimed_by"],
        lease_expires_at=stored_time(row["lease_expires_at"]),
        control=control_state_from_row(row),
        run_seconds=row["run_seconds"],
        claim_epoch=row["claim_epoch"],
    )


def control_state_from_row(row: Row) -> ControlState:
    """Return the ControlState of a row holding the tasks table's control columns."""
    return ControlState(
        pause_requested=row["pause_requested"],
        paused_at=stored_time(row["paused_at"]),
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
        payload=json_value(row["payload_json"]),
        agent_id=row["agent_id"],
        timestamp=stored_time(row["timestamp"]),
    )
