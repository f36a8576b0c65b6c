"""What a stream request asks for, checked the same way for ``/stream/sse`` and ``/stream/ws``.

The gateway forwards each client stream with the service token and the caller's identity; the
checks below raise the ``falcon.HTTPError`` to refuse with, whose ``{"error", "code"}`` body is
``error_body``.
"""

import dataclasses
import hmac
from typing import Any

import falcon
import falcon.asgi

from orchestrator.caller import Caller
from orchestrator.errors import TaskNotFoundError
from orchestrator.streaming import StreamSource
from taskgate import wire
from taskgate.identifiers import is_valid_id
from taskgate.scopes import STREAM_NEEDS
from taskgate.scopes import missing_scope
from taskgate.scopes import parse_scopes_header
from taskgate.stream_parameters import parse_last_event_id
from taskgate.stream_parameters import parse_types

_DEFAULT_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
}


class InsufficientScopeRefusal(falcon.HTTPForbidden):
    """403: the caller's API key lacks the scope a stream needs; the body names it in ``scope``."""

    def __init__(self, scope: str) -> None:
        super().__init__(description=f"The API key lacks the scope {scope}", code=wire.INSUFFICIENT_SCOPE)
        self.scope = scope


@dataclasses.dataclass(frozen=True)
class StreamQuery:
    """A checked stream request: the workflow, the resume point, and the event types wanted (None: all)."""

    workflow_id: str
    after_seq: int
    types: list[str] | None


async def authorised_stream_query(
    req: falcon.asgi.Request, engine: StreamSource, service_token: bytes
) -> StreamQuery:
    """Check the service token, the caller, the parameters and the caller's ownership of the workflow.

    Raises 401 without the service token or the caller's identity, 403 when the caller's API key
    lacks the stream's scope (``taskgate.scopes.STREAM_NEEDS``), 400 for bad parameters, and 404
    when the workflow is unknown or someone else's.
    """
    caller = authorised_caller(req, service_token)
    workflow_id = req.get_param("workflow_id") or ""
    if not is_valid_id(workflow_id):
        raise falcon.HTTPBadRequest(description="workflow_id is missing or malformed", code="invalid_request")
    after_seq = last_event_id(req)
    types = _types(req.get_param("types"))
    try:
        await engine.require_workflow(caller, workflow_id)
    except TaskNotFoundError:
        raise falcon.HTTPNotFound(description="Workflow not found", code="not_found") from None
    return StreamQuery(workflow_id=workflow_id, after_seq=after_seq, types=types)


def authorised_caller(req: falcon.asgi.Request, service_token: bytes) -> Caller:
    """Return the caller a stream is for, after checking the service token and the stream's scope.

    Raises 401 without the service token or the caller's identity, 403 when the caller's API key
    lacks the scope streams need (``taskgate.scopes.STREAM_NEEDS``).
    """
    presented = (req.get_header(wire.SERVICE_TOKEN) or "").encode("utf-8")
    if not hmac.compare_digest(presented, service_token):
        raise falcon.HTTPUnauthorized(description="Service token required", code="unauthorized")
    user_id = (req.get_header(wire.USER_ID) or "").strip()
    if not user_id:
        raise falcon.HTTPUnauthorized(description="Caller identity required", code="unauthorized")
    scope = missing_scope(parse_scopes_header(req.get_header(wire.SCOPES)), STREAM_NEEDS)
    if scope is not None:
        raise InsufficientScopeRefusal(scope)
    return Caller(user_id=user_id, tenant_id=(req.get_header(wire.TENANT_ID) or "").strip())


def error_body(exception: falcon.HTTPError) -> dict[str, Any]:
    """Return the admin server's error body: ``{"error": <static message>, "code": <snake_case>}``.

    A refusal for a missing scope adds ``scope``, naming it.
    """
    body = {
        "error": exception.description or exception.title,
        "code": exception.code or _DEFAULT_CODES.get(exception.status_code, "error"),
    }
    if isinstance(exception, InsufficientScopeRefusal):
        body["scope"] = exception.scope
    return body


def last_event_id(req: falcon.asgi.Request) -> int:
    """Return the resume point: the Last-Event-ID header, else the last_event_id parameter, else 0."""
    raw = (req.get_header("Last-Event-ID") or "").strip() or req.get_param("last_event_id") or "0"
    try:
        return parse_last_event_id(raw)
    except ValueError as ex:
        raise falcon.HTTPBadRequest(description=f"last_event_id {ex}", code="invalid_request") from None


def _types(raw: str | None) -> list[str] | None:
    """Return the event types a ``types=A,B`` parameter asks for; None means every type."""
    try:
        types = parse_types(raw)
    except ValueError as ex:
        raise falcon.HTTPBadRequest(description=f"types {ex}", code="invalid_request") from None
    return list(types) or None
