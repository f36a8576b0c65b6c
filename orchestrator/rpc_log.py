"""One log line per gRPC call the orchestrator serves, with the caller's request id and trace context.

The gateway forwards its request id (``x-request-id``) and W3C ``traceparent`` in metadata
(taskgate/wire.py); logging them here lets one request be followed across both services. Nothing
else from the metadata is logged: no service token, no API key, no identity. Health checks and
reflection are logged at DEBUG where this step sees them (the server serves them without it, so
probes do not flood the log).
"""

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import grpc

from orchestrator.call_wrapping import Behavior
from orchestrator.call_wrapping import run_first
from orchestrator.call_wrapping import with_behavior
from taskgate import wire
from taskgate.identifiers import is_valid_id
from taskgate.trace_context import trace_id_from_traceparent

logger = logging.getLogger("orchestrator.rpc")

_QUIET_PREFIXES = ("/grpc.health.", "/grpc.reflection.")


class RpcLogInterceptor(grpc.aio.ServerInterceptor):
    """Log each finished call: method, status code, duration, request id and traceparent."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Return the call's handler, its behaviour wrapped to log the call when it ends."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.wrap(handler_call_details.method, handler)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Return the method's handler with its behaviour logging each call when it ends.

        Whether the level is on is asked per call (one cached lookup), so a level set later holds.
        """
        level = logging.DEBUG if method.startswith(_QUIET_PREFIXES) else logging.INFO
        return with_behavior(handler, lambda behavior: _logged(behavior, method, level))


def _logged(behavior: Behavior, method: str, level: int) -> Behavior:
    """Wrap a behaviour to log its calls: a unary one around its await, a streaming one when it is done."""
    if not inspect.iscoroutinefunction(behavior):

        def log_when_done(context: grpc.aio.ServicerContext) -> None:
            if logger.isEnabledFor(level):
                _log_when_done(context, method, level)

        return run_first(behavior, log_when_done)

    async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if not logger.isEnabledFor(level):
            return await behavior(request, context)
        started = time.perf_counter()
        code = None
        try:
            return await behavior(request, context)
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except BaseException as ex:
            # An abort has set its code; anything else escaping ends the call UNKNOWN.
            code = None if isinstance(ex, grpc.aio.AbortError) else "UNKNOWN"
            raise
        finally:
            _log(context, method, level, started, code)

    return unary


def correlation_fields(metadata: Sequence[tuple[str, Any]] | None) -> dict[str, str]:
    """Return the well-formed request id and traceparent of a call's metadata."""
    fields = {}
    for key, value in metadata or ():
        # Values a client sends are logged only in the shapes the gateway accepts them in.
        if key == wire.REQUEST_ID and is_valid_id(value):
            fields["request_id"] = value
        elif key == wire.TRACEPARENT and isinstance(value, str) and trace_id_from_traceparent(value):
            fields["traceparent"] = value
    return fields


def _log(
    context: grpc.aio.ServicerContext, method: str, level: int, started: float, code: str | None = None
) -> None:
    """Log one call: its code (``code``, else the context's), duration and correlation ids."""
    if code is None:
        status = context.code()
        code = (
            "CANCELLED"
            if context.cancelled()
            else status.name
            if isinstance(status, grpc.StatusCode)
            else "OK"
        )
    fields = {
        "rpc": method,
        **correlation_fields(context.invocation_metadata()),
        "code": code,
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    # makeRecord and handle, not log: log first walks the stack for the caller's file and line,
    # which no line of ours shows, and that walk cost a third of writing the line.
    logger.handle(logger.makeRecord(logger.name, level, __file__, 0, "rpc", (), None, extra=fields))


def _log_when_done(context: grpc.aio.ServicerContext, method: str, level: int) -> None:
    started = time.perf_counter()
    context.add_done_callback(lambda done_context: _log(done_context, method, level, started))
