"""Input of the approval routes: the decision body, the list query, and the approval's JSON."""

import falcon.testing
import pytest
from google.protobuf import timestamp_pb2

from gateway.errors import ValidationError
from gateway.resources.approvals import approval_to_json
from gateway.resources.approvals import decision_request
from gateway.resources.approvals import list_request
from taskgate.orchestrator.v1 import approvals_pb2

VALID = {"workflow_id": "task-1", "approval_id": "approval-1", "approved": True}


def _fields(body: dict) -> set[str]:
    with pytest.raises(ValidationError) as raised:
        decision_request(body)
    return {detail["field"] for detail in raised.value.details}


def test_a_decision_carries_its_fields_and_never_a_decider():
    request = decision_request(
        {**VALID, "feedback": "ok", "modified_action": {"query": "q"}, "run_id": "run-1", "decided_by": "x"}
    )

    assert request.workflow_id == "task-1"
    assert request.approval_id == "approval-1"
    assert request.approved is True
    assert request.feedback == "ok"
    assert request.modified_action_json == '{"query":"q"}'
    assert request.run_id == "run-1"


@pytest.mark.parametrize(
    ("modified", "sent"),
    [
        ("list the files", '"list the files"'),
        ("Résumé ✓", '"Résumé ✓"'),
        ("x" * (64 * 1024 - 2), '"' + "x" * (64 * 1024 - 2) + '"'),
    ],
)
def test_a_modified_action_may_be_a_string_sent_as_json(modified, sent):
    assert decision_request({**VALID, "modified_action": modified}).modified_action_json == sent


def test_optional_fields_may_be_absent_or_null():
    request = decision_request({**VALID, "feedback": None, "modified_action": None})

    assert (request.feedback, request.modified_action_json, request.run_id) == ("", "", "")


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"workflow_id", "approval_id", "approved"}),
        ({**VALID, "approved": 1}, {"approved"}),
        ({**VALID, "approval_id": "a b"}, {"approval_id"}),
        ({**VALID, "feedback": "x" * 2001}, {"feedback"}),
        ({**VALID, "modified_action": 3}, {"modified_action"}),
        ({**VALID, "modified_action": [{"a": 1}]}, {"modified_action"}),
        ({**VALID, "modified_action": False}, {"modified_action"}),
        ({**VALID, "modified_action": "x" * (64 * 1024 - 1)}, {"modified_action"}),
        ({**VALID, "modified_action": {"q": "x" * 70_000}}, {"modified_action"}),
        ({**VALID, "run_id": 5}, {"run_id"}),
    ],
)
def test_a_bad_decision_names_every_bad_field(body, fields):
    assert _fields(body) == fields


def _request(query: str) -> falcon.Request:
    return falcon.testing.create_req(query_string=query)


@pytest.mark.parametrize(
    ("query", "which"),
    [
        ("", approvals_pb2.APPROVAL_FILTER_PENDING),
        ("status=decided", approvals_pb2.APPROVAL_FILTER_DECIDED),
        ("status=ALL", approvals_pb2.APPROVAL_FILTER_ALL),
    ],
)
def test_the_list_filters_by_status(query, which):
    assert list_request(_request(query)).filter == which


def test_a_bad_list_query_names_every_bad_parameter():
    with pytest.raises(ValidationError) as raised:
        list_request(_request("status=nope&limit=101&offset=-1"))

    assert {detail["field"] for detail in raised.value.details} == {"status", "limit", "offset"}


def test_a_pending_approval_shows_no_decision():
    requested = timestamp_pb2.Timestamp(seconds=1_800_000_000)
    approval = approvals_pb2.Approval(
        approval_id="a",
        workflow_id="w",
        query="q",
        proposed_action_json='{"x":1}',
        reason="r",
        requested_at=requested,
        status="pending",
    )

    body = approval_to_json(approval)

    assert body["proposed_action"] == {"x": 1}
    assert body["requested_at"].endswith("Z")
    assert "decided_by" not in body
    approval.status = "approved"
    approval.decided_by = "user-1"
    approval.decided_at.CopyFrom(requested)
    decided = approval_to_json(approval)
    assert (decided["decided_by"], decided["feedback"]) == ("user-1", "")
