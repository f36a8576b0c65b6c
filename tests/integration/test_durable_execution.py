"""Durable execution with real processes: runs survive a dead replica, a stop, a pause and an approval.

A task's run records a checkpoint after each step, and continues from it wherever it runs next, so
no step's event is recorded twice (the rule in ``event_log.py``):

- a replica killed with SIGKILL leaves its tasks RUNNING until their lease expires; then a
  surviving replica requeues them (QUEUED, no claim, one ``WORKFLOW_RESUMED`` with ``attempt``,
  ``checkpoint_seq`` and ``reason``) and any replica continues them; after
  ``TASKGATE_MAX_ATTEMPTS`` attempts ended by crashes a task ends FAILED;
- a replica stopped with SIGTERM hands its running tasks back at once (the lease here is 300 s,
  so only the hand-over can explain them being queued again);
- a paused task is parked: it holds no worker, so another user's task runs meanwhile;
- a cancel interrupts a model call that hangs;
- an approved tool call continues from the checkpoint that asked for it.

The replica tests use two replicas on PostgreSQL and Redis (``replicas_of``) with ``r1``, which the
gateway talks to, running no task (``TASKGATE_WORKER_CONCURRENCY=0``): the tasks run on ``r2``, and
once it is gone they wait QUEUED until a third replica, ``r3``, is started to continue them.
"""

import contextlib
import signal
import sqlite3

import httpx
import psycopg
import pytest

from tests.integration.chat_server import serving_chat
from tests.integration.conftest import User
from tests.integration.event_log import RESUMED
from tests.integration.event_log import finished_log_faults
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.replicas import Replicas
from tests.integration.sse import StreamFollower

pytestmark = pytest.mark.integration

QUERY = "What is 2+2?"
SHORT_LEASE = {"TASKGATE_LEASE_SECONDS": "2"}
# Longer than any test: only a hand-over, never an expired lease, can queue a task again.
LONG_LEASE = {"TASKGATE_LEASE_SECONDS": "300"}
SERVES_ONLY = {"TASKGATE_WORKER_CONCURRENCY": "0"}
# Generous bounds for a busy machine; every wait ends as soon as its condition holds.
SETTLE_SECONDS = 60.0
STREAM_OPEN_SECONDS = 30.0


def _submit(replicas: Replicas, step_seconds: float, query: str = QUERY) -> str:
    """Submit a task whose simulated steps take ``step_seconds``; return its id."""
    response = httpx.post(
        replicas.gateway.url + "/api/v1/tasks",
        headers=replicas.headers,
        json={"query": query, "context": {"simulation": {"step_seconds": step_seconds}}},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()["task_id"]


def _types(events: list[dict]) -> list[str]:
    return [event["type"] for event in events]


def _wait_for_step(events_of, task_id: str, event_type: str = "AGENT_THINKING") -> None:
    """Wait until the task has recorded ``event_type``: it is past a checkpoint, mid-run."""
    wait_until(
        lambda: event_type in _types(events_of(task_id)),
        timeout=SETTLE_SECONDS,
        interval=0.05,
        what=f"{event_type} of task {task_id}",
    )


def _status_and_claim(replicas: Replicas, task_id: str) -> tuple[str, str | None]:
    with psycopg.connect(replicas.database_url) as connection:
        return connection.execute(
            "SELECT status, claimed_by FROM tasks WHERE task_id = %s", (task_id,)
        ).fetchone()


def _wait_requeued(replicas: Replicas, task_id: str) -> None:
    """Wait until the task no longer runs, and check it is QUEUED again with no claim.

    No replica runs tasks meanwhile, so a task queued again stays QUEUED.
    """
    with contextlib.suppress(AssertionError):
        wait_until(
            lambda: _status_and_claim(replicas, task_id)[0] != "RUNNING",
            timeout=SETTLE_SECONDS,
            interval=0.1,
            what=f"task {task_id} to stop running",
        )
    assert _status_and_claim(replicas, task_id) == ("QUEUED", None)


def _wait_status(task_of, task_id: str, statuses: set[str], timeout: float = SETTLE_SECONDS) -> dict:
    return wait_until(
        lambda: (task := task_of(task_id))["status"] in statuses and task,
        timeout=timeout,
        interval=0.1,
        what=f"task {task_id} to be {' or '.join(sorted(statuses))}",
    )


def _resumed(events: list[dict]) -> list[dict]:
    return [event for event in events if event["type"] == RESUMED]


def _follow(base_url: str, headers: dict, task_id: str) -> StreamFollower:
    """Open a stream of the task from its first event, and return once its first frame has arrived."""
    follower = StreamFollower(base_url + "/api/v1/stream/sse", headers, {"workflow_id": task_id})
    follower.start()
    assert follower.first_frame.wait(STREAM_OPEN_SECONDS), f"the stream of {task_id} did not open"
    return follower


def _assert_streamed_to_done(follower: StreamFollower) -> None:
    assert follower.ended.wait(SETTLE_SECONDS), f"the stream {follower.params} is still open"
    assert follower.error is None, follower.error
    assert [int(frame.id) for frame in follower.frames] == list(range(1, len(follower.frames) + 1))
    assert follower.frames[-1].event == "done"


def test_a_killed_replicas_tasks_are_requeued_after_their_lease_and_continue_from_a_checkpoint(replicas_of):
    replicas = replicas_of(r1={**SHORT_LEASE, **SERVES_ONLY}, r2=SHORT_LEASE)
    task_ids = [_submit(replicas, step_seconds=0.5, query=f"What is {n}+1?") for n in range(3)]
    for task_id in task_ids:
        _wait_for_step(replicas.events, task_id)
    followers = [_follow(replicas.gateway.url, replicas.headers, task_id) for task_id in task_ids]

    replicas.orchestrators["r2"].stop(signal.SIGKILL)
    for task_id in task_ids:
        _wait_requeued(replicas, task_id)
    for task_id in task_ids:
        events = replicas.events(task_id)
        [resumed] = _resumed(events)
        started_seq = next(event["seq"] for event in events if event["type"] == "AGENT_STARTED")
        assert resumed["payload"]["attempt"] == 2
        # The checkpoint covers at least the first step (the second was recorded after it).
        assert started_seq <= resumed["payload"]["checkpoint_seq"] < resumed["seq"]
        assert isinstance(resumed["payload"]["reason"], str) and resumed["payload"]["reason"]

    replicas.start_replica("r3", **SHORT_LEASE)
    for task_id in task_ids:
        assert _wait_status(replicas.task, task_id, {"COMPLETED", "FAILED"})["status"] == "COMPLETED"
        assert replicas.claimed_by(task_id).startswith("r3:")
        events = replicas.events(task_id)
        assert finished_log_faults(events) == []
        assert len(_resumed(events)) == 1
    for follower in followers:
        _assert_streamed_to_done(follower)
        assert [frame.event for frame in follower.frames].count("workflow.resumed") == 1
        assert [frame.event for frame in follower.frames][-2] == "WORKFLOW_COMPLETED"


def test_a_task_whose_attempts_all_end_in_crashes_ends_failed(replicas_of):
    settings = {**SHORT_LEASE, "TASKGATE_MAX_ATTEMPTS": "2"}
    replicas = replicas_of(r1={**settings, **SERVES_ONLY}, r2=settings)
    task_id = _submit(replicas, step_seconds=1.0)
    _wait_for_step(replicas.events, task_id)

    replicas.orchestrators["r2"].stop(signal.SIGKILL)
    _wait_requeued(replicas, task_id)
    r3 = replicas.start_replica("r3", **settings)
    wait_until(
        lambda: (claim := _status_and_claim(replicas, task_id)[1]) is not None and claim.startswith("r3:"),
        timeout=SETTLE_SECONDS,
        what="r3 to claim the task for its second attempt",
    )
    r3.stop(signal.SIGKILL)

    task = _wait_status(replicas.task, task_id, {"QUEUED", "COMPLETED", "FAILED"})
    assert task["status"] == "FAILED"
    assert task["error"]
    events = replicas.events(task_id)
    assert [event["payload"]["attempt"] for event in _resumed(events)] == [2]
    assert finished_log_faults(events) == []
    assert _types(events)[-2] == "WORKFLOW_FAILED"


def test_a_replica_stopped_with_sigterm_hands_its_running_tasks_back_at_once(replicas_of):
    replicas = replicas_of(r1={**LONG_LEASE, **SERVES_ONLY}, r2=LONG_LEASE)
    # Two-second steps: each task would need well over ten seconds more to finish on r2.
    task_ids = [_submit(replicas, step_seconds=2.0, query=f"What is {n}+1?") for n in range(2)]
    for task_id in task_ids:
        _wait_for_step(replicas.events, task_id)
    followers = [_follow(replicas.gateway.url, replicas.headers, task_id) for task_id in task_ids]

    assert replicas.orchestrators["r2"].stop(signal.SIGTERM) == 0
    for task_id in task_ids:
        _wait_requeued(replicas, task_id)
        [resumed] = _resumed(replicas.events(task_id))
        assert "hand" in resumed["payload"]["reason"].lower(), resumed

    replicas.start_replica("r3", **LONG_LEASE)
    for task_id in task_ids:
        assert _wait_status(replicas.task, task_id, {"COMPLETED", "FAILED"})["status"] == "COMPLETED"
        assert replicas.claimed_by(task_id).startswith("r3:")
        assert finished_log_faults(replicas.events(task_id)) == []
    for follower in followers:
        _assert_streamed_to_done(follower)


def _user(stack, email: str) -> User:
    key = create_api_key(stack.env, email)
    return User(email, key, httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30))


def _task_of(user: User):
    """Return a function that reads one of the user's tasks."""
    return lambda task_id: user.client.get(f"/api/v1/tasks/{task_id}").json()


def _claimed_by_in_sqlite(stack, task_id: str) -> str | None:
    path = stack.env["TASKGATE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as connection:
        return connection.execute("SELECT claimed_by FROM tasks WHERE task_id = ?", (task_id,)).fetchone()[0]


def test_paused_tasks_hold_no_worker_so_another_users_task_runs_meanwhile(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_WORKER_CONCURRENCY="2", TASKGATE_SIM_STEP_SECONDS="0.5")
    alice, bob = _user(stack, "alice@example.com"), _user(stack, "bob@example.com")
    try:
        paused = [alice.submit(f"What is {n}+1?")["task_id"] for n in range(2)]
        for task_id in paused:
            _wait_for_step(alice.events, task_id)
        for task_id in paused:
            response = alice.client.post(f"/api/v1/tasks/{task_id}/pause", json={"reason": "later"})
            assert response.status_code == 202, response.text
        for task_id in paused:
            _wait_status(_task_of(alice), task_id, {"PAUSED"})

        # Both of the replica's two workers would be held if a paused task kept its worker.
        other = bob.wait_finished(bob.submit(QUERY)["task_id"], timeout=SETTLE_SECONDS)
        assert other["status"] == "COMPLETED"
        for task_id in paused:
            assert alice.client.get(f"/api/v1/tasks/{task_id}").json()["status"] == "PAUSED"
            assert _claimed_by_in_sqlite(stack, task_id) is None

        for task_id in paused:
            response = alice.client.post(f"/api/v1/tasks/{task_id}/resume", json={})
            assert response.status_code == 202, response.text
        for task_id in paused:
            assert alice.wait_finished(task_id, timeout=SETTLE_SECONDS)["status"] == "COMPLETED"
            events = alice.events(task_id)
            assert finished_log_faults(events) == []
            assert _types(events).count("WORKFLOW_PAUSED") == 1
    finally:
        alice.client.close()
        bob.client.close()
        stack.stop()


def test_a_cancel_interrupts_a_model_call_that_hangs(tmp_path):
    query = "hang until cancelled"
    with serving_chat(hang_seconds=3600) as chat:
        stack = start_stack(
            tmp_path,
            TASKGATE_RUNNER="openai",
            TASKGATE_OPENAI_BASE_URL=chat.url,
            TASKGATE_OPENAI_API_KEY="upstream-secret-key",
            TASKGATE_OPENAI_TIMEOUT_SECONDS="3600",
            TASKGATE_OPENAI_MAX_RETRIES="0",
        )
        user = _user(stack, "carol@example.com")
        try:
            task_id = user.submit(query, timeout_seconds=3600)["task_id"]
            wait_until(lambda: chat.bodies_for(query), timeout=SETTLE_SECONDS, what="the model call")
            follower = _follow(stack.url, user.headers, task_id)

            response = user.client.post(f"/api/v1/tasks/{task_id}/cancel", json={"reason": "no more waiting"})
            assert response.status_code == 202, response.text
            # The model call would hang for an hour: only an interrupted call ends the task this soon.
            task = user.wait_finished(task_id, timeout=30)

            assert task["status"] == "CANCELLED"
            events = user.events(task_id)
            assert finished_log_faults(events) == []
            assert _types(events)[-2:] == ["WORKFLOW_CANCELLED", "STREAM_END"]
            _assert_streamed_to_done(follower)
            assert [frame.event for frame in follower.frames][-2] == "workflow.cancelled"
        finally:
            user.client.close()
            stack.stop()


def test_an_approved_tool_call_continues_from_the_checkpoint_that_asked_for_it(alice):
    task_id = alice.submit(QUERY, context={"simulation": {"approval_tool": "web_search"}})["task_id"]
    task = wait_until(
        lambda: (task := alice.client.get(f"/api/v1/tasks/{task_id}").json())["pending_approval"] and task,
        timeout=SETTLE_SECONDS,
        what=f"task {task_id} to ask for approval",
    )
    approval = task["pending_approval"]
    response = alice.client.post(
        "/api/v1/approvals/decision",
        json={"workflow_id": task_id, "approval_id": approval["approval_id"], "approved": True},
    )
    assert response.status_code == 200, response.text

    assert alice.wait_finished(task_id, timeout=SETTLE_SECONDS)["status"] == "COMPLETED"
    events = alice.events(task_id)
    types = _types(events)
    assert (types.count("AGENT_STARTED"), types.count("AGENT_THINKING")) == (1, 1), types
    invoked = [event for event in events if event["type"] == "TOOL_INVOKED"]
    assert [event["payload"]["approved_action"] for event in invoked] == [approval["proposed_action"]]
    assert (
        types.index("AGENT_THINKING")
        < types.index("APPROVAL_REQUESTED")
        < types.index("APPROVAL_DECISION")
        < types.index("TOOL_INVOKED")
    )
    assert finished_log_faults(events) == []
