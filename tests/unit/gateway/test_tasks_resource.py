"""The task routes end to end through the app, with the orchestrator faked."""

import grpc

from taskgate.orchestrator.v1 import events_pb2
from tests.unit.gateway.fakes import FakeRpcError


def submit(client, **body):
    return client.simulate_post("/api/v1/tasks", json={"query": "What is 2+2?", **body})


def test_submitting_a_task_answers_its_ids(client, orchestrator) -> None:
    response = submit(client, session_id="s-9", mode="simple")
    assert response.status_code == 200
    assert response.json == {
        "task_id": "task-1",
        "workflow_id": "task-1",
        "session_id": "s-9",
        "status": "QUEUED",
        "message": "Task submitted",
        "created_at": "2026-01-02T03:04:05.678Z",
    }
    assert (response.headers["X-Workflow-ID"], response.headers["X-Session-ID"]) == ("task-1", "s-9")
    _, request, context = orchestrator.calls_named("submit_task")[0]
    assert (request.query, request.mode, request.session_id) == ("What is 2+2?", "simple", "s-9")
    assert context.principal.user_id == "user-1"


def test_an_invalid_submission_never_reaches_the_orchestrator(client, orchestrator) -> None:
    response = submit(client, max_iterations=99)
    assert response.status_code == 400
    assert response.json["details"] == [
        {"field": "max_iterations", "message": "must be an integer from 1 to 50"}
    ]
    assert orchestrator.calls_named("submit_task") == []


def test_bad_session_turn_fields_never_reach_the_orchestrator(client, orchestrator) -> None:
    for path in ("/api/v1/tasks", "/api/v1/tasks/stream"):
        response = client.simulate_post(
            path, json={"query": "q", "multitask_strategy": "Reject", "approval_timeout_seconds": 5.5}
        )
        assert response.status_code == 400
        assert response.json["code"] == "validation_failed"
        assert [detail["field"] for detail in response.json["details"]] == [
            "multitask_strategy",
            "approval_timeout_seconds",
        ]
    assert orchestrator.calls_named("submit_task") == []


def test_a_busy_session_is_409_session_busy_on_both_submit_routes(client, orchestrator) -> None:
    orchestrator.failures["submit_task"] = FakeRpcError(
        grpc.StatusCode.FAILED_PRECONDITION,
        "The session has a turn still running; try again when it ends",
        (("taskgate-error-code", "session_busy"),),
    )
    for path in ("/api/v1/tasks", "/api/v1/tasks/stream"):
        response = client.simulate_post(
            path, json={"query": "q", "session_id": "s-1", "multitask_strategy": "reject"}
        )
        assert response.status_code == 409
        assert response.json["code"] == "session_busy"
        assert response.json["error"] == "The session has a turn still running; try again when it ends"


def test_an_orchestrator_validation_message_is_shown(client, orchestrator) -> None:
    orchestrator.failures["submit_task"] = FakeRpcError(
        grpc.StatusCode.INVALID_ARGUMENT, "Unknown model override"
    )
    response = submit(client)
    assert response.status_code == 400
    assert response.json["error"] == "Unknown model override"


def test_listing_tasks(client, orchestrator) -> None:
    submit(client)
    submit(client)
    response = client.simulate_get("/api/v1/tasks", params={"limit": "1", "status": "queued"})
    assert response.status_code == 200
    assert response.json["total_count"] == 2
    assert [task["task_id"] for task in response.json["tasks"]] == ["task-2"]
    assert set(response.json["tasks"][0]) == {
        "task_id",
        "query",
        "status",
        "mode",
        "created_at",
        "completed_at",
        "total_token_usage",
    }


def test_a_bad_list_query_is_400(client) -> None:
    response = client.simulate_get("/api/v1/tasks", params={"limit": "500"})
    assert response.status_code == 400
    assert response.json["details"][0]["field"] == "limit"


def test_reading_a_task(client) -> None:
    submit(client)
    response = client.simulate_get("/api/v1/tasks/task-1")
    assert response.status_code == 200
    assert (response.json["task_id"], response.json["status"], response.json["pending_approval"]) == (
        "task-1",
        "QUEUED",
        None,
    )


def test_a_missing_or_foreign_task_is_404_with_its_name(client) -> None:
    response = client.simulate_get("/api/v1/tasks/task-404")
    assert response.status_code == 404
    assert response.json == {
        "error": "Task not found",
        "code": "not_found",
        "request_id": response.json["request_id"],
    }


def test_a_malformed_task_id_is_400(client, orchestrator) -> None:
    for path in ("/api/v1/tasks/bad$id", "/api/v1/tasks/" + "x" * 129, "/api/v1/tasks/bad$id/events"):
        response = client.simulate_get(path)
        assert response.status_code == 400, path
        assert response.json["details"][0]["field"] == "task_id"
    assert orchestrator.calls_named("get_task") == []


def test_a_tasks_events_page(client, orchestrator) -> None:
    submit(client)
    orchestrator.events["task-1"] = [
        events_pb2.Event(workflow_id="task-1", type=kind, seq=seq)
        for seq, kind in enumerate(["WORKFLOW_STARTED", "LLM_PARTIAL", "WORKFLOW_COMPLETED"], start=1)
    ]
    response = client.simulate_get("/api/v1/tasks/task-1/events", params={"limit": "2", "offset": "1"})
    assert response.status_code == 200
    assert response.json["count"] == 3
    assert [(event["seq"], event["type"]) for event in response.json["events"]] == [
        (2, "LLM_PARTIAL"),
        (3, "WORKFLOW_COMPLETED"),
    ]
