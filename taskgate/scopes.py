"""API-key scopes: their names, the scopes each gRPC method needs, and the one rule that checks them.

A caller holds a set of scopes. An API key created without scopes, a password or access-token
(JWT) session and the development bypass hold every scope: their ``scopes`` are empty, and empty
means full access. A key created with scopes holds exactly those; a stored name that is not one of
``ALL_SCOPES`` (a key created before scopes were checked) grants nothing, so such a key fails closed.

The gateway checks the scopes of its HTTP routes (``gateway.middleware.scopes``), the orchestrator
those of every RPC (``orchestrator.scope_enforcement``) and of its admin streams, with the same rule,
``missing_scope``; the orchestrator is the authority, the gateway's check answers early.
"""

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence

TASKS_READ = "tasks:read"
# Submit, cancel, pause and resume tasks (and the OpenAI-compatible completions, which submit one).
TASKS_WRITE = "tasks:write"
SESSIONS_READ = "sessions:read"
# Rename and delete sessions.
SESSIONS_WRITE = "sessions:write"
APPROVALS_READ = "approvals:read"
APPROVALS_DECIDE = "approvals:decide"
SCHEDULES_READ = "schedules:read"
# Create, change, pause, resume, trigger and delete schedules.
SCHEDULES_WRITE = "schedules:write"
# List, create and revoke the user's API keys, and set a key's rate limits (admins).
KEYS_MANAGE = "keys:manage"
# The caller's usage statistics (tokens, cost, task counts).
USAGE_READ = "usage:read"

ALL_SCOPES = (
    TASKS_READ,
    TASKS_WRITE,
    SESSIONS_READ,
    SESSIONS_WRITE,
    APPROVALS_READ,
    APPROVALS_DECIDE,
    SCHEDULES_READ,
    SCHEDULES_WRITE,
    KEYS_MANAGE,
    USAGE_READ,
)

# What a method needs: every scope of the tuple; the empty tuple is "any authenticated caller".
Needs = tuple[str, ...]
ANY_CALLER: Needs = ()
# The RPCs that answer the gateway alone (the service token, no caller): scopes do not apply.
SERVICE_ONLY = None

PACKAGE_PREFIX = "/taskgate.orchestrator.v1."

# Every RPC of the contract, by its full method name. A method missing here is refused to scoped
# keys (``rpc_needs``) and fails tests/unit/test_scopes.py.
RPC_SCOPES: Mapping[str, Needs | None] = {
    f"{PACKAGE_PREFIX}{service}/{method}": needs
    for service, methods in {
        "TaskService": {
            "SubmitTask": (TASKS_WRITE,),
            "GetTask": (TASKS_READ,),
            "ListTasks": (TASKS_READ,),
            "CancelTask": (TASKS_WRITE,),
            "PauseTask": (TASKS_WRITE,),
            "ResumeTask": (TASKS_WRITE,),
            "GetControlState": (TASKS_READ,),
        },
        "EventService": {
            "ListEvents": (TASKS_READ,),
            "StreamEvents": (TASKS_READ,),
            "GetTimeline": (TASKS_READ,),
        },
        "SessionService": {
            "ListSessions": (SESSIONS_READ,),
            "GetSession": (SESSIONS_READ,),
            "UpdateSession": (SESSIONS_WRITE,),
            "DeleteSession": (SESSIONS_WRITE,),
            "GetSessionHistory": (SESSIONS_READ,),
            "ListSessionTurns": (SESSIONS_READ,),
            "ExportSession": (SESSIONS_READ,),
            # Searches the text of the caller's tasks.
            "SearchTasks": (TASKS_READ,),
            "GetStats": (USAGE_READ,),
        },
        "ApprovalService": {
            "ListApprovals": (APPROVALS_READ,),
            "DecideApproval": (APPROVALS_DECIDE,),
        },
        "ScheduleService": {
            "CreateSchedule": (SCHEDULES_WRITE,),
            "ListSchedules": (SCHEDULES_READ,),
            "GetSchedule": (SCHEDULES_READ,),
            "UpdateSchedule": (SCHEDULES_WRITE,),
            "PauseSchedule": (SCHEDULES_WRITE,),
            "ResumeSchedule": (SCHEDULES_WRITE,),
            "TriggerSchedule": (SCHEDULES_WRITE,),
            "DeleteSchedule": (SCHEDULES_WRITE,),
            "ListScheduleRuns": (SCHEDULES_READ,),
        },
        "AuthService": {
            "ValidateApiKey": SERVICE_ONLY,
            "RegisterUser": SERVICE_ONLY,
            "Login": SERVICE_ONLY,
            "RefreshToken": SERVICE_ONLY,
            # Any credential may describe its own account and limits.
            "GetCurrentUser": ANY_CALLER,
            # Listing shows the ids a revocation needs, so it is key management too.
            "ListApiKeys": (KEYS_MANAGE,),
            "CreateApiKey": (KEYS_MANAGE,),
            "RevokeApiKey": (KEYS_MANAGE,),
            "UpdateApiKey": (KEYS_MANAGE,),
        },
    }.items()
    for method, needs in methods.items()
}

# The admin server's event streams (``wire.ADMIN_SSE_PATH`` and ``ADMIN_WEBSOCKET_PATH``).
STREAM_NEEDS: Needs = (TASKS_READ,)


def has_full_access(granted: Sequence[str]) -> bool:
    """Whether a caller's scopes are the empty set, which means every scope."""
    return not granted


def missing_scope(granted: Sequence[str], needed: Iterable[str]) -> str | None:
    """Return the first needed scope the caller lacks, or None when it holds them all (the one rule)."""
    if has_full_access(granted):
        return None
    for scope in needed:
        if scope not in granted:
            return scope
    return None


def rpc_needs(method: str) -> Needs | None:
    """Return what a full gRPC method name needs; a method not in the table needs every scope."""
    return RPC_SCOPES.get(method, ALL_SCOPES)


def scope_beyond(granted: Sequence[str], requested: Sequence[str]) -> str | None:
    """Return a scope a new key would hold that its creator lacks, or None when it is within the creator's.

    A new key without scopes holds them all, so only a full-access caller may create one.
    """
    return missing_scope(granted, requested or ALL_SCOPES)


def is_known_scope(name: object) -> bool:
    """Whether a value is one of the scope names."""
    return name in ALL_SCOPES


def scopes_header(scopes: Sequence[str]) -> str:
    """Return scopes as one metadata or header value: space-separated, as OAuth writes them."""
    return " ".join(scopes)


def parse_scopes_header(value: str | None) -> tuple[str, ...]:
    """Return the scopes of a forwarded header value; absent or empty is full access."""
    return tuple(value.split()) if value else ()
