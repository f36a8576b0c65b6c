"""Task request input of API.md, checked field by field and turned into gRPC requests."""

import json
from typing import Any

import falcon

from gateway.resources.session_requests import token_budget
from gateway.validation import INT32_MAX
from gateway.validation import FieldErrors
from gateway.validation import id_query_param
from gateway.validation import int_query_param
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.task_rules import MAX_APPROVAL_TIMEOUT_SECONDS
from taskgate.task_rules import MAX_CONTEXT_BYTES
from taskgate.task_rules import MAX_OVERRIDE_CHARACTERS
from taskgate.task_rules import MAX_QUERY_CHARACTERS
from taskgate.task_rules import MAX_TIMEOUT_SECONDS
from taskgate.task_rules import MIN_APPROVAL_TIMEOUT_SECONDS
from taskgate.task_rules import MODEL_TIERS
from taskgate.task_rules import MODES
from taskgate.task_rules import MULTITASK_STRATEGIES
from taskgate.task_rules import RESEARCH_STRATEGIES
from taskgate.task_statuses import STATUS_NAMES
from taskgate.task_statuses import status_value

_CHOICES = {
    "mode": MODES,
    "model_tier": MODEL_TIERS,
    "research_strategy": RESEARCH_STRATEGIES,
    "multitask_strategy": MULTITASK_STRATEGIES,
}
_INT_RANGES = {
    "max_iterations": (1, 50),
    "max_concurrent_agents": (1, 20),
    "timeout_seconds": (1, MAX_TIMEOUT_SECONDS),
    "approval_timeout_seconds": (MIN_APPROVAL_TIMEOUT_SECONDS, MAX_APPROVAL_TIMEOUT_SECONDS),
}
_BOOLEANS = ("enable_verification", "require_approval")
_OVERRIDES = ("model_override", "provider_override")


def submit_task_request(body: dict[str, Any]) -> tasks_pb2.SubmitTaskRequest:
    """Check a ``POST /api/v1/tasks`` body and build the SubmitTask request.

    Every invalid field is reported (400 validation_failed); unknown fields are ignored, and a
    JSON null counts as an absent optional field.
    """
    errors = FieldErrors()
    request = tasks_pb2.SubmitTaskRequest()

    query = body.get("query")
    if not isinstance(query, str) or not query.strip() or len(query) > MAX_QUERY_CHARACTERS:
        errors.add("query", f"is required: a non-blank string of at most {MAX_QUERY_CHARACTERS} characters")
    else:
        request.query = query

    session_id = body.get("session_id")
    if session_id is not None:
        if is_valid_id(session_id):
            request.session_id = session_id
        else:
            errors.add("session_id", ID_RULE)

    context = body.get("context")
    if context is not None:
        if isinstance(context, dict):
            context_json = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
            if len(context_json.encode()) <= MAX_CONTEXT_BYTES:
                request.context_json = context_json
            else:
                errors.add("context", f"must be at most {MAX_CONTEXT_BYTES} bytes serialized")
        else:
            errors.add("context", "must be a JSON object")

    for field, allowed in _CHOICES.items():
        value = body.get(field)
        if value is None:
            continue
        if value in allowed:
            setattr(request, field, value)
        else:
            errors.add(field, f"must be one of {', '.join(allowed)}")

    for field, (minimum, maximum) in _INT_RANGES.items():
        value = body.get(field)
        if value is None:
            continue
        if type(value) is int and minimum <= value <= maximum:
            setattr(request, field, value)
        else:
            errors.add(field, f"must be an integer from {minimum} to {maximum}")

    for field in _BOOLEANS:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, bool):
            setattr(request, field, value)
        else:
            errors.add(field, "must be true or false")

    for field in _OVERRIDES:
        value = body.get(field)
        if value is None:
            continue
        if isinstance(value, str) and len(value) <= MAX_OVERRIDE_CHARACTERS:
            setattr(request, field, value)
        else:
            errors.add(field, f"must be a string of at most {MAX_OVERRIDE_CHARACTERS} characters")

    budget = token_budget(body, errors)
    if budget is not None:
        request.token_budget = budget

    errors.raise_if_any()
    return request


def list_tasks_request(req: falcon.Request) -> tasks_pb2.ListTasksRequest:
    """Check the query of ``GET /api/v1/tasks`` and build the ListTasks request."""
    errors = FieldErrors()
    limit = int_query_param(req, "limit", 20, 1, 100, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    session_id = id_query_param(req, "session_id", errors)
    status = common_pb2.TASK_STATUS_UNSPECIFIED
    raw_status = req.get_param("status")
    if raw_status is not None:
        try:
            status = status_value(raw_status)
        except ValueError:
            errors.add("status", f"must be one of {', '.join(STATUS_NAMES)}")
    errors.raise_if_any()
    return tasks_pb2.ListTasksRequest(
        page=common_pb2.PageRequest(limit=limit, offset=offset),
        session_id=session_id or "",
        status=status,
    )


def list_events_request(req: falcon.Request, task_id: str) -> events_pb2.ListEventsRequest:
    """Check the query of ``GET /api/v1/tasks/{id}/events`` and build the ListEvents request."""
    errors = FieldErrors()
    limit = int_query_param(req, "limit", 50, 1, 200, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    errors.raise_if_any()
    return events_pb2.ListEventsRequest(workflow_id=task_id, limit=limit, offset=offset)
