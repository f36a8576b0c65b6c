"""What the server interceptors share: a handler's one behaviour replaced, or preceded by a step.

A grpc.aio method handler carries its behaviour under one of four names, by the RPC's shape; an
interceptor that acts per call swaps that behaviour for a wrapped one (``with_behavior``), most
often one that does something first and then runs the original, unary or streaming alike
(``run_first``).
"""

import inspect
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import grpc

BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
Behavior = Callable[..., Any]
# A step run before the behaviour, given the call's context: a plain function or a coroutine one.
FirstStep = Callable[[grpc.aio.ServicerContext], Awaitable[None] | None]


def with_behavior(
    handler: grpc.RpcMethodHandler, wrap: Callable[[Behavior], Behavior]
) -> grpc.RpcMethodHandler:
    """Return the handler with its behaviour replaced by ``wrap(behaviour)``."""
    for name in BEHAVIORS:
        behavior = getattr(handler, name)
        if behavior is not None:
            return handler._replace(**{name: wrap(behavior)})
    return handler


def run_first(behavior: Behavior, first: FirstStep) -> Behavior:
    """Wrap an async behaviour so ``first(context)`` runs (awaited if a coroutine) before it.

    An exception from ``first`` ends the call before the behaviour runs. A synchronous behaviour
    (none of this server's) is left alone.
    """
    awaited = inspect.iscoroutinefunction(first)
    if inspect.isasyncgenfunction(behavior):

        async def streaming(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if awaited:
                await first(context)
            else:
                first(context)
            async for response in behavior(request, context):
                yield response

        return streaming
    if inspect.iscoroutinefunction(behavior):

        async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
            if awaited:
                await first(context)
            else:
                first(context)
            return await behavior(request, context)

        return unary
    return behavior
