"""Scopes on every RPC: a server interceptor refuses a caller whose API key lacks the method's scope.

It applies to every caller alike: a service calling directly with its own API key, and the
gateway's forwarded callers (whose key id and scopes come in the metadata next to the service
token). What each method needs is ``taskgate.scopes.RPC_SCOPES``; the refusal is
PERMISSION_DENIED with ``taskgate-error-code: insufficient_scope`` and ``taskgate-missing-scope``
in the trailing metadata. The caller it resolves is the one the servicer then acts for
(``CallerResolver.resolve_call`` resolves once per call), so a direct key is checked once.
Health checks, reflection and the service-only RPCs (which take no caller) pass untouched.
"""

from collections.abc import Awaitable
from collections.abc import Callable

import grpc

from orchestrator.call_wrapping import run_first
from orchestrator.call_wrapping import with_behavior
from orchestrator.caller import Caller
from orchestrator.errors import InsufficientScopeError
from orchestrator.identity import CallerResolver
from orchestrator.services.status import abort_with_status
from taskgate.scopes import PACKAGE_PREFIX
from taskgate.scopes import SERVICE_ONLY
from taskgate.scopes import Needs
from taskgate.scopes import missing_scope
from taskgate.scopes import rpc_needs


def require_scopes(caller: Caller, needed: Needs) -> None:
    """Raise InsufficientScopeError naming the first scope of ``needed`` the caller lacks."""
    scope = missing_scope(caller.scopes, needed)
    if scope is not None:
        raise InsufficientScopeError(scope)


class ScopeInterceptor(grpc.aio.ServerInterceptor):
    """Resolve each call's caller and check its scopes before the servicer runs."""

    def __init__(self, callers: CallerResolver) -> None:
        self._callers = callers

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        """Return the call's handler, its behaviour wrapped in the scope check where one applies."""
        handler = await continuation(handler_call_details)
        if handler is None:
            return handler
        return self.wrap(handler_call_details.method, handler)

    def wrap(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        """Return the method's handler with the scope check before its behaviour, where one applies."""
        if not method.startswith(PACKAGE_PREFIX):
            return handler
        needed = rpc_needs(method)
        if needed is SERVICE_ONLY:
            return handler
        resolve_call = self._callers.resolve_call

        async def check(context: grpc.aio.ServicerContext) -> None:
            try:
                require_scopes(await resolve_call(context), needed)
            except Exception as ex:
                await abort_with_status(context, ex, method)

        return with_behavior(handler, lambda behavior: run_first(behavior, check))
