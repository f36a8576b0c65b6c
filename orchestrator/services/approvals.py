"""ApprovalService: list the caller's approvals and decide them; the decider is always the caller."""

import grpc

from orchestrator.domain.approvals import ApprovalFilter
from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import plain_action
from orchestrator.engine.approvals import ApprovalEngine
from orchestrator.engine.approvals import Decision
from orchestrator.engine.approvals import check_feedback
from orchestrator.engine.approvals import parse_modified_action
from orchestrator.errors import InvalidArgumentError
from orchestrator.events import compact_json
from orchestrator.identity import CallerResolver
from orchestrator.services.fields import optional_id
from orchestrator.services.fields import page
from orchestrator.services.fields import require_id
from orchestrator.services.messages import timestamp
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import approvals_pb2_grpc
from taskgate.orchestrator.v1 import tasks_pb2

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
_FILTERS = {
    approvals_pb2.APPROVAL_FILTER_UNSPECIFIED: ApprovalFilter.PENDING,
    approvals_pb2.APPROVAL_FILTER_PENDING: ApprovalFilter.PENDING,
    approvals_pb2.APPROVAL_FILTER_DECIDED: ApprovalFilter.DECIDED,
    approvals_pb2.APPROVAL_FILTER_ALL: ApprovalFilter.ALL,
}


class ApprovalServiceServicer(approvals_pb2_grpc.ApprovalServiceServicer):
    """The approval RPCs, each scoped to the calling user."""

    def __init__(self, approvals: ApprovalEngine, callers: CallerResolver) -> None:
        self._approvals = approvals
        self._callers = callers

    @unary_errors
    async def ListApprovals(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: approvals_pb2.ListApprovalsRequest, context: grpc.aio.ServicerContext
    ) -> approvals_pb2.ListApprovalsResponse:
        """List the caller's approvals, newest first."""
        caller = await self._callers.resolve_call(context)
        which = _FILTERS.get(request.filter)
        if which is None:
            raise InvalidArgumentError("status", "status must be pending, decided or all")
        limit, offset = page(request.limit, request.offset, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        approvals, total = await self._approvals.list(caller, which, limit, offset)
        return approvals_pb2.ListApprovalsResponse(
            approvals=[approval_to_proto(approval) for approval in approvals], total_count=total
        )

    @unary_errors
    async def DecideApproval(  # noqa: N802
        self, request: approvals_pb2.DecideApprovalRequest, context: grpc.aio.ServicerContext
    ) -> approvals_pb2.DecideApprovalResponse:
        """Approve or reject one of the caller's pending approvals."""
        caller = await self._callers.resolve_call(context)
        workflow_id = require_id("workflow_id", request.workflow_id)
        approval_id = require_id("approval_id", request.approval_id)
        optional_id("run_id", request.run_id)
        decision = Decision(
            approved=request.approved,
            decided_by=caller.user_id,
            decided_by_api_key_id=caller.api_key_id,
            feedback=check_feedback(request.feedback),
            modified_action=parse_modified_action(request.modified_action_json),
        )
        message = await self._approvals.decide(caller, workflow_id, approval_id, decision)
        return approvals_pb2.DecideApprovalResponse(
            success=True, message=message, workflow_id=workflow_id, approval_id=approval_id
        )


def approval_to_proto(approval: ApprovalRecord) -> approvals_pb2.Approval:
    """Return the Approval message of a stored approval."""
    return approvals_pb2.Approval(
        approval_id=approval.approval_id,
        workflow_id=approval.task_id,
        query=approval.query,
        proposed_action_json=compact_json(dict(approval.proposed_action)),
        reason=approval.reason,
        requested_at=timestamp(approval.requested_at),
        status=approval.status.value,
        decided_by=approval.decided_by,
        decided_by_api_key_id=approval.decided_by_api_key_id,
        decided_at=timestamp(approval.decided_at),
        feedback=approval.feedback,
        modified_action_json=_modified_action_json(approval),
    )


def _modified_action_json(approval: ApprovalRecord) -> str:
    if approval.modified_action is None:
        return ""
    return compact_json(plain_action(approval.modified_action))


def pending_approval_to_proto(approval: ApprovalRecord) -> tasks_pb2.PendingApproval:
    """Return the PendingApproval message a waiting task carries."""
    return tasks_pb2.PendingApproval(
        approval_id=approval.approval_id,
        proposed_action_json=compact_json(dict(approval.proposed_action)),
        reason=approval.reason,
        requested_at=timestamp(approval.requested_at),
    )
