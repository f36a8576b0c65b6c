"""The caller's task feed (``GET /api/v1/stream/tasks``) with real processes, on both stores.

One connection carries every change of the caller's tasks - created, status, progress, approvals -
live, in order, resumable after any id with nothing lost or repeated, and never another user's.
"""

import concurrent.futures
import itertools

import httpx
import pytest

from tests.integration.conftest import User
from tests.integration.processes import create_api_key
from tests.integration.processes import start_stack
from tests.integration.processes import wait_until
from tests.integration.sse import StreamFollower
from tests.integration.sse import parse_frames
from tests.integration.sse import read_stream

pytestmark = pytest.mark.integration

FEED = "/api/v1/stream/tasks"
_users = itertools.count()


def _new_user(stack) -> User:
    """A user of its own per test, so that one test's tasks never show in another's feed."""
    email = f"feed-{next(_users)}@example.com"
    key = create_api_key(stack.env, email)
    return User(email, key, httpx.Client(base_url=stack.url, headers={"X-API-Key": key}, timeout=30))


def _follow(stack, user: User) -> StreamFollower:
    """Follow the user's feed from its first change kept (a new user has none yet)."""
    follower = StreamFollower(stack.url + FEED, {"X-API-Key": user.api_key, "Last-Event-ID": "0"})
    follower.start()
    return follower


def _changes_of(follower: StreamFollower, task_id: str) -> list:
    return [frame for frame in list(follower.frames) if frame.json()["task_id"] == task_id]


def _wait_for(follower: StreamFollower, task_id: str, event: str, status: str | None = None):
    def arrived():
        for frame in _changes_of(follower, task_id):
            if frame.event == event and (status is None or frame.json()["status"] == status):
                return frame
        return None

    return wait_until(arrived, timeout=60, what=f"{event} {status or ''} of {task_id} in the feed")


def test_a_tasks_life_arrives_in_order_with_its_approval_and_never_another_users(stack, bob):
    carol = _new_user(stack)
    feed = _follow(stack, carol)
    try:
        task = carol.submit("What is 2+2?", require_approval=True)
        task_id = task["task_id"]
        others = bob.submit("What is 3+3?")
        requested = _wait_for(feed, task_id, "approval.requested")
        approval_id = requested.json()["approval_id"]
        decided = carol.client.post(
            "/api/v1/approvals/decision",
            json={"approval_id": approval_id, "workflow_id": task_id, "approved": True},
        )
        assert decided.status_code == 200, decided.text
        _wait_for(feed, task_id, "task.status", "COMPLETED")
        bob.wait_finished(others["task_id"])

        frames = _changes_of(feed, task_id)
        events = [frame.event for frame in frames]
        assert events[0] == "task.created"
        assert frames[0].json()["status"] == "QUEUED"
        assert events.index("approval.requested") < events.index("approval.decided")
        decision = frames[events.index("approval.decided")].json()
        assert decision["approval_id"] == approval_id and decision["decision"] == "approved"
        statuses = [frame.json()["status"] for frame in frames if frame.event == "task.status"]
        assert statuses[0] == "RUNNING" and statuses[-1] == "COMPLETED"
        first = frames[0].json()
        assert first["workflow_id"] == task_id and first["session_id"] == task["session_id"]
        assert first["timestamp"].endswith("Z")
        ids = [int(frame.id) for frame in feed.frames]
        assert ids == sorted(set(ids)), "ids increase, each once"
        assert all(frame.json()["task_id"] != others["task_id"] for frame in feed.frames)
    finally:
        carol.client.close()


def test_resuming_after_any_id_gives_exactly_the_rest_and_live_equals_stored(stack):
    dave = _new_user(stack)
    live = _follow(stack, dave)
    try:
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            tasks = list(pool.map(lambda n: dave.submit(f"What is {n}+{n}?"), range(8)))
        for task in tasks:
            dave.wait_finished(task["task_id"])
            _wait_for(live, task["task_id"], "task.status", "COMPLETED")
        seen = list(live.frames)

        stored = read_stream(
            stack.url + FEED, {"X-API-Key": dave.api_key}, params={"last_event_id": 0}, stop_after=len(seen)
        )
        assert [(frame.id, frame.event, frame.data) for frame in stored] == [
            (frame.id, frame.event, frame.data) for frame in seen
        ], "what came live is what is stored, in the same order"

        middle = len(seen) // 2
        resumed = read_stream(
            stack.url + FEED,
            {"X-API-Key": dave.api_key, "Last-Event-ID": seen[middle].id},
            stop_after=len(seen) - middle - 1,
        )
        assert [frame.id for frame in resumed] == [frame.id for frame in seen[middle + 1 :]]
        by_parameter = read_stream(
            stack.url + FEED,
            {"X-API-Key": dave.api_key},
            params={"last_event_id": seen[-2].id},
            stop_after=1,
        )
        assert [frame.id for frame in by_parameter] == [seen[-1].id]
    finally:
        dave.client.close()


def test_the_feed_takes_a_query_credential_and_refuses_bad_requests(stack):
    erin = _new_user(stack)
    try:
        task = erin.submit()
        erin.wait_finished(task["task_id"])
        frames = read_stream(
            stack.url + FEED, {}, params={"api_key": erin.api_key, "last_event_id": 0}, stop_after=1
        )
        assert frames[0].event == "task.created" and frames[0].json()["task_id"] == task["task_id"]

        anonymous = httpx.get(stack.url + FEED, timeout=30)
        assert anonymous.status_code == 401 and anonymous.json()["code"] == "unauthorized"
        bad_resume = erin.client.get(FEED, headers={"Last-Event-ID": "later"})
        assert bad_resume.status_code == 400
        assert bad_resume.json()["details"][0]["field"] == "Last-Event-ID"

        created = erin.client.post(
            "/api/v1/auth/api-keys", json={"name": "sessions only", "scopes": ["sessions:read"]}
        )
        assert created.status_code == 201, created.text
        narrow = httpx.get(stack.url + FEED, headers={"X-API-Key": created.json()["api_key"]}, timeout=30)
        assert narrow.status_code == 403
        assert narrow.json()["details"] == [{"field": "scope", "message": "tasks:read"}]
    finally:
        erin.client.close()


def test_without_a_resume_point_the_feed_starts_now_at_a_position_a_client_resumes_from(stack):
    frank = _new_user(stack)
    try:
        earlier = frank.submit()
        frank.wait_finished(earlier["task_id"])
        with httpx.stream(
            "GET", stack.url + FEED, headers={"X-API-Key": frank.api_key}, timeout=60
        ) as response:
            assert response.status_code == 200
            frames = parse_frames(response.iter_lines())
            first = next(frame for frame in frames if frame.retry is None)
            # An id and nothing else: no event, but the client's last event id is set to it.
            assert first.event is None and first.data is None and int(first.id) > 0
            later = frank.submit()
            created = next(frame for frame in frames if frame.event is not None)
            assert created.event == "task.created" and created.json()["task_id"] == later["task_id"]
            assert int(created.id) > int(first.id)
        frank.wait_finished(later["task_id"])
        resumed = read_stream(
            stack.url + FEED, {"X-API-Key": frank.api_key, "Last-Event-ID": first.id}, stop_after=1
        )
        assert resumed[0].id == created.id, "resuming from the starting position misses nothing"
    finally:
        frank.client.close()


def test_an_orchestrator_stopping_ends_its_open_feeds_cleanly(tmp_path):
    stack = start_stack(tmp_path)
    try:
        key = create_api_key(stack.env, "stopping@example.com")
        feed = StreamFollower(stack.url + FEED, {"X-API-Key": key, "Last-Event-ID": "0"})
        feed.start()
        task = httpx.post(
            stack.url + "/api/v1/tasks", headers={"X-API-Key": key}, json={"query": "Hi"}, timeout=30
        )
        assert task.status_code == 200, task.text
        feed.first_frame.wait(60)
        # One more feed whose client left without a word: its watch ends at once, not at a ping.
        with httpx.stream("GET", stack.url + FEED, headers={"X-API-Key": key}, timeout=30) as dropped:
            next(dropped.iter_lines())

        assert stack.orchestrator.stop() == 0
        wait_until(feed.ended.is_set, timeout=30, what="the open feed to end")
        log = stack.orchestrator.log_path.read_text()
        assert "Exception in ASGI application" not in log and "Traceback" not in log, log
    finally:
        stack.stop()
