"""Scopes: refuse an API key that lacks the scope its route needs, before any upstream call.

Runs after authentication. ``ROUTE_SCOPES`` names what every authenticated route and method needs
(names and the rule are ``taskgate.scopes``); a route missing from it is open to full-access
callers only, and tests/unit/gateway/test_route_scopes.py fails until it is added. The
orchestrator checks the same scopes on every RPC, so this check answers early and the orchestrator
stays the authority.
"""

from collections.abc import Mapping

import falcon

from gateway.errors import insufficient_scope
from taskgate.scopes import ALL_SCOPES
from taskgate.scopes import ANY_CALLER
from taskgate.scopes import APPROVALS_DECIDE
from taskgate.scopes import APPROVALS_READ
from taskgate.scopes import KEYS_MANAGE
from taskgate.scopes import SCHEDULES_READ
from taskgate.scopes import SCHEDULES_WRITE
from taskgate.scopes import SESSIONS_READ
from taskgate.scopes import SESSIONS_WRITE
from taskgate.scopes import STREAM_NEEDS
from taskgate.scopes import TASKS_READ
from taskgate.scopes import TASKS_WRITE
from taskgate.scopes import USAGE_READ
from taskgate.scopes import Needs
from taskgate.scopes import missing_scope

_READ = (TASKS_READ,)
_WRITE = (TASKS_WRITE,)

# Every route that needs a credential: its URI template, then each method's needs.
ROUTE_SCOPES: Mapping[str, Mapping[str, Needs]] = {
    "/api/v1/tasks": {"GET": _READ, "POST": _WRITE},
    "/api/v1/tasks/stream": {"POST": _WRITE},
    "/api/v1/tasks/{task_id}": {"GET": _READ},
    "/api/v1/tasks/{task_id}/events": {"GET": _READ},
    "/api/v1/tasks/{task_id}/timeline": {"GET": _READ},
    "/api/v1/tasks/{task_id}/stream": {"GET": _READ},
    "/api/v1/tasks/{task_id}/cancel": {"POST": _WRITE},
    "/api/v1/tasks/{task_id}/pause": {"POST": _WRITE},
    "/api/v1/tasks/{task_id}/resume": {"POST": _WRITE},
    "/api/v1/tasks/{task_id}/control-state": {"GET": _READ},
    "/api/v1/approvals": {"GET": (APPROVALS_READ,)},
    "/api/v1/approvals/decision": {"POST": (APPROVALS_DECIDE,)},
    "/api/v1/sessions": {"GET": (SESSIONS_READ,)},
    "/api/v1/sessions/{session_id}": {
        "GET": (SESSIONS_READ,),
        "PATCH": (SESSIONS_WRITE,),
        "DELETE": (SESSIONS_WRITE,),
    },
    "/api/v1/sessions/{session_id}/history": {"GET": (SESSIONS_READ,)},
    "/api/v1/sessions/{session_id}/events": {"GET": (SESSIONS_READ,)},
    "/api/v1/sessions/{session_id}/export": {"GET": (SESSIONS_READ,)},
    "/api/v1/search": {"GET": _READ},
    "/api/v1/stats": {"GET": (USAGE_READ,)},
    "/api/v1/schedules": {"GET": (SCHEDULES_READ,), "POST": (SCHEDULES_WRITE,)},
    "/api/v1/schedules/{schedule_id}": {
        "GET": (SCHEDULES_READ,),
        "PUT": (SCHEDULES_WRITE,),
        "DELETE": (SCHEDULES_WRITE,),
    },
    "/api/v1/schedules/{schedule_id}/pause": {"POST": (SCHEDULES_WRITE,)},
    "/api/v1/schedules/{schedule_id}/resume": {"POST": (SCHEDULES_WRITE,)},
    "/api/v1/schedules/{schedule_id}/trigger": {"POST": (SCHEDULES_WRITE,)},
    "/api/v1/schedules/{schedule_id}/runs": {"GET": (SCHEDULES_READ,)},
    "/api/v1/auth/me": {"GET": ANY_CALLER},
    "/api/v1/auth/api-keys": {"GET": (KEYS_MANAGE,), "POST": (KEYS_MANAGE,)},
    "/api/v1/auth/api-keys/{key_id}": {"DELETE": (KEYS_MANAGE,), "PATCH": (KEYS_MANAGE,)},
    "/api/v1/stream/sse": {"GET": STREAM_NEEDS},
    "/api/v1/stream/tasks": {"GET": STREAM_NEEDS},
    "/api/v1/stream/ws": {"GET": STREAM_NEEDS},
    # The model list describes the gateway, nothing of the caller's.
    "/v1/models": {"GET": ANY_CALLER},
    "/v1/models/{model}": {"GET": ANY_CALLER},
    # A completion submits a task and reads its answer.
    "/v1/chat/completions": {"POST": (TASKS_WRITE, TASKS_READ)},
    "/v1/completions": {"POST": (TASKS_WRITE, TASKS_READ)},
}


def route_needs(uri_template: str | None, method: str) -> Needs | None:
    """Return what a route's method needs; None for a method the route does not answer (its 405).

    A route missing from the table needs every scope, so forgetting one fails closed.
    """
    methods = ROUTE_SCOPES.get(uri_template or "")
    if methods is None:
        return ALL_SCOPES
    return methods.get(method)


class ScopeMiddleware:
    """403 ``insufficient_scope`` naming the missing scope when the caller's API key lacks one."""

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Check the principal authentication recorded; public routes and preflights have none."""
        principal = req.context.get("principal")
        if principal is None or not principal.scopes:
            return
        needed = route_needs(req.uri_template, req.method)
        scope = missing_scope(principal.scopes, needed or ())
        if scope is not None:
            raise insufficient_scope(scope)
