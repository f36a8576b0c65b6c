"""The admin ASGI app: ``/health``, ``/metrics`` and ``/stream/sse`` (docs/internals.md, admin server).

The gateway reverse-proxies client streams here with the service token and the caller's user id.
Errors are JSON ``{"error", "code"}`` sent before any stream byte.
"""

import asyncio
import contextlib
import hmac
import json
import logging
import re
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import falcon
import falcon.asgi

from orchestrator.admin.sse import event_frames
from orchestrator.admin.sse import sse_body
from orchestrator.admin.stream_metrics import FELL_BEHIND
from orchestrator.admin.stream_metrics import WRITE_STALLED
from orchestrator.admin.stream_metrics import StreamMetrics
from orchestrator.caller import Caller
from orchestrator.engine.tasks import TaskEngine
from orchestrator.errors import TaskNotFoundError
from orchestrator.identifiers import is_valid_id
from taskgate import wire

logger = logging.getLogger(__name__)

# The ASGI scope key under which the app finds the connection's ``receive`` callable.
RECEIVE_SCOPE_KEY = "taskgate.receive"
_MAX_EVENT_ID_DIGITS = 18
_EVENT_TYPE_PATTERN = re.compile(r"^[A-Za-z_.]{1,64}$")
_MAX_TYPES = 64
_DEFAULT_CODES = {400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed"}


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
        self, engine: TaskEngine, service_token: str, ping_seconds: float, metrics: StreamMetrics
    ) -> None:
        self._engine = engine
        self._service_token = service_token.encode("utf-8")
        self._ping_seconds = ping_seconds
        self._metrics = metrics

    async def on_get(self, req: falcon.asgi.Request, resp: falcon.asgi.Response) -> None:
        """Check the caller and the parameters, then stream."""
        presented = (req.get_header(wire.SERVICE_TOKEN) or "").encode("utf-8")
        if not hmac.compare_digest(presented, self._service_token):
            raise falcon.HTTPUnauthorized(description="Service token required", code="unauthorized")
        user_id = (req.get_header(wire.USER_ID) or "").strip()
        if not user_id:
            raise falcon.HTTPUnauthorized(description="Caller identity required", code="unauthorized")
        workflow_id = req.get_param("workflow_id") or ""
        if not is_valid_id(workflow_id):
            raise falcon.HTTPBadRequest(
                description="workflow_id is missing or malformed", code="invalid_request"
            )
        after_seq = _last_event_id(req)
        types = _types(req.get_param("types"))
        caller = Caller(user_id=user_id, tenant_id=(req.get_header(wire.TENANT_ID) or "").strip())
        try:
            await self._engine.require_workflow(caller, workflow_id)
        except TaskNotFoundError:
            raise falcon.HTTPNotFound(description="Workflow not found", code="not_found") from None

        resp.status = falcon.HTTP_200
        resp.content_type = "text/event-stream"
        resp.set_header("Cache-Control", "no-cache")
        resp.set_header("X-Accel-Buffering", "no")
        frames = event_frames(
            self._engine.follow(workflow_id, after_seq, types), lambda: self._metrics.cut_off(FELL_BEHIND)
        )
        resp.stream = _counted(
            sse_body(frames, _disconnect_waiter(req), self._ping_seconds), self._metrics, "sse"
        )


async def _counted(
    body: AsyncIterator[bytes], metrics: StreamMetrics, transport: str
) -> AsyncIterator[bytes]:
    """Yield a stream's body while counting it as open."""
    with metrics.stream_open(transport):
        async with contextlib.aclosing(body):
            async for chunk in body:
                yield chunk


def _last_event_id(req: falcon.asgi.Request) -> int:
    """Return the resume point: the Last-Event-ID header, else the last_event_id parameter, else 0."""
    raw = (req.get_header("Last-Event-ID") or "").strip() or (req.get_param("last_event_id") or "").strip()
    if not raw:
        return 0
    if not raw.isdigit() or not raw.isascii() or len(raw) > _MAX_EVENT_ID_DIGITS:
        raise falcon.HTTPBadRequest(
            description="last_event_id must be a non-negative integer", code="invalid_request"
        )
    return int(raw)


def _types(raw: str | None) -> list[str] | None:
    """Return the event types a ``types=A,B`` parameter asks for; None means every type."""
    if not raw:
        return None
    types = [name.strip().upper() for name in raw.split(",") if name.strip()]
    if len(types) > _MAX_TYPES or not all(_EVENT_TYPE_PATTERN.match(name) for name in types):
        raise falcon.HTTPBadRequest(
            description="types must be a comma-separated list of event types", code="invalid_request"
        )
    return types or None


def _disconnect_waiter(req: falcon.asgi.Request) -> Callable[[], Awaitable[None]]:
    """Return a coroutine function that returns once the client has gone away."""
    receive = req.scope.get(RECEIVE_SCOPE_KEY)

    async def wait_for_disconnect() -> None:
        if receive is None:
            # Served without the wrapper: a disconnect is noticed only when a write fails.
            await asyncio.Event().wait()
        while (await receive())["type"] != "http.disconnect":
            pass

    return wait_for_disconnect


def _serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    """Write every error as ``{"error": <static message>, "code": <snake_case>}``."""
    resp.content_type = falcon.MEDIA_JSON
    body = {
        "error": exception.description or exception.title,
        "code": exception.code or _DEFAULT_CODES.get(exception.status_code, "error"),
    }
    resp.text = json.dumps(body)


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
                await asyncio.wait_for(send(message), self._write_timeout)
            except TimeoutError:
                raise WriteStalledError from None

        try:
            await self.app({**scope, RECEIVE_SCOPE_KEY: receive}, receive, send_or_give_up)
        except WriteStalledError:
            self._metrics.cut_off(WRITE_STALLED)
            logger.warning("stream cut off: the client stopped reading", extra={"path": scope.get("path")})


def create_admin_app(
    engine: TaskEngine,
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
    app.add_route("/stream/sse", StreamResource(engine, service_token, ping_seconds, metrics))
    return _WatchConnection(app, metrics, write_timeout_seconds)
