"""Turning errors into gRPC statuses: one table, static details, never exception text."""

import contextlib
import functools
import logging
from collections.abc import AsyncIterator
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any
from typing import TypeVar

import grpc

from orchestrator.domain.budgets import TOKENS_MINUTE
from orchestrator.errors import AlreadyExistsError
from orchestrator.errors import ApiKeyLimitError
from orchestrator.errors import BudgetExceededError
from orchestrator.errors import InsufficientScopeError
from orchestrator.errors import InvalidArgumentError
from orchestrator.errors import LoginThrottledError
from orchestrator.errors import NotFoundError
from orchestrator.errors import OrchestratorError
from orchestrator.errors import PermissionDeniedError
from orchestrator.errors import SessionBusyError
from orchestrator.errors import UnauthenticatedError
from orchestrator.errors import UnavailableError
from orchestrator.streaming import StreamOverflowError
from taskgate import wire

logger = logging.getLogger(__name__)

INTERNAL_MESSAGE = "Internal error"
OVERFLOW_MESSAGE = "Stream fell behind; call again with after_seq set to the last seq received"

_STATUS_CODES: tuple[tuple[type[OrchestratorError], grpc.StatusCode], ...] = (
    (InvalidArgumentError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (AlreadyExistsError, grpc.StatusCode.ALREADY_EXISTS),
    (UnauthenticatedError, grpc.StatusCode.UNAUTHENTICATED),
    (PermissionDeniedError, grpc.StatusCode.PERMISSION_DENIED),
    (UnavailableError, grpc.StatusCode.UNAVAILABLE),
    (LoginThrottledError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (BudgetExceededError, grpc.StatusCode.RESOURCE_EXHAUSTED),
)

# Errors a client must tell apart from the others of their status code: each one's reason travels
# in the trailing metadata wire.ERROR_CODE (a session_busy is a FAILED_PRECONDITION like any
# TaskStateError, which a client must not retry blindly, but it may once the turn ends).
_ERROR_CODES: tuple[tuple[type[OrchestratorError], str], ...] = (
    (SessionBusyError, wire.SESSION_BUSY),
    (LoginThrottledError, wire.LOGIN_THROTTLED),
    (ApiKeyLimitError, wire.API_KEY_LIMIT),
)

Response = TypeVar("Response")


def status_code(error: OrchestratorError) -> grpc.StatusCode:
    """Return the status code of a domain error."""
    for error_type, code in _STATUS_CODES:
        if isinstance(error, error_type):
            return code
    return grpc.StatusCode.FAILED_PRECONDITION


def trailing_metadata(error: OrchestratorError) -> tuple[tuple[str, str], ...]:
    """Return what a domain error adds to its status: the invalid field, or the error's reason (and scope).

    The gateway turns them into the error body's ``details`` and ``code`` (gateway.errors.error_for_rpc),
    and a ``retry_after_seconds`` the error carries into the ``Retry-After`` header.
    """
    if isinstance(error, InvalidArgumentError):
        return ((wire.INVALID_FIELD, error.field),)
    if isinstance(error, InsufficientScopeError):
        return ((wire.ERROR_CODE, wire.INSUFFICIENT_SCOPE), (wire.MISSING_SCOPE, error.scope))
    if isinstance(error, BudgetExceededError):
        return budget_metadata(error)
    metadata: list[tuple[str, str]] = []
    for error_type, reason in _ERROR_CODES:
        if isinstance(error, error_type):
            metadata.append((wire.ERROR_CODE, reason))
            break
    retry_after = getattr(error, "retry_after_seconds", None)
    if retry_after is not None:
        metadata.append((wire.RETRY_AFTER, str(retry_after)))
    return tuple(metadata)


def budget_metadata(error: BudgetExceededError) -> tuple[tuple[str, str], ...]:
    """Return a budget refusal's reason, when to retry, and the budget that refused it."""
    reason = wire.TOKEN_BUDGET_EXCEEDED if error.window == TOKENS_MINUTE else wire.COST_BUDGET_EXCEEDED
    return (
        (wire.ERROR_CODE, reason),
        (wire.RETRY_AFTER, str(error.retry_after)),
        (wire.BUDGET_WINDOW, error.window),
        (wire.BUDGET_SCOPE, error.scope),
        (wire.BUDGET_LIMIT, _number(error.limit)),
        (wire.BUDGET_USED, _number(error.used)),
        (wire.BUDGET_RESET, str(int(error.resets_at.timestamp()))),
    )


def _number(value: float) -> str:
    """Return tokens as a whole number and USD to the millionth, without exponent or trailing zeros."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6f}".rstrip("0").rstrip(".")


async def abort_with_status(context: grpc.aio.ServicerContext, error: Exception, method: str) -> None:
    """End the call with the status of an error that escaped ``method`` (an abort passes through as is).

    A domain error ends with its code, static message and trailing metadata; anything else is
    logged and ends INTERNAL. Always raises (``grpc.aio.AbortError``).
    """
    if isinstance(error, grpc.aio.AbortError):
        raise error
    if isinstance(error, OrchestratorError):
        metadata = trailing_metadata(error)
        if metadata:
            context.set_trailing_metadata(metadata)
        await context.abort(status_code(error), error.public_message)
    if isinstance(error, StreamOverflowError):
        await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, OVERFLOW_MESSAGE)
    logger.error("unexpected error in %s", method, exc_info=error, extra={"rpc": method})
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_MESSAGE)


@contextlib.asynccontextmanager
async def error_statuses(context: grpc.aio.ServicerContext, method: str) -> AsyncIterator[None]:
    """End the call with the status of whatever error escapes the block; an abort passes through."""
    try:
        yield
    except Exception as ex:
        await abort_with_status(context, ex, method)
        raise


def unary_errors(
    method: Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Response]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], Awaitable[Response]]:
    """Wrap a unary RPC so domain errors become their status and anything else INTERNAL."""
    name = method.__name__

    @functools.wraps(method)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> Response:
        try:
            return await method(self, request, context)
        except Exception as ex:
            await abort_with_status(context, ex, name)
            raise

    return handler


def streaming_errors(
    method: Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[Response]],
) -> Callable[[Any, Any, grpc.aio.ServicerContext], AsyncIterator[Response]]:
    """Wrap a server-streaming RPC so domain errors become their status and anything else INTERNAL."""

    @functools.wraps(method)
    async def handler(self: Any, request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Response]:
        async with (
            error_statuses(context, method.__name__),
            contextlib.aclosing(method(self, request, context)) as responses,
        ):
            async for response in responses:
                yield response

    return handler
