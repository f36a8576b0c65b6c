"""``multitask_strategy`` and ``approval_timeout_seconds`` on submission, through the real stack.

What a client sends reaches the stored task's options (read from the store the orchestrator
writes, as the engine and worker pool read them), over HTTP and over gRPC; a bad value is refused
with the field named, over HTTP before anything is created.
"""

import asyncio

import grpc
import pytest

from orchestrator.store import open_store
from taskgate import wire
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.orchestrator.v1 import tasks_pb2_grpc


def stored_options(stack, user_id: str, task_id: str) -> dict:
    """Return the options the orchestrator stored with the task."""

    async def read() -> dict:
        store = await open_store(stack.env["TASKGATE_DATABASE_URL"])
        try:
            task = await store.get_task(task_id, user_id)
        finally:
            await store.close()
        assert task is not None
        return task.options

    return asyncio.run(read())


@pytest.fixture(scope="module")
def alice_id(alice) -> str:
    return alice.client.get("/api/v1/auth/me").json()["user_id"]


@pytest.mark.parametrize(
    ("path", "status"), [("/api/v1/tasks", 200), ("/api/v1/tasks/stream", 201)], ids=["submit", "stream"]
)
def test_both_fields_reach_the_stored_task_from_each_submit_route(stack, alice, alice_id, path, status):
    first = alice.submit("first turn")
    response = alice.client.post(
        path,
        json={
            "query": "second turn",
            "session_id": first["session_id"],
            "multitask_strategy": "enqueue",
            "approval_timeout_seconds": 90,
        },
    )

    assert response.status_code == status, response.text
    options = stored_options(stack, alice_id, response.json()["task_id"])
    assert options["multitask_strategy"] == "enqueue"
    assert options["approval_timeout_seconds"] == 90


def test_a_task_that_sets_neither_stores_neither(stack, alice, alice_id):
    task = alice.submit("no turn options")

    options = stored_options(stack, alice_id, task["task_id"])
    assert "multitask_strategy" not in options
    assert "approval_timeout_seconds" not in options


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"multitask_strategy": "later"}, ["multitask_strategy"]),
        ({"multitask_strategy": "Interrupt"}, ["multitask_strategy"]),
        ({"multitask_strategy": 3}, ["multitask_strategy"]),
        ({"approval_timeout_seconds": 0}, ["approval_timeout_seconds"]),
        ({"approval_timeout_seconds": 2_592_001}, ["approval_timeout_seconds"]),
        ({"approval_timeout_seconds": "60"}, ["approval_timeout_seconds"]),
        (
            {"multitask_strategy": "", "approval_timeout_seconds": 1.5},
            ["multitask_strategy", "approval_timeout_seconds"],
        ),
    ],
)
def test_a_bad_value_is_400_naming_the_field_and_creates_nothing(alice, body, fields):
    before = alice.client.get("/api/v1/tasks", params={"limit": 1}).json()["total_count"]

    response = alice.client.post("/api/v1/tasks", json={"query": "refused", **body})

    assert response.status_code == 400, response.text
    error = response.json()
    assert error["code"] == "validation_failed"
    assert error["request_id"] == response.headers["X-Request-ID"]
    assert [detail["field"] for detail in error["details"]] == fields
    assert alice.client.get("/api/v1/tasks", params={"limit": 1}).json()["total_count"] == before


@pytest.fixture()
def tasks_stub(stack):
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        yield tasks_pb2_grpc.TaskServiceStub(channel)


def test_a_grpc_caller_sets_both_fields(stack, alice, alice_id, tasks_stub):
    request = tasks_pb2.SubmitTaskRequest(
        query="over gRPC", multitask_strategy="rollback", approval_timeout_seconds=600
    )

    reply = tasks_stub.SubmitTask(request, metadata=((wire.API_KEY, alice.api_key),))

    options = stored_options(stack, alice_id, reply.task.task_id)
    assert (options["multitask_strategy"], options["approval_timeout_seconds"]) == ("rollback", 600)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"multitask_strategy": "sideways"}, "multitask_strategy"),
        ({"multitask_strategy": "REJECT"}, "multitask_strategy"),
        ({"approval_timeout_seconds": 0}, "approval_timeout_seconds"),
        ({"approval_timeout_seconds": -5}, "approval_timeout_seconds"),
        ({"approval_timeout_seconds": 2_592_001}, "approval_timeout_seconds"),
    ],
)
def test_a_grpc_caller_is_told_which_field_is_invalid(alice, tasks_stub, request_fields, field):
    request = tasks_pb2.SubmitTaskRequest(query="refused", **request_fields)

    with pytest.raises(grpc.RpcError) as caught:
        tasks_stub.SubmitTask(request, metadata=((wire.API_KEY, alice.api_key),))

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(field)
    assert (wire.INVALID_FIELD, field) in tuple(caught.value.trailing_metadata())


def test_a_rejected_turn_is_409_session_busy_and_the_queued_turn_runs_after_the_running_one(alice):
    slow = {"simulation": {"step_seconds": 0.5}}
    first = alice.submit("What is 2+2?", context=slow)
    session_id = first["session_id"]

    refused = alice.client.post(
        "/api/v1/tasks",
        json={"query": "And 3+3?", "session_id": session_id, "multitask_strategy": "reject"},
    )
    queued = alice.submit("And 4+4?", session_id=session_id)

    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "session_busy"
    second = alice.wait_finished(queued["task_id"], timeout=60)
    done_first = alice.wait_finished(first["task_id"], timeout=60)
    assert (done_first["status"], second["status"]) == ("COMPLETED", "COMPLETED")
    # enqueue: the second turn started only once the first had ended.
    assert second["started_at"] >= done_first["completed_at"]
    listed = alice.client.get("/api/v1/tasks", params={"session_id": session_id}).json()
    assert sorted(task["task_id"] for task in listed["tasks"]) == sorted(
        [first["task_id"], queued["task_id"]]
    )
