"""One log line per gRPC call the orchestrator serves, with the caller's request id and trace context.

The gateway forwards its request id (``x-request-id``) and W3C ``traceparent`` in metadata
(taskgate/wire.py); logging them here lets one request be followed across both services. Nothing
else from the metadata is logged: no service token, no API key, no identity. Health checks and
reflection are logged at DEBUG, so probes do not flood the log.
"""

import logging
import time
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

import grpc

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
        method = handler_call_details.method
        level = logging.DEBUG if method.startswith(_QUIET_PREFIXES) else logging.INFO
        if handler is None or not logger.isEnabledFor(level):
            return handler
        fields = {"rpc": method, **correlation_fields(handler_call_details.invocation_metadata)}
        return with_behavior(
            handler,
            lambda behavior: run_first(behavior, lambda context: _log_when_done(context, level, fields)),
        )


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


def _log_when_done(context: grpc.aio.ServicerContext, level: int, fields: dict[str, str]) -> None:
    started = time.perf_counter()

    def log(done_context: grpc.aio.ServicerContext) -> None:
        code = done_context.code()
        if done_context.cancelled():
            code = grpc.StatusCode.CANCELLED
        logger.log(
            level,
            "rpc",
            extra={
                **fields,
                "code": code.name if isinstance(code, grpc.StatusCode) else "OK",
                "duration_ms": round((time.perf_counter() - started) * 1000, 2),
            },
        )

    context.add_done_callback(log)
