"""Submitting, reading and listing tasks through the gateway, with real processes."""

import re

import pytest

from tests.integration.processes import wait_until

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
EXPECTED_TYPES = [
    "WORKFLOW_STARTED",
    "AGENT_STARTED",
    "AGENT_THINKING",
    "LLM_PARTIAL",
    "LLM_OUTPUT",
    "AGENT_COMPLETED",
    "WORKFLOW_COMPLETED",
    "STREAM_END",
]


def test_submit_returns_a_queued_task_and_its_ids_in_headers(alice):
    response = alice.client.post("/api/v1/tasks", json={"query": "What is 2+2?"})

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "QUEUED"
    assert body["task_id"] == body["workflow_id"]
    assert body["session_id"]
    assert RFC3339.match(body["created_at"])
    assert body["message"]
    assert response.headers["X-Workflow-ID"] == body["workflow_id"]
    assert response.headers["X-Session-ID"] == body["session_id"]


def test_a_curl_style_body_without_a_json_content_type_is_accepted(alice):
    # What `curl -d '{"query": ...}'` sends: the JSON labelled as a form.
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    response = alice.client.post("/api/v1/tasks", content=b'{"query":"What is 2+2?"}', headers=form)

    assert response.status_code == 200, response.text
    assert response.json()["status"] == "QUEUED"


def test_task_goes_queued_running_completed_with_result_and_usage(alice):
    task_id = alice.submit("What is 2+2?")["task_id"]
    seen = set()

    def completed():
        task = alice.client.get(f"/api/v1/tasks/{task_id}").json()
        seen.add(task["status"])
        return task if task["status"] == "COMPLETED" else None

    task = wait_until(completed, timeout=30, interval=0.02, what="completion")

    assert "RUNNING" in seen
    assert "4" in task["result"]
    assert task["response"] == task["result"]
    assert task["progress"] == 1.0
    assert task["error"] in (None, "")
    assert task["usage"]["input_tokens"] > 0 and task["usage"]["output_tokens"] > 0
    assert task["usage"]["total_tokens"] == task["usage"]["input_tokens"] + task["usage"]["output_tokens"]
    assert task["usage"]["estimated_cost"] > 0
    assert task["model_used"] and task["provider"]
    assert task["pending_approval"] is None
    for field in ("created_at", "updated_at", "started_at", "completed_at"):
        assert RFC3339.match(task[field]), field
    assert task["created_at"] <= task["started_at"] <= task["completed_at"]
    again = alice.client.get(f"/api/v1/tasks/{task_id}").json()
    assert (again["created_at"], again["completed_at"]) == (task["created_at"], task["completed_at"])


def test_events_have_gap_free_sequence_from_one(alice, finished_task):
    events = alice.events(finished_task["task_id"])

    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    collapsed = [t for i, t in enumerate(e["type"] for e in events) if i == 0 or t != events[i - 1]["type"]]
    assert collapsed == EXPECTED_TYPES
    for event in events:
        assert event["workflow_id"] == finished_task["task_id"]
        assert RFC3339.match(event["timestamp"])
        assert isinstance(event["payload"], dict)
        assert set(event) >= {"workflow_id", "type", "agent_id", "message", "payload", "timestamp", "seq"}
    partials = "".join(e["payload"]["delta"] for e in events if e["type"] == "LLM_PARTIAL")
    assert partials == finished_task["result"]


def test_events_paginate_with_total_count(alice, finished_task):
    everything = alice.events(finished_task["task_id"])
    page = alice.client.get(
        f"/api/v1/tasks/{finished_task['task_id']}/events", params={"limit": 3, "offset": 2}
    )

    assert page.status_code == 200
    assert page.json()["count"] == len(everything)
    assert [e["seq"] for e in page.json()["events"]] == [3, 4, 5]


def test_list_filters_by_session_status_and_paginates_newest_first(alice):
    first = alice.submit("first turn")
    second = alice.submit("second turn", session_id=first["session_id"])
    assert second["session_id"] == first["session_id"]
    alice.wait_finished(second["task_id"])
    alice.wait_finished(first["task_id"])

    listed = alice.client.get("/api/v1/tasks", params={"session_id": first["session_id"]}).json()
    assert listed["total_count"] == 2
    assert [t["task_id"] for t in listed["tasks"]] == [second["task_id"], first["task_id"]]
    row = listed["tasks"][0]
    assert row["status"] == "COMPLETED" and row["query"] == "second turn"
    assert row["total_token_usage"]["total_tokens"] > 0

    page = alice.client.get(
        "/api/v1/tasks", params={"session_id": first["session_id"], "limit": 1, "offset": 1}
    )
    assert [t["task_id"] for t in page.json()["tasks"]] == [first["task_id"]]
    assert page.json()["total_count"] == 2

    completed = alice.client.get("/api/v1/tasks", params={"status": "completed", "limit": 100}).json()
    assert completed["tasks"] and all(t["status"] == "COMPLETED" for t in completed["tasks"])
    queued = alice.client.get("/api/v1/tasks", params={"status": "QUEUED", "session_id": first["session_id"]})
    assert queued.json() == {"tasks": [], "total_count": 0}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"limit": "x"},
        {"status": "DONE"},
        {"session_id": "bad id!"},
    ],
)
def test_list_rejects_bad_parameters(alice, params):
    response = alice.client.get("/api/v1/tasks", params=params)

    assert response.status_code == 400
    assert response.json()["code"] in ("bad_request", "validation_failed")


def test_another_users_task_is_not_found_everywhere(alice, bob, finished_task):
    task_id = finished_task["task_id"]

    for path in (f"/api/v1/tasks/{task_id}", f"/api/v1/tasks/{task_id}/events"):
        response = bob.client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Task not found"
    assert task_id not in [t["task_id"] for t in bob.client.get("/api/v1/tasks?limit=100").json()["tasks"]]
    # Naming alice's session id starts a session of bob's own under it; alice's is untouched.
    session_id = finished_task["session_id"]
    own = bob.client.post("/api/v1/tasks", json={"query": "hi", "session_id": session_id})
    assert (own.status_code, own.json()["session_id"]) == (200, session_id)
    assert alice.client.get(f"/api/v1/sessions/{session_id}/history").json()["total"] == 1
    bob.wait_finished(own.json()["task_id"])
    assert alice.client.get("/api/v1/tasks/no-such-task").status_code == 404


def test_submit_validation_reports_every_bad_field(alice):
    response = alice.client.post(
        "/api/v1/tasks",
        json={"query": "", "mode": "turbo", "max_iterations": 0, "context": [1], "model_tier": "huge"},
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_failed"
    assert {d["field"] for d in body["details"]} >= {
        "query",
        "mode",
        "max_iterations",
        "context",
        "model_tier",
    }
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_request_errors_use_the_single_error_body(stack, alice):
    client = alice.client
    cases = [
        (
            client.post("/api/v1/tasks", content=b'{"query":', headers={"Content-Type": "application/json"}),
            400,
        ),
        (client.post("/api/v1/tasks", content=b"query=hi", headers={"Content-Type": "text/plain"}), 415),
        (client.post("/api/v1/tasks", json={"query": "x" * 2_000_000}), 413),
        (client.delete("/api/v1/tasks"), 405),
        (client.get("/api/v1/nothing-here"), 404),
        (client.get("/api/v1/tasks/bad%20id"), 400),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        body = response.json()
        assert set(body) >= {"error", "code", "request_id"}, body
        assert "Traceback" not in response.text
    assert "GET" in cases[3][0].headers["Allow"]


def test_missing_or_bad_credentials_are_401(stack, alice):
    import httpx

    for headers in (
        {},
        {"X-API-Key": "sk_" + "0" * 64},
        {"X-API-Key": "nonsense"},
        {"Authorization": "Bearer nope"},
    ):
        response = httpx.get(stack.url + "/api/v1/tasks", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["code"] == "unauthorized"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    query_key = httpx.get(stack.url + "/api/v1/tasks", params={"api_key": alice.api_key})
    assert query_key.status_code == 401


def test_bearer_and_shannon_style_keys_are_accepted(stack, alice):
    import httpx

    shannon = "sk-shannon-" + alice.api_key[3:]
    for headers in ({"Authorization": f"Bearer {alice.api_key}"}, {"X-API-Key": shannon}):
        assert httpx.get(stack.url + "/api/v1/tasks", headers=headers).status_code == 200


def test_request_id_is_echoed_when_valid_and_replaced_otherwise(alice):
    good = alice.client.get("/api/v1/tasks", headers={"X-Request-ID": "req-123.abc:7"})
    bad = alice.client.get("/api/v1/tasks", headers={"X-Request-ID": "no spaces <allowed>"})

    assert good.headers["X-Request-ID"] == "req-123.abc:7"
    assert bad.headers["X-Request-ID"] != "no spaces <allowed>"
    assert re.match(r"^[A-Za-z0-9._:-]{1,128}$", bad.headers["X-Request-ID"])
    assert good.headers["X-Trace-ID"]


def test_health_and_readiness(stack):
    import httpx

    health = httpx.get(stack.url + "/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert health.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/readiness", "/ready", "/readyz"):
        ready = httpx.get(stack.url + path)
        assert ready.status_code == 200, path
    assert httpx.get(stack.url + "/healthz").status_code == 200
