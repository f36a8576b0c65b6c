"""Pausing, resuming and cancelling tasks, and their timeouts, through the gateway with real processes.

Three stacks: the shared one (0.1 s steps) for finished tasks, ownership and validation; a slow one
(2 s steps, one worker) where a task stays queued behind another and a step outlasts a second; a
paced one (0.25 s steps) where a paused task can be resumed to completion, across a restart too.
"""

import datetime
import signal
import time

import httpx
import pytest

from tests.integration.conftest import User
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.sse import read_stream

ACTIONS = ("cancel", "pause", "resume")
QUERY = "What is 2+2?"


@pytest.fixture(scope="module")
def slow(tmp_path_factory):
    """A stack whose simulated steps take 2 s and which runs one task at a time."""
    stack = start_stack(
        tmp_path_factory.mktemp("slow"), TASKGATE_SIM_STEP_SECONDS="2", TASKGATE_WORKER_CONCURRENCY="1"
    )
    user = _user(stack, "carol@example.com")
    yield stack, user
    user.client.close()
    stack.stop()


@pytest.fixture(scope="module")
def paced(tmp_path_factory):
    """A stack whose simulated tasks take about 1.4 s (0.25 s steps)."""
    stack = start_stack(tmp_path_factory.mktemp("paced"), TASKGATE_SIM_STEP_SECONDS="0.25")
    user = _user(stack, "dave@example.com")
    yield stack, user
    user.client.close()
    stack.stop()


def _user(stack, email: str) -> User:
    key = create_api_key(stack.env, email)
    return User(email, key, httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30))


def _post(user: User, task_id: str, action: str, **body) -> httpx.Response:
    return user.client.post(f"/api/v1/tasks/{task_id}/{action}", json=body or None)


def _task(user: User, task_id: str) -> dict:
    return user.client.get(f"/api/v1/tasks/{task_id}").json()


def _control_state(user: User, task_id: str) -> dict:
    response = user.client.get(f"/api/v1/tasks/{task_id}/control-state")
    assert response.status_code == 200, response.text
    return response.json()


def _wait_status(user: User, task_id: str, status: str, timeout: float = 15.0) -> dict:
    def reached():
        task = _task(user, task_id)
        return task if task["status"] == status else None

    return wait_until(reached, timeout=timeout, interval=0.02, what=f"task {task_id} to be {status}")


def _wait_event(user: User, task_id: str, event_type: str, timeout: float = 15.0) -> None:
    wait_until(
        lambda: any(event["type"] == event_type for event in user.events(task_id)),
        timeout=timeout,
        interval=0.02,
        what=f"{event_type} of task {task_id}",
    )


def _task_after_restart(user: User, task_id: str) -> dict:
    """Return the task once the gateway has reconnected to the restarted orchestrator."""
    response = wait_until(
        lambda: (r := user.client.get(f"/api/v1/tasks/{task_id}")).status_code == 200 and r,
        what="the gateway to reconnect",
    )
    return response.json()


def _types(user: User, task_id: str) -> list[str]:
    return [event["type"] for event in user.events(task_id)]


def _assert_gap_free(user: User, task_id: str) -> None:
    seqs = [event["seq"] for event in user.events(task_id)]
    assert seqs == list(range(1, len(seqs) + 1))


def _running_blocker(user: User) -> str:
    """Submit a task that occupies the slow stack's only worker, and return its id once it runs."""
    task_id = user.submit(QUERY)["task_id"]
    _wait_status(user, task_id, "RUNNING")
    return task_id


def _cancel_quietly(user: User, *task_ids: str) -> None:
    for task_id in task_ids:
        _post(user, task_id, "cancel")
    for task_id in task_ids:
        user.wait_finished(task_id)


# A finished task, ownership and validation (shared stack).


@pytest.mark.parametrize("action", ACTIONS)
def test_a_finished_task_refuses_every_control_request_with_409(alice, finished_task, action):
    response = _post(alice, finished_task["task_id"], action, reason="too late")

    assert response.status_code == 409, response.text
    assert response.json()["code"] == "conflict"
    assert response.json()["error"] == "Task has already finished"
    assert _task(alice, finished_task["task_id"])["status"] == "COMPLETED"


def test_the_control_state_of_an_untouched_task_is_empty(alice, finished_task):
    assert _control_state(alice, finished_task["task_id"]) == {
        "is_paused": False,
        "is_cancelled": False,
        "paused_at": None,
        "pause_reason": None,
        "paused_by": None,
        "cancel_reason": None,
        "cancelled_by": None,
    }


def test_another_users_task_is_not_found_on_every_control_route(alice, bob):
    task_id = alice.submit(QUERY)["task_id"]

    for action in ACTIONS:
        response = _post(bob, task_id, action, reason="not mine")
        assert response.status_code == 404, action
        assert response.json()["error"] == "Task not found"
    response = bob.client.get(f"/api/v1/tasks/{task_id}/control-state")
    assert response.status_code == 404
    assert response.json()["error"] == "Task not found"
    assert alice.wait_finished(task_id)["status"] == "COMPLETED"
    assert _control_state(alice, task_id)["is_cancelled"] is False


@pytest.mark.parametrize("action", ACTIONS)
def test_control_routes_check_the_id_and_the_optional_body(alice, action):
    assert _post(alice, "bad$id", action).status_code == 400
    assert _post(alice, "task-does-not-exist", action).status_code == 404
    for body in ({"reason": 42}, {"reason": "x" * 1001}):
        response = alice.client.post(f"/api/v1/tasks/task-does-not-exist/{action}", json=body)
        assert response.status_code == 400, body
        assert response.json()["code"] == "validation_failed"
        assert response.json()["details"][0]["field"] == "reason"
    for raw in (b"{not json", b"[1, 2]"):
        response = alice.client.post(
            f"/api/v1/tasks/task-does-not-exist/{action}",
            content=raw,
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 400, raw
    assert alice.client.get("/api/v1/tasks/bad$id/control-state").status_code == 400


@pytest.mark.parametrize("timeout_seconds", [0, -1, 86401, "10", 1.5, True])
def test_submit_rejects_a_timeout_that_is_not_a_whole_number_of_seconds_up_to_a_day(alice, timeout_seconds):
    response = alice.client.post("/api/v1/tasks", json={"query": QUERY, "timeout_seconds": timeout_seconds})

    assert response.status_code == 400
    assert response.json()["details"] == [
        {"field": "timeout_seconds", "message": "must be an integer from 1 to 86400"}
    ]


# Queued tasks, cancels that interrupt a step, timeouts, a crash (slow stack: 2 s steps, one worker).


def test_a_queued_task_pauses_at_once_is_not_started_while_paused_and_resumes(slow):
    _, carol = slow
    blocker = _running_blocker(carol)
    task_id = carol.submit(QUERY)["task_id"]
    try:
        assert _task(carol, task_id)["status"] == "QUEUED"
        assert _post(carol, task_id, "resume").status_code == 409

        response = _post(carol, task_id, "pause", reason="not now")

        assert response.status_code == 202, response.text
        assert response.json() == {"success": True, "message": "Task paused", "task_id": task_id}
        assert _task(carol, task_id)["status"] == "PAUSED"
        state = _control_state(carol, task_id)
        assert state["is_paused"] is True and state["pause_reason"] == "not now"
        assert state["paused_by"] and state["paused_at"]
        again = _post(carol, task_id, "pause")
        assert again.status_code == 409 and again.json()["error"] == "Task is already paused"

        _cancel_quietly(carol, blocker)
        time.sleep(0.8)
        assert _task(carol, task_id)["status"] == "PAUSED"

        resumed = _post(carol, task_id, "resume")
        assert resumed.status_code == 202
        assert resumed.json() == {"success": True, "message": "Task resumed", "task_id": task_id}
        assert _control_state(carol, task_id)["is_paused"] is False
        _wait_event(carol, task_id, "WORKFLOW_STARTED")
        assert _types(carol, task_id)[:3] == ["WORKFLOW_PAUSED", "WORKFLOW_RESUMED", "WORKFLOW_STARTED"]
    finally:
        _cancel_quietly(carol, blocker, task_id)
    _assert_gap_free(carol, task_id)


def test_a_queued_task_cancelled_ends_at_once_and_never_runs(slow):
    _, carol = slow
    blocker = _running_blocker(carol)
    queued = carol.submit(QUERY)["task_id"]
    paused = carol.submit(QUERY)["task_id"]
    try:
        assert _post(carol, paused, "pause").status_code == 202

        for task_id in (queued, paused):
            response = _post(carol, task_id, "cancel", reason="changed my mind")

            assert response.status_code == 202, response.text
            assert response.json() == {"success": True, "message": "Task cancelled"}
            task = _task(carol, task_id)
            assert task["status"] == "CANCELLED"
            assert task["started_at"] is None and task["error"] == "The task was cancelled"
            state = _control_state(carol, task_id)
            assert state["is_cancelled"] is True and state["is_paused"] is False
            assert state["cancel_reason"] == "changed my mind" and state["cancelled_by"]
        assert _types(carol, queued) == ["WORKFLOW_CANCELLED", "STREAM_END"]
        assert _types(carol, paused) == ["WORKFLOW_PAUSED", "WORKFLOW_CANCELLED", "STREAM_END"]
        assert carol.events(queued)[0]["payload"]["reason"] == "changed my mind"
        for action in ACTIONS:
            assert _post(carol, queued, action).status_code == 409
    finally:
        _cancel_quietly(carol, blocker)


def test_cancel_stops_a_running_task_within_a_second_and_its_stream_says_so(slow):
    stack, carol = slow
    task_id = _running_blocker(carol)
    _wait_event(carol, task_id, "AGENT_STARTED")  # the runner now sleeps a 2 s step

    started = time.monotonic()
    response = _post(carol, task_id, "cancel", reason="stop it")
    task = _wait_status(carol, task_id, "CANCELLED", timeout=5)

    assert time.monotonic() - started < 1.0
    assert response.status_code == 202
    assert response.json()["message"] == "Cancellation requested; the task stops at its next checkpoint"
    assert task["error"] == "The task was cancelled"
    assert "AGENT_THINKING" not in _types(carol, task_id)
    frames = read_stream(stack.url + "/api/v1/stream/sse", carol.headers, {"workflow_id": task_id})
    assert [frame.event for frame in frames[-2:]] == ["workflow.cancelled", "done"]
    cancelled_by = _control_state(carol, task_id)["cancelled_by"]
    assert frames[-2].json()["payload"] == {"reason": "stop it", "cancelled_by": cancelled_by}
    _assert_gap_free(carol, task_id)


def test_resume_withdraws_a_pause_the_runner_has_not_reached(slow):
    _, carol = slow
    task_id = _running_blocker(carol)
    try:
        assert _post(carol, task_id, "resume").status_code == 409
        _wait_event(carol, task_id, "AGENT_STARTED")

        paused = _post(carol, task_id, "pause")
        state = _control_state(carol, task_id)
        resumed = _post(carol, task_id, "resume")

        assert paused.status_code == 202
        assert paused.json()["message"] == "Pause requested; the task pauses at its next checkpoint"
        assert state["is_paused"] is True and _task(carol, task_id)["status"] == "RUNNING"
        assert resumed.status_code == 202
        assert _control_state(carol, task_id)["is_paused"] is False
        _wait_event(carol, task_id, "AGENT_THINKING")
        assert "WORKFLOW_PAUSED" not in _types(carol, task_id)
    finally:
        _cancel_quietly(carol, task_id)


def test_a_task_past_its_timeout_ends_timeout_even_in_the_middle_of_a_step(slow):
    stack, carol = slow
    task_id = carol.submit(QUERY, timeout_seconds=1)["task_id"]

    task = carol.wait_finished(task_id, timeout=10)

    assert task["status"] == "TIMEOUT"
    assert task["error"] == "The task ran longer than its timeout of 1 seconds"
    elapsed = _iso_seconds(task["completed_at"]) - _iso_seconds(task["started_at"])
    assert 1.0 <= elapsed < 1.9  # the first step alone is 2 s: the wait was cut at the deadline
    frames = read_stream(stack.url + "/api/v1/stream/sse", carol.headers, {"workflow_id": task_id})
    assert [frame.event for frame in frames[-2:]] == ["WORKFLOW_TIMEOUT", "done"]
    assert frames[-2].json()["payload"]["timeout_seconds"] == 1
    assert _control_state(carol, task_id)["is_cancelled"] is False


def test_a_pause_requested_before_a_crash_leaves_the_task_paused(slow):
    stack, carol = slow
    task_id = _running_blocker(carol)
    _wait_event(carol, task_id, "AGENT_STARTED")
    assert _post(carol, task_id, "pause", reason="hold").status_code == 202

    stack.orchestrator.stop(signal.SIGKILL)
    stack.orchestrator.start()

    assert _task_after_restart(carol, task_id)["status"] == "PAUSED"
    assert _control_state(carol, task_id)["pause_reason"] == "hold"
    assert _types(carol, task_id)[-1] == "WORKFLOW_PAUSED"
    assert _post(carol, task_id, "cancel").json()["message"] == "Task cancelled"
    assert _types(carol, task_id)[-2:] == ["WORKFLOW_CANCELLED", "STREAM_END"]
    _assert_gap_free(carol, task_id)


# Pausing running tasks through to completion, and across a restart (paced stack: 0.25 s steps).


def test_a_running_task_pauses_at_a_checkpoint_and_resumes_to_completion(paced):
    stack, dave = paced
    task_id = dave.submit(QUERY)["task_id"]
    _wait_event(dave, task_id, "AGENT_STARTED")

    response = _post(dave, task_id, "pause", reason="look at this")
    assert response.status_code == 202, response.text
    assert _control_state(dave, task_id)["is_paused"] is True
    _wait_status(dave, task_id, "PAUSED", timeout=2)
    held = len(dave.events(task_id))
    time.sleep(0.8)
    assert len(dave.events(task_id)) == held
    assert _post(dave, task_id, "pause").status_code == 409

    resumed = _post(dave, task_id, "resume", reason="carry on")
    assert resumed.status_code == 202
    assert _task(dave, task_id)["status"] in ("RUNNING", "COMPLETED")
    task = dave.wait_finished(task_id)

    assert task["status"] == "COMPLETED" and "4" in task["result"]
    assert _control_state(dave, task_id)["is_paused"] is False
    _assert_gap_free(dave, task_id)
    frames = read_stream(stack.url + "/api/v1/stream/sse", dave.headers, {"workflow_id": task_id})
    names = [frame.event for frame in frames]
    assert names.index("workflow.paused") < names.index("workflow.resumed") < names.index("done")
    paused_data = frames[names.index("workflow.paused")].json()
    assert paused_data["type"] == "WORKFLOW_PAUSED" and paused_data["payload"]["reason"] == "look at this"
    assert frames[names.index("workflow.resumed")].json()["payload"]["reason"] == "carry on"


def test_a_paused_task_can_be_cancelled(paced):
    _, dave = paced
    task_id = dave.submit(QUERY)["task_id"]
    _wait_event(dave, task_id, "AGENT_STARTED")
    _post(dave, task_id, "pause")
    _wait_status(dave, task_id, "PAUSED", timeout=2)

    response = _post(dave, task_id, "cancel")

    assert response.status_code == 202
    _wait_status(dave, task_id, "CANCELLED", timeout=2)
    assert _types(dave, task_id)[-3:] == ["WORKFLOW_PAUSED", "WORKFLOW_CANCELLED", "STREAM_END"]
    assert _control_state(dave, task_id)["is_paused"] is False
    _assert_gap_free(dave, task_id)


def test_time_spent_paused_does_not_count_towards_the_timeout(paced):
    _, dave = paced
    task_id = dave.submit(QUERY, timeout_seconds=3)["task_id"]
    _wait_event(dave, task_id, "AGENT_STARTED")
    _post(dave, task_id, "pause")
    _wait_status(dave, task_id, "PAUSED", timeout=2)
    time.sleep(3.5)
    _post(dave, task_id, "resume")

    task = dave.wait_finished(task_id)

    assert task["status"] == "COMPLETED"
    assert _iso_seconds(task["completed_at"]) - _iso_seconds(task["started_at"]) > 3.5


def test_a_paused_task_survives_a_restart_and_continues_from_its_checkpoint_when_resumed(paced):
    stack, dave = paced
    task_id = dave.submit(QUERY)["task_id"]
    _wait_event(dave, task_id, "AGENT_THINKING")
    _post(dave, task_id, "pause", reason="over the restart")
    _wait_status(dave, task_id, "PAUSED")

    assert stack.orchestrator.stop() == 0
    stack.orchestrator.start()

    assert _task_after_restart(dave, task_id)["status"] == "PAUSED"
    assert _control_state(dave, task_id)["pause_reason"] == "over the restart"
    assert _post(dave, task_id, "resume").status_code == 202
    task = dave.wait_finished(task_id)

    assert task["status"] == "COMPLETED" and "4" in task["result"]
    events = dave.events(task_id)
    _assert_gap_free(dave, task_id)
    types = [event["type"] for event in events]
    # The run went on from its checkpoint: nothing it had done was done again.
    for step in ("WORKFLOW_STARTED", "AGENT_STARTED", "AGENT_THINKING", "LLM_OUTPUT", "AGENT_COMPLETED"):
        assert types.count(step) == 1, step
    assert types.index("WORKFLOW_PAUSED") < types.index("WORKFLOW_RESUMED")
    assert types.count("STREAM_END") == 1
    assert events[-1]["type"] == "STREAM_END"


def _iso_seconds(text: str) -> float:
    return datetime.datetime.fromisoformat(text).timestamp()
