"""A modified action given as a string, through the real gateway and orchestrator, over HTTP and gRPC.

An approver may rewrite the action they approve as a string (the query to run instead, or the
tool call as they rewrote it). It is stored, shown by the approvals API and in the task's events,
and handed to the run as the action to carry out.
"""

import grpc
import pytest

from taskgate.orchestrator.v1 import approvals_pb2
from taskgate.orchestrator.v1 import approvals_pb2_grpc
from tests.integration.processes import wait_until

QUERY = "What is 2+2?"
REWRITTEN = "What is 6*7?"


def _wait_pending(user, task_id: str) -> dict:
    def waiting():
        task = user.client.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["pending_approval"] else None

    return wait_until(waiting, timeout=30, interval=0.05, what=f"task {task_id} to wait for approval")


def _decided(user, approval_id: str) -> dict:
    listed = user.client.get("/api/v1/approvals", params={"status": "decided", "limit": 100}).json()
    return next(approval for approval in listed["approvals"] if approval["approval_id"] == approval_id)


def _event(events: list[dict], event_type: str) -> dict:
    return next(event for event in events if event["type"] == event_type)


@pytest.fixture()
def channel(stack):
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        yield channel


def test_a_string_modified_action_is_the_query_the_approved_task_runs(alice):
    task = _wait_pending(alice, alice.submit(QUERY, require_approval=True)["task_id"])
    approval_id = task["pending_approval"]["approval_id"]

    response = alice.client.post(
        "/api/v1/approvals/decision",
        json={
            "workflow_id": task["task_id"],
            "approval_id": approval_id,
            "approved": True,
            "modified_action": REWRITTEN,
        },
    )

    assert response.status_code == 200, response.text
    finished = alice.wait_finished(task["task_id"])
    assert finished["status"] == "COMPLETED"
    assert "42" in finished["result"]
    events = alice.events(task["task_id"])
    assert _event(events, "APPROVAL_DECISION")["payload"]["modified_action"] == REWRITTEN
    carried_out = next(event for event in events if "approved_action" in event["payload"])
    assert carried_out["payload"]["approved_action"] == REWRITTEN
    assert carried_out["payload"]["modified"] is True
    decided = _decided(alice, approval_id)
    assert (decided["status"], decided["modified_action"]) == ("approved", REWRITTEN)


def test_a_tool_call_rewritten_as_a_string_is_the_call_the_run_makes(alice):
    context = {"simulation": {"approval_tool": "web_search"}}
    task = _wait_pending(alice, alice.submit(QUERY, context=context)["task_id"])
    approval_id = task["pending_approval"]["approval_id"]

    response = alice.client.post(
        "/api/v1/approvals/decision",
        json={
            "workflow_id": task["task_id"],
            "approval_id": approval_id,
            "approved": True,
            "feedback": "only the docs",
            "modified_action": "search the docs only — docs.example.com ✓",
        },
    )

    assert response.status_code == 200, response.text
    assert alice.wait_finished(task["task_id"])["status"] == "COMPLETED"
    invoked = _event(alice.events(task["task_id"]), "TOOL_INVOKED")
    assert invoked["payload"] == {
        "tool": "web_search",
        "approved_action": "search the docs only — docs.example.com ✓",
        "modified": True,
        "feedback": "only the docs",
    }
    assert _decided(alice, approval_id)["modified_action"] == "search the docs only — docs.example.com ✓"


def test_an_approval_left_unchanged_shows_no_modified_action(alice):
    task = _wait_pending(alice, alice.submit(QUERY, require_approval=True)["task_id"])
    approval_id = task["pending_approval"]["approval_id"]

    response = alice.client.post(
        "/api/v1/approvals/decision",
        json={
            "workflow_id": task["task_id"],
            "approval_id": approval_id,
            "approved": True,
            "modified_action": "",
        },
    )

    assert response.status_code == 200, response.text
    finished = alice.wait_finished(task["task_id"])
    assert (finished["status"], "4" in finished["result"]) == ("COMPLETED", True)
    assert "modified_action" not in _event(alice.events(task["task_id"]), "APPROVAL_DECISION")["payload"]
    assert _decided(alice, approval_id)["modified_action"] is None


@pytest.mark.parametrize(
    ("modified", "message"),
    [
        (3, "must be a JSON object or a string, not a number"),
        ([{"query": "q"}], "must be a JSON object or a string, not a list"),
        (True, "must be a JSON object or a string, not a boolean"),
        ("x" * (64 * 1024), "must be at most 64 KiB as JSON"),
    ],
)
def test_a_modified_action_of_another_type_or_too_long_is_400(alice, modified, message):
    body = {
        "workflow_id": "task-1",
        "approval_id": "approval-1",
        "approved": True,
        "modified_action": modified,
    }

    response = alice.client.post("/api/v1/approvals/decision", json=body)

    assert response.status_code == 400, response.text
    assert response.json()["details"] == [{"field": "modified_action", "message": message}]


def test_a_string_modified_action_decided_over_grpc_is_stored_and_run(channel, alice):
    approvals = approvals_pb2_grpc.ApprovalServiceStub(channel)
    metadata = (("x-api-key", alice.api_key),)
    task = _wait_pending(alice, alice.submit(QUERY, require_approval=True)["task_id"])
    approval_id = task["pending_approval"]["approval_id"]
    request = approvals_pb2.DecideApprovalRequest(
        workflow_id=task["task_id"], approval_id=approval_id, approved=True
    )

    for bad, named in (("3", "not a number"), ("null", "not null"), ("run ls", "must be JSON")):
        request.modified_action_json = bad
        with pytest.raises(grpc.RpcError) as caught:
            approvals.DecideApproval(request, metadata=metadata)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert named in caught.value.details()
        assert ("taskgate-invalid-field", "modified_action") in tuple(caught.value.trailing_metadata())
    request.modified_action_json = '"What is 6*7?"'
    assert approvals.DecideApproval(request, metadata=metadata).success

    assert "42" in alice.wait_finished(task["task_id"])["result"]
    listed = approvals.ListApprovals(
        approvals_pb2.ListApprovalsRequest(filter=approvals_pb2.APPROVAL_FILTER_DECIDED, limit=100),
        metadata=metadata,
    )
    decided = next(approval for approval in listed.approvals if approval.approval_id == approval_id)
    assert decided.modified_action_json == '"What is 6*7?"'
    assert _decided(alice, approval_id)["modified_action"] == "What is 6*7?"
