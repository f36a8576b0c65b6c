"""A session's token budget, with real processes: set by the task that starts it, enforced after."""

import httpx
import pytest

from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until

EXHAUSTED = "Session token budget exhausted"


def session(user, session_id: str) -> dict:
    response = user.client.get(f"/api/v1/sessions/{session_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_a_session_that_spent_its_budget_refuses_the_next_task(alice):
    first = alice.wait_finished(alice.submit("What is 2+2?", token_budget=20)["task_id"])
    spent = session(alice, first["session_id"])
    assert first["status"] == "COMPLETED"
    assert (spent["token_budget"], spent["tokens_used"]) == (20, first["usage"]["total_tokens"])
    assert spent["tokens_used"] >= 20, "the simulated task should use more than the tiny budget"

    body = {"query": "And 3+3?", "session_id": first["session_id"]}
    refused = alice.client.post("/api/v1/tasks", json=body)

    assert refused.status_code == 409
    assert (refused.json()["error"], refused.json()["code"]) == (EXHAUSTED, "conflict")
    after = session(alice, first["session_id"])
    assert (after["task_count"], after["tokens_used"]) == (1, spent["tokens_used"])


def test_a_session_within_its_budget_keeps_taking_tasks(alice):
    first = alice.wait_finished(alice.submit("What is 2+2?", token_budget=1_000_000)["task_id"])
    second = alice.wait_finished(alice.submit("What is 4+4?", session_id=first["session_id"])["task_id"])

    assert second["status"] == "COMPLETED"
    used = session(alice, first["session_id"])["tokens_used"]
    assert used == first["usage"]["total_tokens"] + second["usage"]["total_tokens"]


def test_the_context_budget_of_shannon_clients_is_honoured_and_the_field_wins(alice):
    from_context = alice.submit("What is 2+2?", context={"token_budget": 777})
    both = alice.submit("What is 2+2?", token_budget=555, context={"token_budget": 777})

    assert session(alice, from_context["session_id"])["token_budget"] == 777
    assert session(alice, both["session_id"])["token_budget"] == 555


def test_a_budget_sent_with_a_task_that_continues_a_session_is_ignored(alice):
    started = alice.submit("What is 2+2?", token_budget=900_000)
    alice.submit("What is 3+3?", session_id=started["session_id"], token_budget=5)

    assert session(alice, started["session_id"])["token_budget"] == 900_000


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"token_budget": 0}, "token_budget"),
        ({"token_budget": -5}, "token_budget"),
        ({"token_budget": "100"}, "token_budget"),
        ({"token_budget": 10.5}, "token_budget"),
        ({"token_budget": True}, "token_budget"),
        ({"token_budget": 2**63}, "token_budget"),
        ({"context": {"token_budget": 0}}, "context.token_budget"),
        ({"context": {"token_budget": "lots"}}, "context.token_budget"),
    ],
)
def test_an_invalid_budget_is_400_naming_its_field(alice, fields, field):
    response = alice.client.post("/api/v1/tasks", json={"query": "What is 2+2?", **fields})

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert [detail["field"] for detail in response.json()["details"]] == [field]


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory):
    """A stack running one task at a time, so a queued task runs only after the one ahead ends."""
    running = start_stack(tmp_path_factory.mktemp("one-worker"), TASKGATE_WORKER_CONCURRENCY="1")
    key = create_api_key(running.env, "dana@example.com")
    with httpx.Client(base_url=running.url, headers={"X-API-Key": key}, timeout=30) as client:
        yield client
    running.stop()


def finished(client: httpx.Client, task_id: str) -> dict:
    def done():
        task = client.get(f"/api/v1/tasks/{task_id}").json()
        return task if task["status"] in {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"} else None

    return wait_until(done, timeout=30, what=f"task {task_id} to finish")


def submit(client: httpx.Client, query: str, **fields) -> dict:
    response = client.post("/api/v1/tasks", json={"query": query, **fields})
    assert response.status_code == 200, response.text
    return response.json()


def test_a_queued_task_fails_without_running_when_the_tasks_ahead_spent_the_budget(one_worker):
    first = submit(one_worker, "What is 2+2?", token_budget=10)
    queued = submit(one_worker, "What is 3+3?", session_id=first["session_id"])

    assert finished(one_worker, first["task_id"])["status"] == "COMPLETED"
    failed = finished(one_worker, queued["task_id"])
    assert (failed["status"], failed["error"]) == ("FAILED", EXHAUSTED)
    assert failed["usage"]["total_tokens"] == 0 and failed["result"] is None
    events = one_worker.get(f"/api/v1/tasks/{queued['task_id']}/events").json()["events"]
    assert [event["type"] for event in events] == ["WORKFLOW_STARTED", "WORKFLOW_FAILED", "STREAM_END"]
    assert events[1]["payload"]["error"] == EXHAUSTED
    listed = one_worker.get("/api/v1/sessions").json()["sessions"]
    summary = next(s for s in listed if s["session_id"] == first["session_id"])
    assert (summary["task_count"], summary["successful_tasks"], summary["failed_tasks"]) == (2, 1, 1)
    assert (summary["latest_task_status"], summary["token_budget"]) == ("FAILED", 10)


def test_a_turn_queued_behind_the_previous_one_gets_it_as_history(one_worker):
    first = submit(one_worker, "What is 6*7?")
    second = submit(one_worker, "And doubled?", session_id=first["session_id"])

    finished(one_worker, second["task_id"])
    events = one_worker.get(f"/api/v1/tasks/{second['task_id']}/events").json()["events"]
    thinking = next(event for event in events if event["type"] == "AGENT_THINKING")
    assert thinking["payload"]["history_turns"] == 1
