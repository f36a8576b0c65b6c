"""Approval routes: list the caller's approvals, and decide one (human in the loop).

The decider is always the authenticated caller: a ``decided_by`` or ``approved_by`` in the body
is ignored. Deciding twice is 409, an unknown or foreign approval 404 (the orchestrator's
FAILED_PRECONDITION and NOT_FOUND, through ``gateway.errors``).
"""

import json
from typing import Any
from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import call_context
from gateway.hooks import require_json_object
from gateway.resources.serialization import timestamp
from gateway.validation import INT32_MAX
from gateway.validation import FieldErrors
from gateway.validation import int_query_param
from taskgate.approval_rules import MAX_ACTION_BYTES
from taskgate.approval_rules import MAX_FEEDBACK_CHARACTERS
from taskgate.approval_rules import json_type_name
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.orchestrator.v1 import approvals_pb2

STATUS_FILTERS = {
    "pending": approvals_pb2.APPROVAL_FILTER_PENDING,
    "decided": approvals_pb2.APPROVAL_FILTER_DECIDED,
    "all": approvals_pb2.APPROVAL_FILTER_ALL,
}


class ApprovalApi(Protocol):
    """The orchestrator calls the approval routes make."""

    def list_approvals(
        self, request: approvals_pb2.ListApprovalsRequest, context: CallContext
    ) -> approvals_pb2.ListApprovalsResponse:
        """List the caller's approvals."""

    def decide_approval(
        self, request: approvals_pb2.DecideApprovalRequest, context: CallContext
    ) -> approvals_pb2.DecideApprovalResponse:
        """Decide one of the caller's approvals."""


class ApprovalsResource:
    """``/api/v1/approvals``: the caller's approvals, ``?status=pending|decided|all``, newest first."""

    def __init__(self, orchestrator: ApprovalApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Return ``{approvals, total_count}``."""
        response = self._orchestrator.list_approvals(list_request(req), call_context(req))
        resp.media = {
            "approvals": [approval_to_json(approval) for approval in response.approvals],
            "total_count": response.total_count,
        }


class ApprovalDecisionResource:
    """``/api/v1/approvals/decision``: approve or reject a pending approval."""

    def __init__(self, orchestrator: ApprovalApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Record the decision; answer 200 ``{status:"sent", success, message, workflow_id, approval_id}``."""
        response = self._orchestrator.decide_approval(decision_request(req.context.json), call_context(req))
        resp.media = {
            "status": "sent",
            "success": response.success,
            "message": response.message,
            "workflow_id": response.workflow_id,
            "approval_id": response.approval_id,
        }


def list_request(req: falcon.Request) -> approvals_pb2.ListApprovalsRequest:
    """Return the list request of a query string; 400 naming every bad parameter."""
    errors = FieldErrors()
    status = (req.get_param("status") or "pending").lower()
    if status not in STATUS_FILTERS:
        errors.add("status", "must be pending, decided or all")
    limit = int_query_param(req, "limit", 20, 1, 100, errors)
    offset = int_query_param(req, "offset", 0, 0, INT32_MAX, errors)
    errors.raise_if_any()
    return approvals_pb2.ListApprovalsRequest(filter=STATUS_FILTERS[status], limit=limit, offset=offset)


def decision_request(body: dict[str, Any]) -> approvals_pb2.DecideApprovalRequest:
    """Return the decision request of a body; 400 naming every bad field."""
    errors = FieldErrors()
    for name in ("workflow_id", "approval_id"):
        if not is_valid_id(body.get(name)):
            errors.add(name, f"required; {ID_RULE}")
    run_id = body.get("run_id")
    if run_id is not None and not is_valid_id(run_id):
        errors.add("run_id", ID_RULE)
    approved = body.get("approved")
    if not isinstance(approved, bool):
        errors.add("approved", "required; must be true or false")
    feedback = body.get("feedback")
    if feedback is None:
        feedback = ""
    elif not isinstance(feedback, str) or len(feedback) > MAX_FEEDBACK_CHARACTERS:
        errors.add("feedback", f"must be a string of at most {MAX_FEEDBACK_CHARACTERS} characters")
        feedback = ""
    modified_json = _modified_action_json(body.get("modified_action"), errors)
    errors.raise_if_any()
    return approvals_pb2.DecideApprovalRequest(
        workflow_id=body["workflow_id"],
        approval_id=body["approval_id"],
        approved=approved,
        feedback=feedback,
        modified_action_json=modified_json,
        run_id=run_id or "",
    )


def _modified_action_json(modified: Any, errors: FieldErrors) -> str:
    """Return a body's ``modified_action`` (an object or a string) as JSON, '' when absent or null."""
    if modified is None:
        return ""
    if not isinstance(modified, dict | str):
        errors.add("modified_action", f"must be a JSON object or a string, not {json_type_name(modified)}")
        return ""
    modified_json = json.dumps(modified, separators=(",", ":"), ensure_ascii=False)
    if len(modified_json.encode()) > MAX_ACTION_BYTES:
        errors.add("modified_action", "must be at most 64 KiB as JSON")
        return ""
    return modified_json


def approval_to_json(approval: approvals_pb2.Approval) -> dict[str, Any]:
    """Return the JSON of an approval; the decision's fields only once it is decided."""
    body: dict[str, Any] = {
        "approval_id": approval.approval_id,
        "workflow_id": approval.workflow_id,
        "query": approval.query,
        "proposed_action": _json_object(approval.proposed_action_json),
        "reason": approval.reason,
        "requested_at": timestamp(approval, "requested_at"),
        "status": approval.status,
    }
    if approval.status != "pending":
        body["decided_by"] = approval.decided_by or None
        body["decided_by_api_key_id"] = approval.decided_by_api_key_id or None
        body["decided_at"] = timestamp(approval, "decided_at")
        body["feedback"] = approval.feedback
        body["modified_action"] = _json_object(approval.modified_action_json)
    return body


def _json_object(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
