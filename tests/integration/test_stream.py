"""Live event streams through the gateway's SSE proxy, with real processes."""

import threading

import httpx
import pytest

from tests.integration.sse import parse_frames
from tests.integration.sse import read_stream

SSE_NAMES = {
    "LLM_PARTIAL": "thread.message.delta",
    "LLM_OUTPUT": "thread.message.completed",
    "ERROR_OCCURRED": "error",
    "STREAM_END": "done",
}
# A bound on waits that take a second on an idle machine; each ends as soon as it can.
REQUEST_SECONDS = 60.0


def _sse(stack) -> str:
    return stack.url + "/api/v1/stream/sse"


def _seqs(frames) -> list[int]:
    return [int(frame.id) for frame in frames]


def _get(url: str, **kwargs) -> httpx.Response:
    # httpx waits 5 seconds by default, which a loaded machine can exceed.
    return httpx.get(url, timeout=REQUEST_SECONDS, **kwargs)


def test_live_stream_delivers_every_event_once_in_order(stack, alice):
    task_id = alice.submit("Explain the sliding window rate limiter in two sentences.")["task_id"]

    frames = read_stream(_sse(stack), alice.headers, {"workflow_id": task_id})

    stored = alice.events(task_id)
    assert _seqs(frames) == [event["seq"] for event in stored]
    assert frames[-1].event == "done" and frames[-1].data == "[DONE]"
    for frame, event in zip(frames[:-1], stored, strict=False):
        assert frame.event == SSE_NAMES.get(event["type"], event["type"])
        data = frame.json()
        assert data["seq"] == event["seq"] and data["type"] == event["type"]
        assert set(data) >= {"workflow_id", "type", "seq", "stream_id", "timestamp", "message"}
        if event["type"] == "LLM_PARTIAL":
            assert data["delta"] == event["payload"]["delta"]
        if event["type"] == "LLM_OUTPUT":
            assert data["response"]


def test_stream_frames_start_with_a_retry_hint(stack, alice, finished_task):
    with httpx.stream(
        "GET",
        _sse(stack),
        headers=alice.headers,
        params={"workflow_id": finished_task["task_id"]},
        timeout=REQUEST_SECONDS,
    ) as response:
        assert response.headers["cache-control"] == "no-cache"
        frames = list(parse_frames(response.iter_lines()))

    assert frames[0].retry is not None and frames[0].event is None
    assert sum(1 for frame in frames if frame.retry is not None) == 1


def test_finished_workflow_resumes_from_every_position(stack, alice, finished_task):
    task_id = finished_task["task_id"]
    total = len(alice.events(task_id))

    for position in range(total + 1):
        headers = {**alice.headers, "Last-Event-ID": str(position)}
        frames = read_stream(_sse(stack), headers, {"workflow_id": task_id})
        expected = list(range(position + 1, total + 1))
        assert _seqs(frames) == expected, position


def test_last_event_id_header_wins_over_query(stack, alice, finished_task):
    headers = {**alice.headers, "Last-Event-ID": "5"}
    frames = read_stream(
        _sse(stack), headers, {"workflow_id": finished_task["task_id"], "last_event_id": "2"}
    )

    assert _seqs(frames)[0] == 6


def test_resume_in_the_middle_of_a_live_task_has_no_gap_and_no_duplicate(stack, alice):
    task_id = alice.submit("Write a haiku about queues and the people who wait in them.")["task_id"]

    first = read_stream(_sse(stack), alice.headers, {"workflow_id": task_id}, stop_after=3)
    rest = read_stream(_sse(stack), alice.headers, {"workflow_id": task_id, "last_event_id": first[-1].id})

    stored = alice.events(task_id)
    assert _seqs(first) + _seqs(rest) == [event["seq"] for event in stored]
    assert rest[-1].event == "done"


def test_many_watchers_of_one_task_each_get_every_event(stack, alice):
    task_id = alice.submit("Summarise the benefits of server-sent events.")["task_id"]
    results: list[list[int]] = [[] for _ in range(8)]

    def watch(index):
        results[index] = _seqs(read_stream(_sse(stack), alice.headers, {"workflow_id": task_id}))

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(len(results))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=REQUEST_SECONDS * 2)
    assert not any(thread.is_alive() for thread in threads)

    expected = [event["seq"] for event in alice.events(task_id)]
    assert all(seqs == expected for seqs in results)


def test_types_filter_delivers_only_those_types_and_still_closes(stack, alice, finished_task):
    params = {"workflow_id": finished_task["task_id"], "types": "LLM_OUTPUT,WORKFLOW_COMPLETED"}

    frames = read_stream(_sse(stack), alice.headers, params)

    assert [frame.json()["type"] for frame in frames] == ["LLM_OUTPUT", "WORKFLOW_COMPLETED"]


def test_query_credentials_work_on_stream_routes(stack, alice, finished_task):
    params = {"workflow_id": finished_task["task_id"], "api_key": alice.api_key}

    frames = read_stream(_sse(stack), {}, params)

    assert frames[-1].event == "done"


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({}, 400),
        ({"workflow_id": "bad id!"}, 400),
        ({"workflow_id": "x", "last_event_id": "-1"}, 400),
        ({"workflow_id": "x", "types": "not a type"}, 400),
        ({"workflow_id": "no-such-workflow"}, 404),
    ],
)
def test_bad_stream_requests_fail_before_streaming(stack, alice, params, status):
    response = _get(_sse(stack), headers=alice.headers, params=params)

    assert response.status_code == status
    assert response.json()["code"] and response.json()["request_id"]


def test_another_users_workflow_stream_is_not_found(stack, bob, finished_task):
    response = _get(_sse(stack), headers=bob.headers, params={"workflow_id": finished_task["task_id"]})

    assert response.status_code == 404


def test_stream_without_credentials_is_401(stack, finished_task):
    response = _get(_sse(stack), params={"workflow_id": finished_task["task_id"]})

    assert response.status_code == 401


def test_admin_server_refuses_callers_without_the_service_token(stack, alice, finished_task):
    url = stack.orchestrator.admin_url + "/stream/sse"
    params = {"workflow_id": finished_task["task_id"]}

    assert _get(url, params=params).status_code == 401
    wrong = {"x-taskgate-service-token": "not-the-token-0123456789", "x-taskgate-user-id": "anyone"}
    assert _get(url, params=params, headers=wrong).status_code == 401


def test_admin_server_checks_ownership_of_forwarded_identity(stack, finished_task):
    url = stack.orchestrator.admin_url + "/stream/sse"
    headers = {"x-taskgate-service-token": stack.service_token, "x-taskgate-user-id": "someone-else"}

    response = _get(url, params={"workflow_id": finished_task["task_id"]}, headers=headers)

    assert response.status_code == 404
