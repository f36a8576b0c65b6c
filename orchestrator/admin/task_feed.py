"""``GET /stream/tasks``: the caller's task feed as Server-Sent Events (``orchestrator.task_feed``).

Each change is one frame: ``id:`` its change number (what a client resumes after with
``Last-Event-ID``), ``event:`` its kind (``task.created``, ``task.status``, ``task.progress``,
``approval.requested``, ``approval.decided``), ``data:`` its JSON. The same checks as the workflow
streams: the service token, the caller's identity, the ``tasks:read`` scope.
"""

import asyncio
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable

import falcon
import falcon.asgi

from orchestrator.admin.disconnect import disconnect_waiter
from orchestrator.admin.sse import PING_FRAME
from orchestrator.admin.sse import RETRY_FRAME
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.stream_metrics import counted
from orchestrator.admin.stream_query import authorised_caller
from orchestrator.admin.stream_query import resume_point
from orchestrator.domain.task_changes import TaskChange
from orchestrator.events import compact_json
from orchestrator.task_feed import FeedFollower
from orchestrator.task_feed import FeedStart
from orchestrator.task_feed import TaskFeed
from taskgate.rfc3339 import format_datetime


def change_data(change: TaskChange) -> dict[str, object]:
    """Return a change's ``data`` JSON object; ``progress``, ``approval_id``, ``decision`` only when set."""
    data: dict[str, object] = {
        "task_id": change.task_id,
        "workflow_id": change.task_id,
        "session_id": change.session_id,
        "status": change.status,
    }
    if change.progress is not None:
        data["progress"] = change.progress
    if change.approval_id is not None:
        data["approval_id"] = change.approval_id
    if change.decision is not None:
        data["decision"] = change.decision
    data["timestamp"] = format_datetime(change.created_at)
    return data


def change_frame(change: TaskChange) -> bytes:
    """Return a change's SSE frame."""
    data = compact_json(change_data(change))
    return f"id: {change.change_id}\nevent: {change.kind}\ndata: {data}\n\n".encode()


def start_frame(start: FeedStart) -> bytes:
    """Return the frame of a feed's starting position: an id and nothing to dispatch.

    A client's last event id becomes the position (an EventSource sets it without firing an
    event), so a reconnection after a quiet drop resumes from where the feed started.
    """
    return f"id: {start.change_id}\n\n".encode()


async def feed_body(
    follower: FeedFollower, wait_for_disconnect: Callable[[], Awaitable[None]]
) -> AsyncIterator[bytes]:
    """Yield the retry hint, then a frame per change and a ping whenever the feed idles.

    A task per stream waits for the client to leave and stops the follower, so the watch ends at
    once rather than at the next ping's failed write.
    """
    yield RETRY_FRAME
    watcher = asyncio.ensure_future(wait_for_disconnect())
    watcher.add_done_callback(lambda _: follower.stop())
    changes = follower.changes()
    try:
        async for item in changes:
            if item is None:
                yield PING_FRAME
            elif isinstance(item, FeedStart):
                yield start_frame(item)
            else:
                yield change_frame(item)
    finally:
        watcher.cancel()
        await changes.aclose()


class TaskFeedResource:
    """Serve a caller's task feed: replayed after ``Last-Event-ID`` (or ``last_event_id``), then live.

    Without a resume point it starts now (``start_frame``); ``last_event_id=0`` replays all kept.
    """

    def __init__(
        self, feed: TaskFeed, service_token: str, ping_seconds: float, metrics: StreamMetrics
    ) -> None:
        self._feed = feed
        self._service_token = service_token.encode("utf-8")
        self._ping_seconds = ping_seconds
        self._metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Check the caller and the resume point, then stream."""
        caller = authorised_caller(req, self._service_token)
        after_id = resume_point(req)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        follower = self._feed.follow(caller.user_id, after_id, self._ping_seconds)
        resp.stream = counted(feed_body(follower, disconnect_waiter(req)), self._metrics, "feed")
