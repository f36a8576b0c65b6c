"""A task's timeline, submitting with a stream URL, and the redirect to its stream, with real processes."""

import datetime
from collections import Counter

import httpx

from tests.integration.sse import read_stream

STREAM_PATH = "/api/v1/stream/sse"


def test_the_timeline_summarises_every_event_but_the_partials_and_counts_them_all(alice, finished_task):
    task_id = finished_task["task_id"]
    events = alice.events(task_id)

    response = alice.client.get(f"/api/v1/tasks/{task_id}/timeline")

    assert response.status_code == 200, response.text
    timeline = response.json()
    assert timeline["workflow_id"] == task_id
    entries = timeline["events"]
    assert [entry["seq"] for entry in entries] == [e["seq"] for e in events if e["type"] != "LLM_PARTIAL"]
    for entry in entries:
        assert set(entry) == {"seq", "type", "agent_id", "message", "timestamp"}
    assert entries[-1]["type"] == "STREAM_END"
    stats = timeline["stats"]
    assert stats["event_count"] == len(events)
    assert stats["by_type"] == dict(Counter(event["type"] for event in events))
    assert stats["by_type"]["LLM_PARTIAL"] >= 1
    first, last = (datetime.datetime.fromisoformat(events[i]["timestamp"]) for i in (0, -1))
    assert abs(stats["duration_ms"] - (last - first).total_seconds() * 1000) <= 1


def test_submitting_with_a_stream_answers_201_with_the_stream_to_follow(stack, alice):
    response = alice.client.post("/api/v1/tasks/stream", json={"query": "What is 6+7?"})

    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"task_id", "workflow_id", "session_id", "stream_url"}
    assert body["workflow_id"] == body["task_id"]
    assert body["stream_url"] == f"{STREAM_PATH}?workflow_id={body['task_id']}"
    assert response.headers["Link"] == f"<{body['stream_url']}>; rel=stream"
    assert response.headers["X-Workflow-ID"] == body["workflow_id"]
    assert response.headers["X-Session-ID"] == body["session_id"]
    frames = read_stream(stack.url + body["stream_url"], alice.headers)
    assert frames[-1].event == "done"
    assert "13" in next(f for f in frames if f.event == "WORKFLOW_COMPLETED").json()["payload"]["result"]


def test_submitting_with_a_stream_checks_the_body_like_a_plain_submit(alice):
    response = alice.client.post("/api/v1/tasks/stream", json={"query": "", "timeout_seconds": 0})

    assert response.status_code == 400
    assert {detail["field"] for detail in response.json()["details"]} == {"query", "timeout_seconds"}


def test_a_tasks_stream_redirects_to_the_event_stream_keeping_escaped_parameters(stack, alice, finished_task):
    task_id = finished_task["task_id"]

    plain = alice.client.get(f"/api/v1/tasks/{task_id}/stream")
    kept = alice.client.get(
        f"/api/v1/tasks/{task_id}/stream",
        params={"types": "LLM_OUTPUT,WORKFLOW_COMPLETED", "last_event_id": "2", "other": "dropped"},
    )
    odd = alice.client.get(f"/api/v1/tasks/{task_id}/stream", params={"types": "A B&c=d/e"})

    assert plain.status_code == 307
    assert plain.headers["Location"] == f"{STREAM_PATH}?workflow_id={task_id}"
    assert kept.status_code == 307
    assert kept.headers["Location"] == (
        f"{STREAM_PATH}?workflow_id={task_id}&types=LLM_OUTPUT%2CWORKFLOW_COMPLETED&last_event_id=2"
    )
    assert odd.headers["Location"] == f"{STREAM_PATH}?workflow_id={task_id}&types=A%20B%26c%3Dd%2Fe"
    frames = read_stream(stack.url + kept.headers["Location"], alice.headers)
    assert [frame.event for frame in frames] == ["thread.message.completed", "WORKFLOW_COMPLETED"]


def test_following_the_redirect_with_the_credentials_streams_the_task(stack, alice, finished_task):
    with httpx.Client(base_url=stack.url, headers=alice.headers, follow_redirects=True, timeout=30) as client:
        response = client.get(f"/api/v1/tasks/{finished_task['task_id']}/stream")

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.text.rstrip().endswith("data: [DONE]")


def test_another_users_task_has_no_timeline_and_no_stream_redirect(alice, bob, finished_task):
    task_id = finished_task["task_id"]

    for path in (f"/api/v1/tasks/{task_id}/timeline", f"/api/v1/tasks/{task_id}/stream"):
        response = bob.client.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"] == "Task not found"
        assert "Location" not in response.headers


def test_the_timeline_and_stream_routes_check_the_id(alice):
    for path in ("/api/v1/tasks/bad$id/timeline", "/api/v1/tasks/bad$id/stream"):
        assert alice.client.get(path).status_code == 400, path
    for path in ("/api/v1/tasks/task-missing/timeline", "/api/v1/tasks/task-missing/stream"):
        assert alice.client.get(path).status_code == 404, path
