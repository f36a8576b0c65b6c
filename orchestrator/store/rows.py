"""Mapping of rows to the store's records, the same for both databases.

``record_from_row`` reads a record's fields from the columns of the same names. Times arrive as
text from SQLite and as ``timestamptz`` from PostgreSQL, JSON as text or already parsed:
``stored_time`` and ``json_value`` take either.
"""

import dataclasses
import datetime
import functools
import json
import typing
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

# Every column of tasks but the search index's own (``search_vector``), which no record needs.
TASK_COLUMNS = (
    "task_id, user_id, tenant_id, session_id, query, status, progress, result, error, mode,"
    " context_json, options_json, model_used, provider, prompt_tokens, completion_tokens, total_tokens,"
    " cost_usd, created_at, updated_at, started_at, completed_at, claimed_by, lease_expires_at,"
    " pause_requested, paused_at, pause_reason, paused_by, cancel_requested, cancel_reason, cancelled_by,"
    " run_seconds, claim_epoch, attempt, lost_attempts"
)

_Record = typing.TypeVar("_Record")


def json_value(value: Any) -> Any:
    """Return the value of a JSON column: PostgreSQL's ``json`` type arrives parsed, text does not."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def stored_time(value: Any) -> datetime.datetime | None:
    """Return a stored time as an aware datetime in ``datetime.UTC`` (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str):
        # The fixed-width ISO 8601 of TIME_FORMAT; fromisoformat reads it several times faster than strptime.
        return datetime.datetime.fromisoformat(value)
    return value.astimezone(datetime.UTC)


@functools.cache
def _fields_of(record_type: type) -> tuple[tuple[str, bool], ...]:
    """Return each field of a record type by name, with whether it holds a time."""
    hints = typing.get_type_hints(record_type)
    return tuple(
        (field.name, datetime.datetime in (hints[field.name], *typing.get_args(hints[field.name])))
        for field in dataclasses.fields(record_type)
    )


def record_from_row(record_type: type[_Record], row: Row, prefix: str = "", **converted: Any) -> _Record:
    """Return the record of a row: each field is the column of its name, a time read by ``stored_time``.

    ``converted`` gives the fields whose column is named otherwise or needs more than that (JSON,
    an enum, a nested record); ``prefix`` is that of every column's name, as in a join.
    """
    values = {
        name: stored_time(row[prefix + name]) if is_time else row[prefix + name]
        for name, is_time in _fields_of(record_type)
        if name not in converted
    }
    return record_type(**values, **converted)


def user_from_row(row: Row, prefix: str = "") -> UserRecord:
    """Return the UserRecord of a row (columns optionally prefixed, as in a join)."""
    return record_from_row(UserRecord, row, prefix)


def api_key_from_row(row: Row) -> ApiKeyRecord:
    """Return the ApiKeyRecord of a row."""
    return record_from_row(ApiKeyRecord, row, scopes=tuple(json_value(row["scopes_json"])))


def session_from_row(row: Row) -> SessionRecord:
    """Return the SessionRecord of a row."""
    return record_from_row(SessionRecord, row, context=json_value(row["context_json"]))


def task_from_row(row: Row, last_event_seq: int | None = None) -> TaskRecord:
    """Return the TaskRecord of a row (``json`` columns arrive decoded)."""
    return record_from_row(
        TaskRecord,
        row,
        last_event_seq=last_event_seq,
        status=TaskStatus(row["status"]),
        context=json_value(row["context_json"]),
        options=json_value(row["options_json"]),
        usage=TokenUsage(row["prompt_tokens"], row["completion_tokens"], row["cost_usd"]),
        control=control_state_from_row(row),
    )


def control_state_from_row(row: Row) -> ControlState:
    """Return the ControlState of a row holding the tasks table's control columns."""
    return record_from_row(ControlState, row)


def event_from_row(row: Row) -> Event:
    """Return the Event of a row."""
    return record_from_row(Event, row, payload=json_value(row["payload_json"]))
