"""Sessions through the gateway, with real processes: continuity, aggregates, turns, export, changes."""

import json
import re

import grpc
import pytest

from taskgate.orchestrator.v1 import sessions_pb2
from taskgate.orchestrator.v1 import sessions_pb2_grpc

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
FIRST_QUERY = "Describe the seasonal migration of quokkas"
SECOND_QUERY = "What is 12345*3?"


@pytest.fixture(scope="module")
def conversation(alice) -> dict:
    """A session of alice's with two completed turns, the second submitted after the first ended."""
    first = alice.submit(FIRST_QUERY, context={"topic": "wildlife"})
    first = alice.wait_finished(first["task_id"])
    second = alice.submit(SECOND_QUERY, session_id=first["session_id"])
    second = alice.wait_finished(second["task_id"])
    assert (first["status"], second["status"]) == ("COMPLETED", "COMPLETED")
    return {"session_id": first["session_id"], "tasks": [first, second]}


def thinking_payload(user, task_id: str) -> dict:
    return next(e["payload"] for e in user.events(task_id) if e["type"] == "AGENT_THINKING")


def test_a_task_with_a_session_id_gets_the_earlier_turns(alice, conversation):
    first, second = conversation["tasks"]

    assert second["session_id"] == first["session_id"]
    assert thinking_payload(alice, first["task_id"])["history_turns"] == 0
    assert thinking_payload(alice, second["task_id"])["history_turns"] == 1
    # The earlier turn is part of the prompt, so the same question costs more prompt tokens in it.
    alone = alice.wait_finished(alice.submit(SECOND_QUERY)["task_id"])
    assert second["usage"]["input_tokens"] > alone["usage"]["input_tokens"]
    assert thinking_payload(alice, alone["task_id"])["history_turns"] == 0


def test_the_session_list_shows_each_sessions_aggregates(alice, conversation):
    newer = alice.submit("A newer conversation")
    listed = alice.client.get("/api/v1/sessions", params={"limit": 100}).json()
    ids = [session["session_id"] for session in listed["sessions"]]
    alice.wait_finished(newer["task_id"])

    assert listed["total_count"] == len(ids)
    assert ids.index(newer["session_id"]) < ids.index(conversation["session_id"])
    session = listed["sessions"][ids.index(conversation["session_id"])]
    first, second = conversation["tasks"]
    assert session["title"] == FIRST_QUERY
    assert session["user_id"]
    assert (session["task_count"], session["successful_tasks"], session["failed_tasks"]) == (2, 2, 0)
    assert session["tokens_used"] == first["usage"]["total_tokens"] + second["usage"]["total_tokens"]
    expected_cost = first["usage"]["estimated_cost"] + second["usage"]["estimated_cost"]
    assert session["total_cost_usd"] == pytest.approx(expected_cost)
    assert (session["latest_task_query"], session["latest_task_status"]) == (SECOND_QUERY, "COMPLETED")
    assert session["token_budget"] is None
    assert session["is_active"] is True
    for field in ("created_at", "updated_at", "last_activity_at"):
        assert RFC3339.match(session[field]), field
    assert session["created_at"] <= session["last_activity_at"]


def test_the_session_list_paginates(alice, conversation):
    everything = alice.client.get("/api/v1/sessions", params={"limit": 100}).json()
    page = alice.client.get("/api/v1/sessions", params={"limit": 1, "offset": 1}).json()

    assert page["total_count"] == everything["total_count"] >= 2
    assert [s["session_id"] for s in page["sessions"]] == [everything["sessions"][1]["session_id"]]


def test_one_session_reads_with_its_context_budget_and_usage(alice, conversation):
    response = alice.client.get(f"/api/v1/sessions/{conversation['session_id']}")

    assert response.status_code == 200
    session = response.json()
    assert session["session_id"] == conversation["session_id"]
    assert session["context"] == {"topic": "wildlife"}
    assert session["task_count"] == 2
    assert session["tokens_used"] > 0 and session["cost_usd"] > 0
    assert session["token_budget"] is None and session["expires_at"] is None
    assert RFC3339.match(session["created_at"]) and RFC3339.match(session["updated_at"])


def test_history_lists_the_tasks_oldest_first_and_paginates(alice, conversation):
    response = alice.client.get(f"/api/v1/sessions/{conversation['session_id']}/history")

    assert response.status_code == 200
    body = response.json()
    first, second = conversation["tasks"]
    assert (body["session_id"], body["total"]) == (conversation["session_id"], 2)
    assert [t["task_id"] for t in body["tasks"]] == [first["task_id"], second["task_id"]]
    item = body["tasks"][1]
    assert (item["query"], item["status"], item["result"]) == (SECOND_QUERY, "COMPLETED", second["result"])
    assert item["workflow_id"] == second["task_id"] and item["error_message"] is None
    assert item["total_tokens"] == second["usage"]["total_tokens"]
    assert item["total_cost_usd"] == pytest.approx(second["usage"]["estimated_cost"])
    assert item["duration_ms"] > 0
    assert (item["started_at"], item["completed_at"]) == (second["started_at"], second["completed_at"])

    page = alice.client.get(
        f"/api/v1/sessions/{conversation['session_id']}/history", params={"limit": 1, "offset": 1}
    ).json()
    assert ([t["task_id"] for t in page["tasks"]], page["total"]) == ([second["task_id"]], 2)


def test_turns_carry_their_events_without_deltas(alice, conversation):
    path = f"/api/v1/sessions/{conversation['session_id']}/events"
    response = alice.client.get(path)

    assert response.status_code == 200
    body = response.json()
    first, second = conversation["tasks"]
    assert (body["session_id"], body["count"]) == (conversation["session_id"], 2)
    assert [t["turn"] for t in body["turns"]] == [1, 2]
    turn = body["turns"][1]
    assert (turn["task_id"], turn["user_query"], turn["final_output"]) == (
        second["task_id"],
        SECOND_QUERY,
        second["result"],
    )
    assert turn["timestamp"] == second["created_at"]
    assert turn["metadata"]["tokens_used"] == second["usage"]["total_tokens"]
    assert turn["metadata"]["execution_time_ms"] > 0
    assert turn["metadata"]["agents_involved"] == ["simulated-agent"]
    types = [event["type"] for event in turn["events"]]
    stored = [e["type"] for e in alice.events(second["task_id"]) if e["type"] != "LLM_PARTIAL"]
    assert types == stored and "LLM_OUTPUT" in types
    assert all("payload" not in event for event in turn["events"])

    with_payload = alice.client.get(path, params={"include_payload": "true", "limit": 1, "offset": 1}).json()
    assert [t["turn"] for t in with_payload["turns"]] == [2]
    output = next(e for e in with_payload["turns"][0]["events"] if e["type"] == "LLM_OUTPUT")
    assert output["payload"]["response"] == second["result"]


def test_export_is_one_json_attachment_with_tasks_and_events(alice, conversation):
    session_id = conversation["session_id"]
    response = alice.client.get(f"/api/v1/sessions/{session_id}/export")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Disposition"] == f'attachment; filename="session-{session_id}.json"'
    document = json.loads(response.content)
    assert document["session"]["session_id"] == session_id
    assert document["session"]["title"] == FIRST_QUERY
    first, second = conversation["tasks"]
    assert [t["task_id"] for t in document["tasks"]] == [first["task_id"], second["task_id"]]
    exported = document["tasks"][1]
    assert (exported["query"], exported["result"], exported["status"]) == (
        SECOND_QUERY,
        second["result"],
        "COMPLETED",
    )
    types = [event["type"] for event in exported["events"]]
    assert types[0] == "WORKFLOW_STARTED" and types[-1] == "STREAM_END"
    assert "LLM_PARTIAL" not in types
    assert RFC3339.match(document["exported_at"])


def test_rename_sanitises_the_title(alice):
    session_id = alice.submit("Name me")["session_id"]
    path = f"/api/v1/sessions/{session_id}"

    response = alice.client.patch(path, json={"title": "  Quokka\u200b research\n\tnotes\u0007\ufeff  "})

    assert response.status_code == 200
    assert response.json() == {"session_id": session_id, "title": "Quokka research notes"}
    assert alice.client.get(path).json()["title"] == "Quokka research notes"
    sixty = "é" * 60
    assert alice.client.patch(path, json={"title": sixty}).json()["title"] == sixty


@pytest.mark.parametrize(
    "body",
    [
        {"title": ""},
        {"title": "   "},
        {"title": "\u200b\u200c\u200d\ufeff"},
        {"title": "\x00\x07\n"},
        {"title": "x" * 61},
        {"title": 12},
        {"title": None},
        {},
    ],
)
def test_rename_refuses_a_title_that_is_empty_or_too_long_once_sanitised(alice, conversation, body):
    response = alice.client.patch(f"/api/v1/sessions/{conversation['session_id']}", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert [detail["field"] for detail in response.json()["details"]] == ["title"]
    assert alice.client.get(f"/api/v1/sessions/{conversation['session_id']}").json()["title"] == FIRST_QUERY


def test_delete_is_soft_idempotent_and_hides_the_session_everywhere(alice, bob):
    task = alice.wait_finished(alice.submit("Forget the lighthouse keeper")["task_id"])
    session_id = task["session_id"]
    path = f"/api/v1/sessions/{session_id}"

    assert bob.client.delete(path).status_code == 404
    first = alice.client.delete(path)
    again = alice.client.delete(path)

    assert (first.status_code, again.status_code) == (204, 204)
    assert first.content == b""
    for suffix in ("", "/history", "/events", "/export"):
        missing = alice.client.get(path + suffix)
        assert missing.status_code == 404, suffix
        assert missing.json()["error"] == "Session not found"
    assert alice.client.patch(path, json={"title": "Back"}).status_code == 404
    listed = alice.client.get("/api/v1/sessions", params={"limit": 100}).json()["sessions"]
    assert session_id not in [s["session_id"] for s in listed]
    refused = alice.client.post("/api/v1/tasks", json={"query": "Continue", "session_id": session_id})
    assert refused.status_code == 404 and refused.json()["error"] == "Session not found"
    found = alice.client.get("/api/v1/search", params={"q": "lighthouse"}).json()
    assert task["task_id"] not in [hit["task_id"] for hit in found["results"]]
    # The task itself stays readable: deleting a conversation does not rewrite what ran.
    assert alice.client.get(f"/api/v1/tasks/{task['task_id']}").status_code == 200
    assert alice.client.delete("/api/v1/sessions/no-such-session").status_code == 404


def test_another_users_session_is_not_found_on_every_route(alice, bob, conversation):
    session_id = conversation["session_id"]
    path = f"/api/v1/sessions/{session_id}"

    for response in (
        bob.client.get(path),
        bob.client.patch(path, json={"title": "Mine now"}),
        bob.client.delete(path),
        bob.client.get(path + "/history"),
        bob.client.get(path + "/events"),
        bob.client.get(path + "/export"),
    ):
        assert response.status_code == 404, response.request.url
        assert response.json()["error"] == "Session not found"
    bobs = bob.client.get("/api/v1/sessions", params={"limit": 100}).json()["sessions"]
    assert session_id not in [s["session_id"] for s in bobs]
    assert alice.client.get(path).json()["title"] == FIRST_QUERY


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/api/v1/sessions", {"limit": 0}),
        ("/api/v1/sessions", {"limit": 101}),
        ("/api/v1/sessions", {"offset": -1}),
        ("/api/v1/sessions/{id}/history", {"limit": 101}),
        ("/api/v1/sessions/{id}/events", {"limit": 0}),
        ("/api/v1/sessions/{id}/events", {"limit": 101}),
        ("/api/v1/sessions/{id}/events", {"include_payload": "maybe"}),
        ("/api/v1/sessions/bad%20id", {}),
        ("/api/v1/sessions/bad%20id/history", {}),
        ("/api/v1/sessions/bad%20id/events", {}),
        ("/api/v1/sessions/bad%20id/export", {}),
    ],
)
def test_bad_parameters_are_400(alice, conversation, path, params):
    response = alice.client.get(path.replace("{id}", conversation["session_id"]), params=params)

    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert response.json()["details"]


def test_unknown_sessions_are_404_and_unsupported_methods_405(alice):
    for path in ("/api/v1/sessions/nope", "/api/v1/sessions/nope/history", "/api/v1/sessions/nope/export"):
        assert alice.client.get(path).status_code == 404, path
    assert alice.client.post("/api/v1/sessions", json={}).status_code == 405
    assert alice.client.delete("/api/v1/sessions/nope/history").status_code == 405


def test_a_service_reads_sessions_over_grpc_and_gets_the_same_checks(stack, alice, conversation):
    metadata = (("x-api-key", alice.api_key),)
    session_id = conversation["session_id"]
    with grpc.insecure_channel(stack.orchestrator.grpc_addr) as channel:
        sessions = sessions_pb2_grpc.SessionServiceStub(channel)

        reply = sessions.GetSession(sessions_pb2.GetSessionRequest(session_id=session_id), metadata=metadata)
        assert (reply.session.task_count, reply.session.title) == (2, FIRST_QUERY)
        blank_title = sessions_pb2.UpdateSessionRequest(session_id=session_id, title="\u200b")
        for call, request in (
            (sessions.UpdateSession, blank_title),
            (sessions.GetStats, sessions_pb2.GetStatsRequest(days=366)),
            (sessions.SearchTasks, sessions_pb2.SearchTasksRequest(query="")),
            (sessions.GetSession, sessions_pb2.GetSessionRequest(session_id="bad id")),
        ):
            with pytest.raises(grpc.RpcError) as caught:
                call(request, metadata=metadata)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
