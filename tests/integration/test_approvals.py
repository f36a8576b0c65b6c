"""Approvals (human in the loop) through the gateway with real processes.

The shared ``stack`` (SQLite, and PostgreSQL with Redis) for the flow, the answers and the
validation; a stack with a 2-second approval timeout for TIMEOUT; a stack of its own for a
restart while a task waits.
"""

import concurrent.futures
import json

import httpx
import pytest

from tests.integration.conftest import User
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.sse import read_stream

QUERY = "What is 2+2?"


def _user(stack, email: str) -> User:
    key = create_api_key(stack.env, email)
    return User(email, key, httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30))


def _task(user: User, task_id: str) -> dict:
    response = user.client.get(f"/api/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _wait_pending(user: User, task_id: str, timeout: float = 15.0) -> dict:
    """Return the task once it waits for an approval."""

    def waiting():
        task = _task(user, task_id)
        return task if task["pending_approval"] else None

    return wait_until(waiting, timeout=timeout, interval=0.05, what=f"task {task_id} to wait for approval")


def _decide(user: User, **body) -> httpx.Response:
    return user.client.post("/api/v1/approvals/decision", json=body)


def _approvals(user: User, **params) -> dict:
    response = user.client.get("/api/v1/approvals", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _types(user: User, task_id: str) -> list[str]:
    return [event["type"] for event in user.events(task_id)]


def _assert_gap_free(user: User, task_id: str) -> None:
    seqs = [event["seq"] for event in user.events(task_id)]
    assert seqs == list(range(1, len(seqs) + 1))


@pytest.fixture(scope="module")
def waiting(alice) -> dict:
    """A task of alice's that waits for approval (submitted with require_approval)."""
    task = alice.submit(QUERY, require_approval=True)
    return _wait_pending(alice, task["task_id"])


def test_a_task_requiring_approval_waits_running_with_its_pending_approval(stack, alice, waiting):
    task_id = waiting["task_id"]
    frames = read_stream(
        f"{stack.url}/api/v1/stream/sse",
        alice.headers,
        params={"workflow_id": task_id, "types": "APPROVAL_REQUESTED"},
        stop_after=1,
    )
    requested = json.loads(frames[0].data)
    assert frames[0].event == "APPROVAL_REQUESTED"
    pending = waiting["pending_approval"]
    assert requested["payload"]["approval_id"] == pending["approval_id"]
    assert requested["payload"]["proposed_action"] == {
        "action": "run_task",
        "query": QUERY,
        "mode": "standard",
    }
    assert requested["payload"]["reason"]
    assert waiting["status"] == "RUNNING"
    assert pending["proposed_action"] == requested["payload"]["proposed_action"]
    assert pending["reason"] == requested["payload"]["reason"]
    assert pending["requested_at"].endswith("Z")
    listed = _approvals(alice, status="pending")
    mine = [approval for approval in listed["approvals"] if approval["approval_id"] == pending["approval_id"]]
    assert mine == [
        {
            "approval_id": pending["approval_id"],
            "workflow_id": task_id,
            "query": QUERY,
            "proposed_action": pending["proposed_action"],
            "reason": pending["reason"],
            "requested_at": pending["requested_at"],
            "status": "pending",
        }
    ]
    assert listed["total_count"] >= 1


def test_approving_with_a_modified_action_lets_the_task_complete_with_it(alice, waiting):
    task_id = waiting["task_id"]
    approval_id = waiting["pending_approval"]["approval_id"]
    modified = {"action": "run_task", "query": "What is 6*7?"}
    response = _decide(
        alice,
        workflow_id=task_id,
        approval_id=approval_id,
        approved=True,
        feedback="fine, but this one",
        modified_action=modified,
        decided_by="somebody-else",
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "sent",
        "success": True,
        "message": response.json()["message"],
        "workflow_id": task_id,
        "approval_id": approval_id,
    }
    task = alice.wait_finished(task_id)
    assert task["status"] == "COMPLETED"
    assert "42" in task["result"]
    assert task["pending_approval"] is None
    events = alice.events(task_id)
    decision = next(event for event in events if event["type"] == "APPROVAL_DECISION")
    assert decision["payload"]["approved"] is True
    assert decision["payload"]["modified_action"] == modified
    used = next(event for event in events if event["payload"].get("approved_action"))
    assert used["payload"]["approved_action"] == modified
    assert _types(alice, task_id).count("APPROVAL_REQUESTED") == 1
    _assert_gap_free(alice, task_id)

    decided = _approvals(alice, status="decided")["approvals"]
    mine = next(approval for approval in decided if approval["approval_id"] == approval_id)
    me = alice.client.get("/api/v1/auth/me").json()["user_id"]
    assert mine["status"] == "approved"
    assert mine["decided_by"] == me
    assert mine["feedback"] == "fine, but this one"
    assert mine["decided_at"].endswith("Z")
    assert approval_id not in {a["approval_id"] for a in _approvals(alice, status="pending")["approvals"]}

    again = _decide(alice, workflow_id=task_id, approval_id=approval_id, approved=False)
    assert again.status_code == 409, again.text
    assert again.json()["code"] == "conflict"


def test_rejecting_ends_the_task_failed_with_the_feedback(alice):
    task = _wait_pending(alice, alice.submit(QUERY, context={"require_approval": True})["task_id"])
    response = _decide(
        alice,
        workflow_id=task["task_id"],
        approval_id=task["pending_approval"]["approval_id"],
        approved=False,
        feedback="not today",
    )
    assert response.status_code == 200, response.text
    finished = alice.wait_finished(task["task_id"])
    assert finished["status"] == "FAILED"
    assert "not today" in finished["error"]
    types = _types(alice, task["task_id"])
    assert types[-3:] == ["APPROVAL_DECISION", "WORKFLOW_FAILED", "STREAM_END"]
    _assert_gap_free(alice, task["task_id"])


def test_parallel_decisions_on_one_approval_are_taken_once(stack, alice):
    task = _wait_pending(alice, alice.submit(QUERY, require_approval=True)["task_id"])
    body = {"workflow_id": task["task_id"], "approval_id": task["pending_approval"]["approval_id"]}

    def decide(approved: bool) -> tuple[bool, int]:
        with httpx.Client(base_url=stack.url, headers=alice.headers, timeout=30) as client:
            response = client.post("/api/v1/approvals/decision", json={**body, "approved": approved})
            return approved, response.status_code

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(decide, [True, False] * 4))
    winners = [approved for approved, status in answers if status == 200]
    assert len(winners) == 1, answers
    assert sorted(status for _, status in answers) == [200] + [409] * 7
    finished = alice.wait_finished(task["task_id"])
    assert finished["status"] == ("COMPLETED" if winners[0] else "FAILED")
    assert _types(alice, task["task_id"]).count("APPROVAL_DECISION") == 1
    _assert_gap_free(alice, task["task_id"])


def test_a_tool_the_runner_marks_as_needing_approval_waits_and_runs_as_approved(alice):
    context = {"simulation": {"approval_tool": "web_search"}}
    task = _wait_pending(alice, alice.submit(QUERY, context=context)["task_id"])
    proposed = task["pending_approval"]["proposed_action"]
    assert proposed == {"tool": "web_search", "arguments": {"query": QUERY}}
    assert task["pending_approval"]["reason"] == "The tool web_search needs approval"
    response = _decide(
        alice, workflow_id=task["task_id"], approval_id=task["pending_approval"]["approval_id"], approved=True
    )
    assert response.status_code == 200, response.text
    assert alice.wait_finished(task["task_id"])["status"] == "COMPLETED"
    invoked = [event for event in alice.events(task["task_id"]) if event["type"] == "TOOL_INVOKED"]
    assert [event["payload"]["approved_action"] for event in invoked] == [proposed]
    _assert_gap_free(alice, task["task_id"])


def test_another_users_or_an_unknown_approval_is_404(alice, bob):
    task = _wait_pending(alice, alice.submit(QUERY, require_approval=True)["task_id"])
    approval_id = task["pending_approval"]["approval_id"]
    foreign = _decide(bob, workflow_id=task["task_id"], approval_id=approval_id, approved=True)
    assert foreign.status_code == 404, foreign.text
    assert foreign.json()["error"] == "Approval not found"
    unknown = _decide(alice, workflow_id=task["task_id"], approval_id="approval-unknown", approved=True)
    assert unknown.status_code == 404, unknown.text
    wrong_task = _decide(alice, workflow_id="task-unknown", approval_id=approval_id, approved=True)
    assert wrong_task.status_code == 404, wrong_task.text
    assert approval_id not in {a["approval_id"] for a in _approvals(bob, status="all")["approvals"]}
    # Cancelling a waiting task ends it at once, and its approval with it: no longer pending.
    assert alice.client.post(f"/api/v1/tasks/{task['task_id']}/cancel", json={}).status_code == 202
    assert alice.wait_finished(task["task_id"])["status"] == "CANCELLED"
    assert approval_id not in {a["approval_id"] for a in _approvals(alice, status="pending")["approvals"]}
    decided = _approvals(alice, status="decided", limit=100)["approvals"]
    assert {a["approval_id"]: a["status"] for a in decided}[approval_id] == "cancelled"
    late = _decide(alice, workflow_id=task["task_id"], approval_id=approval_id, approved=True)
    assert late.status_code == 409, late.text


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"workflow_id", "approval_id", "approved"}),
        ({"workflow_id": "w", "approval_id": "a", "approved": "yes"}, {"approved"}),
        ({"workflow_id": "bad id!", "approval_id": "a", "approved": True}, {"workflow_id"}),
        (
            {"workflow_id": "w", "approval_id": "a", "approved": True, "modified_action": [1]},
            {"modified_action"},
        ),
        ({"workflow_id": "w", "approval_id": "a", "approved": True, "feedback": 3}, {"feedback"}),
        ({"workflow_id": "w", "approval_id": "a", "approved": True, "run_id": "no good"}, {"run_id"}),
    ],
)
def test_a_bad_decision_body_is_400_naming_its_fields(alice, body, fields):
    response = _decide(alice, **body)
    assert response.status_code == 400, response.text
    assert {detail["field"] for detail in response.json()["details"]} == fields


def test_a_bad_list_query_is_400(alice):
    response = alice.client.get("/api/v1/approvals", params={"status": "maybe", "limit": 0})
    assert response.status_code == 400, response.text
    assert {detail["field"] for detail in response.json()["details"]} == {"status", "limit"}


def test_the_list_pages_with_limit_and_offset(alice):
    everything = _approvals(alice, status="all", limit=100)
    assert everything["total_count"] == len(everything["approvals"]) >= 2
    first = _approvals(alice, status="all", limit=1)
    second = _approvals(alice, status="all", limit=1, offset=1)
    assert first["total_count"] == everything["total_count"]
    assert [first["approvals"][0], second["approvals"][0]] == everything["approvals"][:2]


def test_no_decision_within_the_approval_timeout_ends_the_task_timeout(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_APPROVAL_TIMEOUT_SECONDS="2")
    try:
        erin = _user(stack, "erin@example.com")
        task = _wait_pending(erin, erin.submit(QUERY, require_approval=True)["task_id"])
        finished = erin.wait_finished(task["task_id"], timeout=20)
        assert finished["status"] == "TIMEOUT"
        assert finished["pending_approval"] is None
        assert _types(erin, task["task_id"])[-2:] == ["WORKFLOW_TIMEOUT", "STREAM_END"]
        expired = _approvals(erin, status="decided")["approvals"]
        assert [approval["status"] for approval in expired] == ["expired"]
        late = _decide(
            erin,
            workflow_id=task["task_id"],
            approval_id=task["pending_approval"]["approval_id"],
            approved=True,
        )
        assert late.status_code == 409, late.text
        erin.client.close()
    finally:
        stack.stop()


def test_a_task_s_own_approval_timeout_ends_its_wait_while_others_keep_the_default(tmp_path):
    stack = start_stack(tmp_path)
    try:
        fay = _user(stack, "fay@example.com")
        patient = _wait_pending(fay, fay.submit(QUERY, require_approval=True)["task_id"])
        hasty = _wait_pending(
            fay, fay.submit(QUERY, require_approval=True, approval_timeout_seconds=2)["task_id"]
        )

        finished = fay.wait_finished(hasty["task_id"], timeout=30)

        assert finished["status"] == "TIMEOUT"
        assert finished["error"] == "No approval decision within 2 seconds"
        assert fay.client.get(f"/api/v1/tasks/{patient['task_id']}").json()["pending_approval"] is not None
        fay.client.close()
    finally:
        stack.stop()


def test_waiting_tasks_hold_no_worker_slot(tmp_path):
    stack = start_stack(tmp_path, TASKGATE_WORKER_CONCURRENCY="2")
    try:
        gina = _user(stack, "gina@example.com")
        # Twice as many waiting tasks as the replica runs at once: each asks, parks and frees its slot.
        waiting = [gina.submit(QUERY, require_approval=True)["task_id"] for _ in range(4)]
        pending = [_wait_pending(gina, task_id) for task_id in waiting]
        assert {task["status"] for task in pending} == {"RUNNING"}
        plain = gina.wait_finished(gina.submit(QUERY)["task_id"])
        assert plain["status"] == "COMPLETED"
        for task in pending:
            approval_id = task["pending_approval"]["approval_id"]
            response = _decide(gina, workflow_id=task["task_id"], approval_id=approval_id, approved=True)
            assert response.status_code == 200, response.text
        assert {gina.wait_finished(task_id)["status"] for task_id in waiting} == {"COMPLETED"}
        gina.client.close()
    finally:
        stack.stop()


def test_a_waiting_task_survives_a_restart_and_completes_once_approved(tmp_path):
    stack = start_stack(tmp_path)
    try:
        frank = _user(stack, "frank@example.com")
        task = _wait_pending(frank, frank.submit(QUERY, require_approval=True)["task_id"])
        assert stack.orchestrator.stop() == 0
        stack.orchestrator.start()
        after = wait_until(
            lambda: (
                (r := frank.client.get(f"/api/v1/tasks/{task['task_id']}")).status_code == 200 and r.json()
            ),
            what="the gateway to reconnect",
        )
        assert after["status"] == "RUNNING"
        assert after["pending_approval"] == task["pending_approval"]
        response = _decide(
            frank,
            workflow_id=task["task_id"],
            approval_id=task["pending_approval"]["approval_id"],
            approved=True,
        )
        assert response.status_code == 200, response.text
        finished = frank.wait_finished(task["task_id"])
        assert finished["status"] == "COMPLETED"
        assert "4" in finished["result"]
        _assert_gap_free(frank, task["task_id"])
        frank.client.close()
    finally:
        stack.stop()
