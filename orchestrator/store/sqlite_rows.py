"""Mapping of SQLite rows to the store's records."""

import json
import sqlite3

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import UserRecord
from orchestrator.domain.sessions import SessionRecord
from orchestrator.domain.tasks import ControlState
from orchestrator.domain.tasks import TaskRecord
from orchestrator.domain.tasks import TaskStatus
from orchestrator.domain.tasks import TokenUsage
from orchestrator.events import Event
from orchestrator.store.sqlite_database import decode_time


def user_from_row(row: sqlite3.Row) -> UserRecord:
    """Return the UserRecord of a row."""
    return UserRecord(
        row["id"],
        row["tenant_id"],
        row["email"],
        row["username"],
        row["role"],
        row["tier"],
        decode_time(row["created_at"]),
        name=row["name"],
    )


def key_owner_from_row(row: sqlite3.Row) -> UserRecord:
    """Return the owner of an API key from a row of the api_keys-users join."""
    return UserRecord(
        row["user_id"],
        row["u_tenant_id"],
        row["email"],
        row["username"],
        row["role"],
        row["tier"],
        decode_time(row["u_created_at"]),
        name=row["u_name"],
    )


def api_key_from_row(row: sqlite3.Row) -> ApiKeyRecord:
    """Return the ApiKeyRecord of a row."""
    return ApiKeyRecord(
        id=row["id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        name=row["name"],
        key_prefix=row["key_prefix"],
        key_hash=row["key_hash"],
        created_at=decode_time(row["created_at"]),
        last_used_at=decode_time(row["last_used_at"]),
        expires_at=decode_time(row["expires_at"]),
        revoked_at=decode_time(row["revoked_at"]),
        description=row["description"],
        scopes=tuple(json.loads(row["scopes_json"])),
        rate_limit_per_minute=row["rate_limit_per_minute"],
        rate_limit_per_hour=row["rate_limit_per_hour"],
    )


def session_from_row(row: sqlite3.Row) -> SessionRecord:
    """Return the SessionRecord of a row."""
    return SessionRecord(
        id=row["id"],
        user_id=row["user_id"],
        tenant_id=row["tenant_id"],
        title=row["title"],
        tokens_used=row["tokens_used"],
        cost_usd=row["cost_usd"],
        task_count=row["task_count"],
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
        deleted_at=decode_time(row["deleted_at"]),
        token_budget=row["token_budget"],
        context=json.loads(row["context_json"]),
        last_activity_at=decode_time(row["last_activity_at"]),
    )


def task_from_row(row: sqlite3.Row) -> TaskRecord:
    """Return the TaskRecord of a row."""
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
        context=json.loads(row["context_json"]),
        options=json.loads(row["options_json"]),
        model_used=row["model_used"],
        provider=row["provider"],
        usage=TokenUsage(row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]),
        created_at=decode_time(row["created_at"]),
        updated_at=decode_time(row["updated_at"]),
        started_at=decode_time(row["started_at"]),
        completed_at=decode_time(row["completed_at"]),
        claimed_by=row["claimed_by"],
        lease_expires_at=decode_time(row["lease_expires_at"]),
        control=control_state_from_row(row),
        run_seconds=row["run_seconds"],
    )


def event_from_row(row: sqlite3.Row) -> Event:
    """Return the Event of a row."""
    return Event(
        workflow_id=row["workflow_id"],
        seq=row["seq"],
        type=row["type"],
        message=row["message"],
        payload=json.loads(row["payload_json"]),
        agent_id=row["agent_id"],
        timestamp=decode_time(row["timestamp"]),
    )


# Task control.


def control_state_from_row(row: sqlite3.Row) -> ControlState:
    """Return the ControlState of a row holding the tasks table's control columns."""
    return ControlState(
        pause_requested=bool(row["pause_requested"]),
        paused_at=decode_time(row["paused_at"]),
        pause_reason=row["pause_reason"],
        paused_by=row["paused_by"],
        cancel_requested=bool(row["cancel_requested"]),
        cancel_reason=row["cancel_reason"],
        cancelled_by=row["cancelled_by"],
    )
