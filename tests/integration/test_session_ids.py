"""Session ids are per user, through the real gateway and orchestrator, on SQLite and PostgreSQL.

Two users who submit with one ``session_id`` each get a session of their own, and nothing one of
them does tells that the other's exists: every answer about another user's session is the answer
about an id nobody used.
"""

import json
import uuid

import httpx
import pytest

from tests.integration.conftest import User
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack

pytestmark = pytest.mark.integration


def _answers(user, session_id: str) -> list[tuple[int, dict | None]]:
    """What every session route answers the user about a session id, request ids left out."""
    path = f"/api/v1/sessions/{session_id}"
    responses = [
        user.client.get(path),
        user.client.get(path + "/history"),
        user.client.get(path + "/events"),
        user.client.get(path + "/export"),
        user.client.patch(path, json={"title": "Mine now"}),
        user.client.delete(path),
    ]
    answers = []
    for response in responses:
        body = response.json() if response.content else None
        if isinstance(body, dict):
            body.pop("request_id", None)
        answers.append((response.status_code, body))
    return answers


def _export(user, session_id: str) -> dict:
    response = user.client.get(f"/api/v1/sessions/{session_id}/export")
    assert response.status_code == 200, response.text
    assert response.headers.get("transfer-encoding") == "chunked"
    return json.loads(response.content)


def test_two_users_with_one_session_id_have_separate_sessions(alice, bob):
    shared = f"shared-{uuid.uuid4().hex[:12]}"
    never_used = f"never-{uuid.uuid4().hex[:12]}"
    first = alice.wait_finished(alice.submit("Alice asks about marmots", session_id=shared)["task_id"])

    # Alice's session is, to Bob, exactly a session nobody has.
    assert _answers(bob, shared) == _answers(bob, never_used)
    assert all(status == 404 for status, _ in _answers(bob, shared))
    assert alice.client.get(f"/api/v1/sessions/{shared}").json()["task_count"] == 1

    # Bob naming the id starts his own session: no collision, no refusal.
    bobs = bob.wait_finished(bob.submit("Bob asks about capybaras", session_id=shared)["task_id"])
    assert (bobs["status"], bobs["session_id"]) == ("COMPLETED", shared)
    second = alice.wait_finished(alice.submit("And their burrows?", session_id=shared)["task_id"])

    alice_history = alice.client.get(f"/api/v1/sessions/{shared}/history").json()
    bob_history = bob.client.get(f"/api/v1/sessions/{shared}/history").json()
    assert [t["task_id"] for t in alice_history["tasks"]] == [first["task_id"], second["task_id"]]
    assert [t["task_id"] for t in bob_history["tasks"]] == [bobs["task_id"]]
    alice_session = alice.client.get(f"/api/v1/sessions/{shared}").json()
    bob_session = bob.client.get(f"/api/v1/sessions/{shared}").json()
    assert (alice_session["title"], alice_session["task_count"]) == ("Alice asks about marmots", 2)
    assert (bob_session["title"], bob_session["task_count"]) == ("Bob asks about capybaras", 1)
    assert bob_session["tokens_used"] == bobs["usage"]["total_tokens"]
    for user, title in ((alice, "Alice asks about marmots"), (bob, "Bob asks about capybaras")):
        listed = user.client.get("/api/v1/sessions", params={"limit": 100}).json()["sessions"]
        mine = [s for s in listed if s["session_id"] == shared]
        assert [s["title"] for s in mine] == [title]
    # A turn of Alice's got her own earlier turn as history, never Bob's.
    thinking = next(e for e in alice.events(second["task_id"]) if e["type"] == "AGENT_THINKING")
    assert thinking["payload"]["history_turns"] == 1

    alice_export = _export(alice, shared)
    bob_export = _export(bob, shared)
    assert [t["task_id"] for t in alice_export["tasks"]] == [first["task_id"], second["task_id"]]
    assert [t["task_id"] for t in bob_export["tasks"]] == [bobs["task_id"]]
    assert alice_export["complete"] is True and bob_export["complete"] is True
    found = alice.client.get("/api/v1/search", params={"q": "capybaras"}).json()
    assert found["results"] == []
    found = bob.client.get("/api/v1/search", params={"q": "capybaras"}).json()
    assert [hit["task_id"] for hit in found["results"]] == [bobs["task_id"]]

    # Deleting Bob's leaves Alice's whole, and Alice may go on with hers.
    assert bob.client.delete(f"/api/v1/sessions/{shared}").status_code == 204
    assert bob.client.get(f"/api/v1/sessions/{shared}").status_code == 404
    assert alice.client.get(f"/api/v1/sessions/{shared}").json()["task_count"] == 2
    assert alice.client.get(f"/api/v1/sessions/{shared}/history").json()["total"] == 2
    third = alice.submit("One more", session_id=shared)
    assert third["session_id"] == shared
    alice.wait_finished(third["task_id"])
    refused = bob.client.post("/api/v1/tasks", json={"query": "Again", "session_id": shared})
    assert refused.status_code == 404 and refused.json()["error"] == "Session not found"


@pytest.fixture(scope="module")
def small_exports(tmp_path_factory):
    """A stack whose exports hold at most 5 events, and a user of it."""
    running = start_stack(tmp_path_factory.mktemp("small-exports"), TASKGATE_SESSION_EXPORT_MAX_EVENTS="5")
    key = create_api_key(running.env, "carol@example.com")
    yield running, key
    running.stop()


def test_a_session_past_the_export_bound_is_409_before_any_byte(small_exports):
    running, key = small_exports
    with httpx.Client(base_url=running.url, headers={"X-API-Key": key}, timeout=30) as client:
        user = User(email="carol@example.com", api_key=key, client=client)
        task = user.wait_finished(user.submit("A session with more than five events")["task_id"])
        response = client.get(f"/api/v1/sessions/{task['session_id']}/export")

        assert response.status_code == 409
        assert response.json()["error"] == "Session is too large to export"
        assert "Content-Disposition" not in response.headers
