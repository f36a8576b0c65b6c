"""The admin ASGI app: ``/health``, ``/metrics`` and the streams (docs/internals.md).

The streams: ``/stream/sse``, ``/stream/ws`` (a workflow's events) and ``/stream/tasks`` (the task feed).

The gateway reverse-proxies client streams here with the service token and the caller's user id.
Errors are JSON ``{"error", "code"}`` sent before any stream byte.
"""

import asyncio
import json
import logging
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi

from orchestrator.admin.disconnect import RECEIVE_SCOPE_KEY
from orchestrator.admin.disconnect import disconnect_waiter
from orchestrator.admin.server import AdminServer
from orchestrator.admin.sse import sse_body
from orchestrator.admin.sse_connection import SseStreams
from orchestrator.admin.stream_metrics import FELL_BEHIND
from orchestrator.admin.stream_metrics import WRITE_STALLED
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.admin.stream_metrics import counted
from orchestrator.admin.stream_query import authorised_stream_query
from orchestrator.admin.stream_query import error_body
from orchestrator.admin.task_feed import TaskFeedResource
from orchestrator.admin.websocket import WebSocketConnections
from orchestrator.admin.websocket import WebSocketStreamResource
from orchestrator.settings import OrchestratorSettings
from orchestrator.streaming import StreamSource
from taskgate import wire

logger = logging.getLogger(__name__)


class HealthResource:
    """``GET /health``: the process answers; no auth, no dependencies."""

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Report healthy."""
        resp.media = {"status": "healthy"}


class MetricsResource:
    """``GET /metrics``: open streams, cut-offs and bus subscriptions as Prometheus text; no auth."""

    def __init__(self, metrics: StreamMetrics) -> None:
        self._metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Render the metrics."""
        resp.content_type = "text/plain; version=0.0.4; charset=utf-8"
        resp.data = self._metrics.exposition()


class StreamResource:
    """``GET /stream/sse``: one workflow's events, replayed then live, as Server-Sent Events."""

    def __init__(
        self, engine: StreamSource, service_token: str, ping_seconds: float, metrics: StreamMetrics
    ) -> None:
        self._engine = engine
        self._service_token = service_token.encode("utf-8")
        self._ping_seconds = ping_seconds
        self._metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Check the caller and the parameters, then stream."""
        query = await authorised_stream_query(req, self._engine, self._service_token)
        resp.status = falcon.HTTP_200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        follower = self._engine.follow(query.workflow_id, query.after_seq, query.types, self._ping_seconds)
        body = sse_body(follower, disconnect_waiter(req), lambda: self._metrics.cut_off(FELL_BEHIND))
        resp.stream = counted(body, self._metrics, "sse")


def _serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    """Write every error as ``{"error": <static message>, "code": <snake_case>}``."""
    resp.content_type = falcon.MEDIA_JSON
    resp.text = json.dumps(error_body(exception))


class WriteStalledError(Exception):
    """A response write made no progress for the write timeout: the client stopped reading."""


class _WatchConnection:
    """ASGI wrapper that lets a streaming responder see its client leave, and cuts off stalled ones.

    Falcon does not hand ``receive`` to responders, and a streamed body is otherwise only found
    dead when the next write fails, which for an idle stream is up to a ping interval later.

    A client that stops reading fills the socket buffers, and then a body write waits for it
    forever while the stream holds its subscription. A write that makes no progress within
    ``write_timeout_seconds`` ends the response instead: the connection is closed (uvicorn's
    "returned without completing response" is expected then and filtered in admin.server).
    """

    def __init__(self, app: falcon.asgi.App, metrics: StreamMetrics, write_timeout_seconds: float) -> None:
        self.app = app
        self._metrics = metrics
        self._write_timeout = write_timeout_seconds

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return

        async def send_or_give_up(message: dict[str, Any]) -> None:
            if message["type"] != "http.response.body":
                await send(message)
                return
            try:
                # A timer per write, not a task (asyncio.wait_for makes one per call).
                async with asyncio.timeout(self._write_timeout):
                    await send(message)
            except TimeoutError:
                raise WriteStalledError from None

        try:
            await self.app({**scope, RECEIVE_SCOPE_KEY: receive}, receive, send_or_give_up)
        except WriteStalledError:
            self._metrics.cut_off(WRITE_STALLED)
            logger.warning("stream cut off: the client stopped reading", extra={"path": scope.get("path")})


def create_admin_app(
    engine: StreamSource,
    service_token: str,
    metrics: StreamMetrics,
    ping_seconds: float,
    write_timeout_seconds: float,
) -> Callable[..., Awaitable[None]]:
    """Build the admin ASGI app."""
    app = falcon.asgi.App()
    app.set_error_serializer(_serialize_error)
    app.add_route("/health", HealthResource())
    app.add_route("/metrics", MetricsResource(metrics))
    app.add_route(wire.ADMIN_SSE_PATH, StreamResource(engine, service_token, ping_seconds, metrics))
    app.add_route(wire.ADMIN_WEBSOCKET_PATH, WebSocketStreamResource(engine, service_token, metrics))
    app.add_route(
        wire.ADMIN_TASK_FEED_PATH, TaskFeedResource(engine.feed, service_token, ping_seconds, metrics)
    )
    connections = WebSocketConnections(app, metrics, write_timeout_seconds)
    return _WatchConnection(connections, metrics, write_timeout_seconds)


def admin_server(
    streams: StreamSource,
    settings: OrchestratorSettings,
    watcher_count: Callable[[], int],
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
) -> AdminServer:
    """Return the admin server of the orchestrator or of a stream process, set up from the settings.

    ``GET /stream/sse`` is served on the lean path (``admin.sse_connection``), every other route
    by the admin app; both count in the same metrics.
    """
    metrics = StreamMetrics(watcher_count)
    app = create_admin_app(
        streams,
        settings.service_token,
        metrics,
        ping_seconds=settings.sse_ping_seconds,
        write_timeout_seconds=settings.stream_write_timeout_seconds,
    )
    sse = SseStreams(
        streams,
        settings.service_token,
        metrics,
        ping_seconds=settings.sse_ping_seconds,
        write_timeout_seconds=settings.stream_write_timeout_seconds,
    )
    return AdminServer(
        app,
        host,
        port,
        ping_seconds=settings.sse_ping_seconds,
        ssl_context=settings.tls.ssl_context() if settings.tls else None,
        reuse_port=reuse_port,
        sse=sse,
        end_streams=streams.feed.end_all,
    )
