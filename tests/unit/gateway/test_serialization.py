"""Task and event protos as the JSON of API.md."""

import json

from gateway.resources import serialization
from taskgate.orchestrator.v1 import common_pb2
from taskgate.orchestrator.v1 import events_pb2
from taskgate.orchestrator.v1 import tasks_pb2
from tests.unit.gateway.fakes import timestamp


def completed_task(**fields) -> tasks_pb2.Task:
    values = {
        "task_id": "t-1",
        "workflow_id": "t-1",
        "session_id": "s-1",
        "user_id": "u-1",
        "query": "What is 2+2?",
        "status": common_pb2.TASK_STATUS_COMPLETED,
        "progress": 1.0,
        "result": "4",
        "mode": "simple",
        "context_json": '{"lang":"en"}',
        "model_used": "simulated",
        "provider": "taskgate",
        "usage": common_pb2.TokenUsage(
            total_tokens=30, prompt_tokens=20, completion_tokens=10, cost_usd=0.0015
        ),
        "created_at": timestamp("2026-01-02T03:04:05.678+00:00"),
        "updated_at": timestamp("2026-01-02T03:04:07.000+00:00"),
        "started_at": timestamp("2026-01-02T03:04:05.900+00:00"),
        "completed_at": timestamp("2026-01-02T03:04:07.000+00:00"),
    }
    values.update(fields)
    return tasks_pb2.Task(**values)


def test_a_completed_task_in_full() -> None:
    assert serialization.task_detail(completed_task()) == {
        "task_id": "t-1",
        "workflow_id": "t-1",
        "session_id": "s-1",
        "query": "What is 2+2?",
        "status": "COMPLETED",
        "progress": 1.0,
        "result": "4",
        "response": "4",
        "error": None,
        "mode": "simple",
        "context": {"lang": "en"},
        "model_used": "simulated",
        "provider": "taskgate",
        "usage": {"total_tokens": 30, "input_tokens": 20, "output_tokens": 10, "estimated_cost": 0.0015},
        "pending_approval": None,
        "created_at": "2026-01-02T03:04:05.678Z",
        "updated_at": "2026-01-02T03:04:07.000Z",
        "started_at": "2026-01-02T03:04:05.900Z",
        "completed_at": "2026-01-02T03:04:07.000Z",
    }


def test_unset_times_and_texts_are_null() -> None:
    task = tasks_pb2.Task(task_id="t-2", workflow_id="t-2", query="q", status=common_pb2.TASK_STATUS_QUEUED)
    detail = serialization.task_detail(task)
    for field in (
        "result",
        "response",
        "error",
        "context",
        "model_used",
        "provider",
        "started_at",
        "completed_at",
    ):
        assert detail[field] is None, field
    assert detail["status"] == "QUEUED"


def test_a_json_object_result_is_parsed_into_response() -> None:
    detail = serialization.task_detail(completed_task(result='{"answer": 4}'))
    assert detail["result"] == '{"answer": 4}'
    assert detail["response"] == {"answer": 4}


def test_a_json_result_that_is_not_an_object_stays_text() -> None:
    assert serialization.task_detail(completed_task(result="[1, 2]"))["response"] == "[1, 2]"


def test_a_pending_approval_is_shown() -> None:
    approval = tasks_pb2.PendingApproval(
        approval_id="a-1",
        proposed_action_json='{"tool": "send_email"}',
        reason="needs a human",
        requested_at=timestamp("2026-01-02T03:04:06+00:00"),
    )
    task = completed_task(status=common_pb2.TASK_STATUS_RUNNING, pending_approval=approval)
    assert serialization.task_detail(task)["pending_approval"] == {
        "approval_id": "a-1",
        "proposed_action": {"tool": "send_email"},
        "reason": "needs a human",
        "requested_at": "2026-01-02T03:04:06.000Z",
    }


def test_a_task_summary_for_lists() -> None:
    assert serialization.task_summary(completed_task()) == {
        "task_id": "t-1",
        "query": "What is 2+2?",
        "status": "COMPLETED",
        "mode": "simple",
        "created_at": "2026-01-02T03:04:05.678Z",
        "completed_at": "2026-01-02T03:04:07.000Z",
        "total_token_usage": {
            "total_tokens": 30,
            "prompt_tokens": 20,
            "completion_tokens": 10,
            "cost_usd": 0.0015,
        },
    }


def test_an_event() -> None:
    message = events_pb2.Event(
        workflow_id="t-1",
        type="LLM_PARTIAL",
        agent_id="agent-1",
        message="Thinking",
        payload_json=json.dumps({"delta": "4"}),
        timestamp=timestamp("2026-01-02T03:04:06.123+00:00"),
        seq=3,
        stream_id="1767323046123-0",
    )
    assert serialization.event(message) == {
        "workflow_id": "t-1",
        "type": "LLM_PARTIAL",
        "agent_id": "agent-1",
        "message": "Thinking",
        "payload": {"delta": "4"},
        "timestamp": "2026-01-02T03:04:06.123Z",
        "seq": 3,
        "stream_id": "1767323046123-0",
    }


def test_an_event_without_payload_has_an_empty_object() -> None:
    assert serialization.event(events_pb2.Event(workflow_id="t", type="PROGRESS", seq=1))["payload"] == {}
