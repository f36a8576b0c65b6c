"""``GET /stream/tasks``: the caller's task feed as Server-Sent Events (``orchestrator.task_feed``).

Each change is one frame: ``id:`` its change number (what a client resumes after with
``Last-Event-ID``), ``event:`` its kind (``task.created``, ``task.status``, ``task.progress``,
``approval.requested``, ``approval.decided``), ``data:`` its JSON. The same checks as the workflow
streams: the service token, the caller's identity, the ``tasks:read`` scope.
"""

from collections.abc import AsyncIterator

import falcon
import falcon.asgi

from orchestrator.admin.sse import PING_FRAME
from orchestrator.admin.sse import RETRY_FRAME
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.stream_metrics import counted
from orchestrator.admin.stream_query import authorised_caller
from orchestrator.admin.stream_query import last_event_id
from orchestrator.domain.task_changes import TaskChange
from orchestrator.events import compact_json
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


async def feed_body(changes: AsyncIterator[TaskChange | None]) -> AsyncIterator[bytes]:
    """Yield the retry hint, then a frame per change and a ping whenever the feed idles."""
    yield RETRY_FRAME
    try:
        async for change in changes:
            yield PING_FRAME if change is None else change_frame(change)
    finally:
        await changes.aclose()


class TaskFeedResource:
    """Serve a caller's task feed: replayed after ``Last-Event-ID`` (or ``last_event_id``), then live."""

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
        after_id = last_event_id(req)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        changes = self._feed.follow(caller.user_id, after_id, self._ping_seconds)
        resp.stream = counted(feed_body(changes), self._metrics, "feed")
