"""Rate limits for services calling the gRPC API directly with an API key, as the gateway limits HTTP.

A call with ``x-api-key`` (and no service token) counts in its user's windows, and in its key's
sub-limit if the key has one (``taskgate.rate_limits.per_user``, the gateway's rule), before its
servicer runs (after the scope check, with the caller it resolved); over a limit it ends
RESOURCE_EXHAUSTED with trailing metadata ``taskgate-error-code: rate_limited``, ``retry-after``
(seconds), the refusing window and whose it is, and the ``x-ratelimit-*`` / ``ratelimit*`` fields
the gateway sends as headers. A streaming call counts once, when it opens.

Not counted here: calls carrying the service token (the gateway's, each already counted for its
HTTP request), calls without an API key (refused by the servicer unless public), health checks
and reflection. A key the resolver refuses passes on to the servicer, which refuses it with its
own status. If the windows cannot be counted (Redis down) the call is served (fail open, logged
once a minute) or, with ``TASKGATE_RATE_LIMIT_FAIL_CLOSED=1``, ends UNAVAILABLE with
``retry-after: 1``, like the gateway's requests.
"""

from collections.abc import Awaitable
from collections.abc import Callable

import grpc

from orchestrator.call_limiter import CallLimiter
from orchestrator.call_limiter import CallLimiterUnavailableError
from orchestrator.call_wrapping import run_first
from orchestrator.call_wrapping import with_behavior
from orchestrator.errors import OrchestratorError
from orchestrator.identity import CallerResolver
from taskgate import wire
from taskgate.outage_log import OutageLog
from taskgate.rate_limits.headers import rate_limit_headers
from taskgate.rate_limits.per_user import PerUserWindows
from taskgate.rate_limits.windows import RateLimitStatus

RATE_LIMITED_MESSAGE = "Rate limit exceeded"
UNAVAILABLE_MESSAGE = "Rate limiter unavailable"
_UNLIMITED_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


def refusal_metadata(status: RateLimitStatus) -> tuple[tuple[str, str], ...]:
    """Return the trailing metadata of a refused call: reason, Retry-After, window, limit fields."""
    fields = {
        wire.ERROR_CODE: wire.RATE_LIMITED,
        wire.RETRY_AFTER: str(status.retry_after_seconds),
        wire.RATE_LIMIT_WINDOW: status.limited_by or "",
        wire.RATE_LIMIT_COUNTED_PER: status.limited_per,
        **{name.lower(): value for name, value in rate_limit_headers(status).items()},
    }
    return tuple(fields.items())


class RateLimitInterceptor(grpc.aio.ServerInterceptor):
    """Count each direct API-key call in its user's windows; refuse it when one is full."""

    def __init__(
        self, callers: CallerResolver, windows: PerUserWindows, limiter: CallLimiter, fail_closed: bool
    ) -> None:
        self._callers = callers
        self._windows = windows
        self._limiter = limiter
        self._fail_closed = fail_closed
        self._outages = OutageLog(
            "rate limiter unreachable; refusing direct calls"
            if fail_closed
            else "rate limiter unreachable; serving direct calls without limits"
        )

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Return the call's handler, counting the call first when it is a direct API-key call."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.wrap(handler_call_details.method, handler)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Return the method's handler counting each direct API-key call before its behaviour."""
        if method.startswith(_UNLIMITED_PREFIXES):
            return handler
        return with_behavior(handler, lambda behavior: run_first(behavior, self._count_direct))

    async def _count_direct(self, context: grpc.aio.ServicerContext) -> None:
        """Count the call if it is a direct one: an API key and no service token."""
        direct = False
        for key, value in context.invocation_metadata() or ():
            if key == wire.SERVICE_TOKEN:
                return
            direct = direct or (key == wire.API_KEY and bool(value))
        if direct:
            await self._count(context)

    async def _count(self, context: grpc.aio.ServicerContext) -> None:
        """Count the call in its caller's windows; end it when one is full (or the limiter is down, closed).

        The caller is resolved once per call (``CallerResolver.resolve_call``), shared with the scope
        check and the servicer, so the key is looked up once.
        """
        try:
            caller = await self._callers.resolve_call(context)
        except OrchestratorError:
            return
        subject = self._windows.subject(
            caller.tenant_id,
            caller.user_id,
            caller.tier,
            caller.api_key_id,
            caller.rate_limit_per_minute,
            caller.rate_limit_per_hour,
        )
        try:
            status = await self._limiter.admit(subject)
        except CallLimiterUnavailableError as ex:
            self._outages.record(ex)
            if self._fail_closed:
                await _refuse(
                    context, grpc.StatusCode.UNAVAILABLE, UNAVAILABLE_MESSAGE, ((wire.RETRY_AFTER, "1"),)
                )
            return
        if not status.allowed:
            await _refuse(
                context, grpc.StatusCode.RESOURCE_EXHAUSTED, RATE_LIMITED_MESSAGE, refusal_metadata(status)
            )


async def _refuse(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    trailing: tuple[tuple[str, str], ...],
) -> None:
    """End the call with this status and trailing metadata, before its servicer runs."""
    context.set_trailing_metadata(trailing)
    await context.abort(code, message)
