"""The approval rules: what a decision or an expiry does, which action runs, what a decision may carry."""

import dataclasses
import datetime

import pytest

from orchestrator.domain.approvals import ApprovalRecord
from orchestrator.domain.approvals import ApprovalStatus
from orchestrator.domain.approvals import NewApproval
from orchestrator.domain.task_control import ControlRequest
from orchestrator.domain.task_control import decide_cancel
from orchestrator.domain.tasks import TaskStatus
from orchestrator.engine.approvals import APPROVAL_DECISION
from orchestrator.engine.approvals import MAX_SWEEP_SECONDS
from orchestrator.engine.approvals import MIN_SWEEP_SECONDS
from orchestrator.engine.approvals import Decision
from orchestrator.engine.approvals import approved_action
from orchestrator.engine.approvals import approved_query
from orchestrator.engine.approvals import check_feedback
from orchestrator.engine.approvals import decision_resolution
from orchestrator.engine.approvals import expiry_resolution
from orchestrator.engine.approvals import parse_modified_action
from orchestrator.engine.approvals import requested_event
from orchestrator.engine.approvals import sweep_interval
from orchestrator.errors import InvalidArgumentError
from orchestrator.runners.base import ApprovedAction
from orchestrator.runners.base import RunTask
from tests.unit.orchestrator.test_task_control_rules import task

NOW = datetime.datetime(2026, 11, 23, 14, 0, tzinfo=datetime.UTC)
PROPOSED = {"action": "run_task", "query": "What is 2+2?"}
PENDING = ApprovalRecord(
    approval_id="approval-1",
    task_id="task-1",
    user_id="user-1",
    tenant_id="tenant-1",
    step="task",
    proposed_action=PROPOSED,
    reason="asked",
    status=ApprovalStatus.PENDING,
    requested_at=NOW,
    expires_at=NOW + datetime.timedelta(hours=24),
)


def test_approving_queues_the_task_again_and_records_the_decision():
    modified = {"action": "run_task", "query": "What is 6*7?"}
    decision = Decision(True, "user-1", "ok", modified, decided_by_api_key_id="key-1")
    resolution = decision_resolution(PENDING, decision, NOW)

    assert resolution.status == ApprovalStatus.APPROVED
    assert resolution.task_status == TaskStatus.QUEUED
    assert resolution.task_error == ""
    assert [event.type for event in resolution.events] == [APPROVAL_DECISION]
    assert resolution.events[0].payload == {
        "approval_id": "approval-1",
        "approved": True,
        "decided_by": "user-1",
        "decided_by_api_key_id": "key-1",
        "feedback": "ok",
        "modified_action": modified,
    }
    assert (resolution.decided_by, resolution.decided_by_api_key_id) == ("user-1", "key-1")


@pytest.mark.parametrize(
    ("feedback", "error"),
    [("not today", "The proposed action was rejected: not today"), ("", "The proposed action was rejected")],
)
def test_rejecting_fails_the_task_with_the_feedback(feedback, error):
    resolution = decision_resolution(PENDING, Decision(False, "user-1", feedback), NOW)

    assert resolution.status == ApprovalStatus.REJECTED
    assert resolution.task_status == TaskStatus.FAILED
    assert resolution.task_error == error
    assert [event.type for event in resolution.events] == [APPROVAL_DECISION, "WORKFLOW_FAILED", "STREAM_END"]
    assert "modified_action" not in resolution.events[0].payload
    # Decided with an access token: no key.
    assert resolution.events[0].payload["decided_by_api_key_id"] == ""


def test_an_expired_approval_ends_the_task_timeout():
    resolution = expiry_resolution(PENDING, NOW)

    assert resolution.status == ApprovalStatus.EXPIRED
    assert resolution.decided_by == ""
    assert resolution.task_status == TaskStatus.TIMEOUT
    assert resolution.task_error == "No approval decision within 86400 seconds"
    assert [event.type for event in resolution.events] == ["WORKFLOW_TIMEOUT", "STREAM_END"]


def test_the_approval_carries_the_modified_action_if_given_and_the_feedback():
    approved = dataclasses.replace(PENDING, status=ApprovalStatus.APPROVED, feedback="go ahead")
    modified = dataclasses.replace(approved, modified_action={"action": "other"})

    assert approved_action([approved], "task") == ApprovedAction(PROPOSED, "go ahead", modified=False)
    assert approved_action([modified], "task") == ApprovedAction(
        {"action": "other"}, "go ahead", modified=True
    )
    assert approved_action([approved], "another step") is None
    assert approved_action([PENDING], "task") is None
    assert approved_action([dataclasses.replace(PENDING, status=ApprovalStatus.REJECTED)], "task") is None


def test_the_requested_event_carries_the_approval():
    approval = NewApproval("approval-1", "task-1", "user-1", "tenant-1", "task", PROPOSED, "asked", NOW, NOW)

    event = requested_event(approval)

    assert event.type == "APPROVAL_REQUESTED"
    assert event.payload["approval_id"] == "approval-1"
    assert event.payload["proposed_action"] == PROPOSED
    assert event.payload["reason"] == "asked"


@pytest.mark.parametrize(
    ("text", "action"),
    [
        ("", None),
        ('{"a":1}', {"a": 1}),
        ('"run ls -la"', "run ls -la"),
        ('"Résumé ✓"', "Résumé ✓"),
        # A blank string changes nothing, like an absent one.
        ('""', None),
        ('"  "', None),
        ('"' + "x" * (64 * 1024 - 2) + '"', "x" * (64 * 1024 - 2)),
    ],
)
def test_a_modified_action_is_an_optional_json_object_or_string(text, action):
    assert parse_modified_action(text) == action


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "modified_action must be a JSON object or a string, not a list"),
        ("3", "modified_action must be a JSON object or a string, not a number"),
        ("2.5", "modified_action must be a JSON object or a string, not a number"),
        ("true", "modified_action must be a JSON object or a string, not a boolean"),
        ("null", "modified_action must be a JSON object or a string, not null"),
        ("not json", "modified_action must be JSON: an object or a string (a string JSON-encoded)"),
        ('{"a":"' + "x" * 70_000 + '"}', "modified_action must be at most 64 KiB as JSON"),
        ('"' + "x" * (64 * 1024 - 1) + '"', "modified_action must be at most 64 KiB as JSON"),
    ],
)
def test_a_modified_action_that_is_not_a_small_object_or_string_is_refused(text, message):
    with pytest.raises(InvalidArgumentError) as raised:
        parse_modified_action(text)

    assert (raised.value.field, raised.value.public_message) == ("modified_action", message)


def test_a_string_modified_action_is_the_action_to_run_and_the_decision_records_it():
    decision = Decision(approved=True, decided_by="user-1", modified_action="list the files")
    resolution = decision_resolution(PENDING, decision, NOW)
    decided = dataclasses.replace(PENDING, status=ApprovalStatus.APPROVED, modified_action="list the files")

    assert resolution.events[0].payload["modified_action"] == "list the files"
    assert approved_action([decided], "task") == ApprovedAction("list the files", "", modified=True)


@pytest.mark.parametrize(
    ("action", "query"),
    [
        ("What is 6*7?", "What is 6*7?"),
        ({"action": "run_task", "query": "What is 6*7?"}, "What is 6*7?"),
        ({"action": "run_task"}, "the task's"),
        ({"query": 3}, "the task's"),
        ({"query": " "}, "the task's"),
        ("   ", "the task's"),
    ],
)
def test_the_approved_query_is_a_string_action_or_an_object_actions_query(action, query):
    assert approved_query(action, "the task's") == query


def test_feedback_is_trimmed_and_bounded():
    assert check_feedback("  fine  ") == "fine"
    with pytest.raises(InvalidArgumentError):
        check_feedback("x" * 2001)


@pytest.mark.parametrize(
    ("timeout", "interval"),
    [(1.0, MIN_SWEEP_SECONDS), (2.0, 0.5), (3.0, 0.75), (86_400.0, MAX_SWEEP_SECONDS)],
)
def test_expiry_is_looked_for_often_enough_for_the_timeout(timeout, interval):
    assert sweep_interval(timeout) == interval


@pytest.mark.parametrize(
    ("options", "context", "required"),
    [
        ({"require_approval": True}, {}, True),
        ({}, {"require_approval": True}, True),
        ({"require_approval": False}, {"require_approval": "yes"}, False),
        ({}, {}, False),
    ],
)
def test_approval_is_required_at_the_top_level_or_in_the_context(options, context, required):
    run_task = RunTask("task-1", "q", "standard", "small", context=context, options=options)

    assert run_task.requires_approval is required


def test_cancelling_a_task_waiting_for_approval_ends_it_at_once():
    waiting = task(TaskStatus.RUNNING, claimed_by=None)

    decision = decide_cancel(waiting, ControlRequest("user-1", "no", NOW))

    assert decision.transition is not None
    assert decision.transition.status == TaskStatus.CANCELLED
    assert not decision.notify_runner
