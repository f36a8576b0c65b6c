"""What the server's per-call steps share: a handler's one behaviour replaced, or preceded by a step.

A grpc.aio method handler carries its behaviour under one of four names, by the RPC's shape; a
step (the call log, the scope check, the rate limit) swaps that behaviour for a wrapped one
(``with_behavior``), most often one that does something first and then runs the original, unary
or streaming alike (``run_first``).

The steps wrap each method's handler once, not once per call: ``WrappingRegistrar`` takes the
services' handlers as the generated ``add_*Servicer_to_server`` functions hand them over, wraps
each in every step (each step's ``wrap(method, handler)``) and registers the result on the
server. A grpc.aio server interceptor would run per call instead (a coroutine per interceptor, a
new closure and handler per call and per interceptor, measured in ``bench/unary_cost.py``); each
step still serves as one (``intercept_service`` wraps per call), which its unit tests use.
"""

import inspect
from collections.abc import Awaitable
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import grpc

BEHAVIORS = ("unary_unary", "unary_stream", "stream_unary", "stream_stream")
Behavior = Callable[..., Any]
# A step: given a method's full name and its handler, the handler with the step around its behaviour.
Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
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


class WrappingRegistrar:
    """Registers services on a server with each method's handler wrapped in every step, once.

    It takes what a generated ``add_*Servicer_to_server`` function hands a server: the method
    handlers by name (``add_registered_method_handlers``, wrapped at once and registered on the
    server, which then finds a call's handler without asking any generic handler), and the same
    handlers as a generic handler (wrapped on a method's first call and kept). Register before the
    server starts: the handlers are fixed from then on, which is what lets a wrapped one be kept.
    """

    def __init__(self, server: grpc.aio.Server, steps: Sequence[Wrap]) -> None:
        self._server = server
        # Outermost first: the first step's work runs first on every call.
        self._steps = tuple(steps)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Return a method's handler wrapped in every step."""
        for step in reversed(self._steps):
            handler = step(method, handler)
        return handler

    def add_registered_method_handlers(
        self, service_name: str, method_handlers: Mapping[str, grpc.RpcMethodHandler]
    ) -> None:
        """Register a service's methods on the server, each handler wrapped."""
        self._server.add_registered_method_handlers(
            service_name,
            {
                name: self.wrap(f"/{service_name}/{name}", handler)
                for name, handler in method_handlers.items()
            },
        )

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        """Register generic handlers on the server, each method's handler wrapped on its first call."""
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGenericHandler(handler, self.wrap) for handler in handlers)
        )


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    """A generic handler whose methods' handlers are wrapped on their first call and kept.

    An unknown method is answered None every time (nothing kept, so made-up names cannot grow it).
    """

    def __init__(self, handler: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._handler = handler
        self._wrap = wrap
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        """Return the method's wrapped handler, wrapping it on its first call; None for an unknown method."""
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._handler.service(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped
