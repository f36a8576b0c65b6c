"""Schedule request input of API.md: types checked here; cron, zone and limits by the orchestrator."""

import json
from typing import Any

import falcon

from gateway.validation import INT32_MAX
from gateway.validation import FieldErrors
from gateway.validation import int_query_param
from taskgate.orchestrator.v1 import schedules_pb2
from taskgate.task_rules import MAX_CONTEXT_BYTES

_TEXT_FIELDS = ("name", "description", "cron_expression", "timezone", "task_query")
_REQUIRED_FIELDS = ("name", "cron_expression", "task_query")
_STATUSES = {
    "ACTIVE": schedules_pb2.SCHEDULE_STATUS_ACTIVE,
    "PAUSED": schedules_pb2.SCHEDULE_STATUS_PAUSED,
    "ALL": schedules_pb2.SCHEDULE_STATUS_UNSPECIFIED,
}


def _schedule_fields(body: dict[str, Any], errors: FieldErrors, required: bool) -> dict[str, Any]:
    """Return the create/update fields present in a body, as gRPC field values; record bad types."""
    fields: dict[str, Any] = {}
    for name in _TEXT_FIELDS:
        value = body.get(name)
        if value is None:
            if required and name in _REQUIRED_FIELDS:
                errors.add(name, "is required")
            continue
        if not isinstance(value, str):
            errors.add(name, "must be a string")
            continue
        fields[name] = value
    context = body.get("task_context")
    if context is not None:
        if not isinstance(context, dict):
            errors.add("task_context", "must be a JSON object")
        else:
            context_json = json.dumps(context, ensure_ascii=False, separators=(",", ":"))
            if len(context_json.encode()) > MAX_CONTEXT_BYTES:
                errors.add("task_context", f"must be at most {MAX_CONTEXT_BYTES} bytes serialized")
            else:
                fields["task_context_json"] = context_json
    budget = body.get("max_budget_per_run_usd")
    if budget is not None:
        if isinstance(budget, bool) or not isinstance(budget, int | float) or not 0 < budget < 1e9:
            errors.add("max_budget_per_run_usd", "must be a number greater than 0")
        else:
            fields["max_budget_per_run_usd"] = float(budget)
    timeout = body.get("timeout_seconds")
    if timeout is not None:
        if type(timeout) is not int or not 1 <= timeout <= 86_400:
            errors.add("timeout_seconds", "must be an integer from 1 to 86400")
        else:
            fields["timeout_seconds"] = timeout
    return fields


def create_schedule_request(body: dict[str, Any]) -> schedules_pb2.CreateScheduleRequest:
    """Check a ``POST /api/v1/schedules`` body and build the CreateSchedule request."""
    errors = FieldErrors()
    fields = _schedule_fields(body, errors, required=True)
    errors.raise_if_any()
    return schedules_pb2.CreateScheduleRequest(**fields)


def update_schedule_request(schedule_id: str, body: dict[str, Any]) -> schedules_pb2.UpdateScheduleRequest:
    """Check a ``PUT /api/v1/schedules/{id}`` body (any subset of the create fields) into its request."""
    errors = FieldErrors()
    fields = _schedule_fields(body, errors, required=False)
    errors.raise_if_any()
    return schedules_pb2.UpdateScheduleRequest(schedule_id=schedule_id, **fields)


def list_schedules_request(req: falcon.Request) -> schedules_pb2.ListSchedulesRequest:
    """Check the query of ``GET /api/v1/schedules`` (page, page_size, status) into its request."""
    errors = FieldErrors()
    page, page_size = _page(req, errors)
    raw_status = (req.get_param("status") or "ALL").upper()
    if raw_status not in _STATUSES:
        errors.add("status", "must be ACTIVE, PAUSED or ALL")
    errors.raise_if_any()
    return schedules_pb2.ListSchedulesRequest(page=page, page_size=page_size, status=_STATUSES[raw_status])


def list_runs_request(req: falcon.Request, schedule_id: str) -> schedules_pb2.ListScheduleRunsRequest:
    """Check the query of ``GET /api/v1/schedules/{id}/runs`` into its request."""
    errors = FieldErrors()
    page, page_size = _page(req, errors)
    errors.raise_if_any()
    return schedules_pb2.ListScheduleRunsRequest(schedule_id=schedule_id, page=page, page_size=page_size)


def _page(req: falcon.Request, errors: FieldErrors) -> tuple[int, int]:
    page = int_query_param(req, "page", 1, 1, INT32_MAX // 100, errors)
    page_size = int_query_param(req, "page_size", 50, 1, 100, errors)
    return page, page_size
