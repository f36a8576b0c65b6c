"""The one error body, the one gRPC-to-HTTP table and the error handlers that use them.

Every error leaves the gateway as ``{"error", "code", "request_id"[, "details"]}`` (API.md). The
``error`` text is always a static human string: gRPC details are shown only for the codes whose
details the orchestrator writes for clients (docs/internals.md), never an exception text.
"""

import dataclasses
import http
import logging
import re
from typing import Any

import falcon
import grpc

from gateway import json_body
from gateway.metrics import UPSTREAM_ERRORS
from taskgate import wire
from taskgate.scopes import is_known_scope

logger = logging.getLogger(__name__)

UNAUTHORIZED_CHALLENGE = 'Bearer realm="taskgate"'
RETRY_AFTER_SECONDS = "1"
_MAX_DETAIL_LENGTH = 500
_MAX_FIELD_LENGTH = 64
# The longest wait the orchestrator may ask a client for (a day); anything else is ignored.
_MAX_RETRY_AFTER_SECONDS = 86_400


class ApiError(falcon.HTTPError):
    """An HTTP error carrying the message, code and optional field details of the error body."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        details: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(status, description=message, headers=headers)
        self.message = message
        self.error_code = code
        self.details = details
        # Extra members of the error body, such as the rate-limited ``window``.
        self.fields = fields


class ValidationError(ApiError):
    """One or more request fields are invalid; ``details`` names each one."""

    def __init__(self, details: list[dict[str, str]]) -> None:
        super().__init__(400, "Request validation failed", "validation_failed", details=details)


@dataclasses.dataclass(frozen=True)
class _GrpcMapping:
    status: int
    code: str
    message: str
    shows_details: bool = False


# Paired as google/rpc/code.proto and google.api_core.exceptions pair them. CANCELLED is 499
# ("client closed request") there; here the gateway is the gRPC client and its own client is still
# waiting, so an upstream cancellation is reported as the orchestrator being unavailable.
_GRPC_TO_HTTP = {
    grpc.StatusCode.INVALID_ARGUMENT: _GrpcMapping(400, "validation_failed", "Invalid request", True),
    grpc.StatusCode.OUT_OF_RANGE: _GrpcMapping(400, "bad_request", "Value out of range"),
    grpc.StatusCode.UNAUTHENTICATED: _GrpcMapping(401, "unauthorized", "Invalid credentials"),
    grpc.StatusCode.PERMISSION_DENIED: _GrpcMapping(403, "forbidden", "Forbidden", True),
    grpc.StatusCode.NOT_FOUND: _GrpcMapping(404, "not_found", "Not found", True),
    grpc.StatusCode.ALREADY_EXISTS: _GrpcMapping(409, "conflict", "Already exists", True),
    grpc.StatusCode.ABORTED: _GrpcMapping(409, "conflict", "Conflict", True),
    grpc.StatusCode.FAILED_PRECONDITION: _GrpcMapping(409, "conflict", "Conflict", True),
    grpc.StatusCode.RESOURCE_EXHAUSTED: _GrpcMapping(429, "rate_limited", "Resource exhausted", True),
    grpc.StatusCode.CANCELLED: _GrpcMapping(503, "unavailable", "Orchestrator unavailable"),
    grpc.StatusCode.UNIMPLEMENTED: _GrpcMapping(501, "not_implemented", "Not implemented"),
    grpc.StatusCode.UNAVAILABLE: _GrpcMapping(503, "unavailable", "Orchestrator unavailable"),
    grpc.StatusCode.DEADLINE_EXCEEDED: _GrpcMapping(504, "upstream_timeout", "Orchestrator timed out"),
}
_GRPC_FALLBACK = _GrpcMapping(500, "internal_error", "Internal server error")

# Messages and codes for errors Falcon raises itself (unknown route, wrong method, …).
_STATUS_DEFAULTS = {
    400: ("Bad request", "bad_request"),
    401: ("Authentication required", "unauthorized"),
    403: ("Forbidden", "forbidden"),
    404: ("Not found", "not_found"),
    405: ("Method not allowed", "method_not_allowed"),
    409: ("Conflict", "conflict"),
    413: ("Request body too large", "payload_too_large"),
    415: ("Content-Type must be application/json", "unsupported_media_type"),
    429: ("Rate limit exceeded", "rate_limited"),
    500: ("Internal server error", "internal_error"),
    501: ("Not implemented", "not_implemented"),
    503: ("Service unavailable", "unavailable"),
    504: ("Upstream timed out", "upstream_timeout"),
}


def error_for_status(status: int) -> ApiError:
    """Return the gateway's standard error for an HTTP status, with the headers that status needs."""
    message, code = _default_message_and_code(status)
    return ApiError(status, message, code, headers=_retry_after(status))


def unavailable(message: str) -> ApiError:
    """Return the 503 ``unavailable``, with Retry-After, for a store the gateway cannot reach now."""
    return ApiError(503, message, "unavailable", headers=_retry_after(503))


def insufficient_scope(scope: str) -> ApiError:
    """Return the 403 for a caller whose API key lacks ``scope``, named in ``scope`` and ``details``."""
    return ApiError(
        403,
        f"The API key lacks the scope {scope}",
        wire.INSUFFICIENT_SCOPE,
        details=[{"field": "scope", "message": scope}],
        fields={"scope": scope},
    )


def rpc_code(ex: grpc.RpcError) -> grpc.StatusCode:
    """Return the status code of a failed call (UNKNOWN for an RpcError that carries none)."""
    code = getattr(ex, "code", None)
    return code() if callable(code) else grpc.StatusCode.UNKNOWN


def orchestrator_unavailable() -> ApiError:
    """Return the 503 for an orchestrator (gRPC or admin stream server) that cannot be reached."""
    return _error_for_mapping(_GRPC_TO_HTTP[grpc.StatusCode.UNAVAILABLE])


def orchestrator_timeout() -> ApiError:
    """Return the 504 for an orchestrator that did not answer in time."""
    return _error_for_mapping(_GRPC_TO_HTTP[grpc.StatusCode.DEADLINE_EXCEEDED])


def error_for_rpc(ex: grpc.RpcError) -> ApiError:
    """Translate a failed gRPC call into the HTTP error the client sees (the one table).

    For the codes whose details are shown, the trailing metadata may refine the answer: the
    invalid field of an INVALID_ARGUMENT becomes ``details``, and a reason the orchestrator names
    (``session_busy``, one of ``wire.ERROR_CODES``) becomes the body's ``code``.
    """
    mapping = _GRPC_TO_HTTP.get(rpc_code(ex), _GRPC_FALLBACK)
    trailing = _trailing_metadata(ex)
    retry_after = _retry_after_of(trailing, mapping.status)
    details = getattr(ex, "details", None)
    if mapping.shows_details and callable(details):
        text = details()
        if isinstance(text, str) and text.strip():
            error = _error_for_mapping(mapping, text.strip()[:_MAX_DETAIL_LENGTH], retry_after)
            field = trailing.get(wire.INVALID_FIELD) if mapping.status == 400 else None
            if field and len(field) <= _MAX_FIELD_LENGTH:
                error.details = [{"field": field, "message": error.message}]
            reason = trailing.get(wire.ERROR_CODE)
            if reason == wire.INSUFFICIENT_SCOPE and is_known_scope(trailing.get(wire.MISSING_SCOPE)):
                return insufficient_scope(trailing[wire.MISSING_SCOPE])
            if reason in wire.ERROR_CODES:
                error.error_code = reason
            if reason in wire.BUDGET_ERROR_CODES and mapping.status == 429:
                _describe_budget(error, trailing)
            return error
    return _error_for_mapping(mapping, retry_after=retry_after)


def _retry_after_of(trailing: dict[str, str], status: int) -> dict[str, str] | None:
    """Return the Retry-After of a 429 or 503 whose call named a wait (``wire.RETRY_AFTER``), else None."""
    value = trailing.get(wire.RETRY_AFTER, "")
    if (
        status not in (429, 503)
        or not (value.isascii() and value.isdigit())
        or not 0 < int(value) <= _MAX_RETRY_AFTER_SECONDS
    ):
        return None
    return {"Retry-After": str(int(value))}


# A budget refusal's trailing metadata and the response header each becomes (docs/api.md).
_BUDGET_HEADERS = (
    (wire.RETRY_AFTER, "Retry-After"),
    (wire.BUDGET_WINDOW, "X-Budget-Window"),
    (wire.BUDGET_SCOPE, "X-Budget-Scope"),
    (wire.BUDGET_LIMIT, "X-Budget-Limit"),
    (wire.BUDGET_USED, "X-Budget-Used"),
    (wire.BUDGET_RESET, "X-Budget-Reset"),
)
_BUDGET_WINDOWS = ("tokens_minute", "cost_day")
_BUDGET_VALUE = re.compile(r"[A-Za-z0-9_.]{1,32}")


def _describe_budget(error: ApiError, trailing: dict[str, str]) -> None:
    """Give a budget's 429 its ``window`` in the body and the budget's headers (well-formed values only)."""
    headers = {
        header: trailing[key]
        for key, header in _BUDGET_HEADERS
        if _BUDGET_VALUE.fullmatch(trailing.get(key, "")) is not None
    }
    headers.setdefault("Retry-After", RETRY_AFTER_SECONDS)
    error.headers = headers
    window = trailing.get(wire.BUDGET_WINDOW)
    if window in _BUDGET_WINDOWS:
        error.fields = {"window": window}


def _trailing_metadata(ex: grpc.RpcError) -> dict[str, str]:
    """Return the text values of a failed call's trailing metadata, the first of each key."""
    trailing = getattr(ex, "trailing_metadata", None)
    metadata = trailing() if callable(trailing) else None
    values: dict[str, str] = {}
    for key, value in metadata or ():
        if isinstance(value, str):
            values.setdefault(key, value)
    return values


def serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    """Write the single error body of API.md for any HTTPError."""
    if isinstance(exception, ApiError):
        message, code, details = exception.message, exception.error_code, exception.details
        fields = exception.fields or {}
    else:
        message, code = _default_message_and_code(exception.status_code)
        details, fields = None, {}
    body: dict[str, Any] = {"error": message, "code": code, **fields}
    body["request_id"] = req.context.get("request_id")
    if details:
        body["details"] = details
    resp.data = json_body.dumps(body)
    resp.content_type = falcon.MEDIA_JSON
    if exception.status_code == 401:
        resp.set_header("WWW-Authenticate", UNAUTHORIZED_CHALLENGE)


def handle_rpc_error(req: falcon.Request, resp: falcon.Response, ex: grpc.RpcError, params: dict) -> None:
    """Error handler: count a failed orchestrator call and answer it through the gRPC-to-HTTP table."""
    UPSTREAM_ERRORS.labels(code=rpc_code(ex).name).inc()
    error = error_for_rpc(ex)
    if error.status_code >= 500:
        logger.warning(
            "orchestrator call failed",
            extra={"grpc_code": rpc_code(ex).name, "request_id": req.context.get("request_id")},
        )
    raise error


def handle_unexpected_error(req: falcon.Request, resp: falcon.Response, ex: Exception, params: dict) -> None:
    """Last-resort error handler: log the stack and answer a static 500."""
    logger.error(
        "unhandled exception",
        exc_info=(type(ex), ex, ex.__traceback__),
        extra={"request_id": req.context.get("request_id")},
    )
    raise error_for_status(500)


def _error_for_mapping(
    mapping: _GrpcMapping, message: str | None = None, retry_after: dict[str, str] | None = None
) -> ApiError:
    return ApiError(
        mapping.status,
        message or mapping.message,
        mapping.code,
        headers=retry_after or _retry_after(mapping.status),
    )


def _retry_after(status: int) -> dict[str, str] | None:
    """Return the Retry-After header a 503 carries (a client may try again shortly), else None."""
    return {"Retry-After": RETRY_AFTER_SECONDS} if status == 503 else None


def _default_message_and_code(status: int) -> tuple[str, str]:
    if status in _STATUS_DEFAULTS:
        return _STATUS_DEFAULTS[status]
    try:
        phrase = http.HTTPStatus(status).phrase
    except ValueError:
        return _STATUS_DEFAULTS[500 if status >= 500 else 400]
    return phrase.capitalize(), re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_")
