"""Who is calling: the authenticated principal and the correlation ids forwarded with every call."""

import dataclasses

import falcon

from taskgate import wire
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.principals import principal_fields
from taskgate.scopes import scopes_header


@dataclasses.dataclass(frozen=True)
class Principal:
    """The user a credential belongs to, with the tenant, role and limits the orchestrator assigned.

    Its fields are the Principal message's, by the same names: taskgate.principals copies them.
    """

    user_id: str
    tenant_id: str
    role: str
    tier: str = ""
    api_key_id: str = ""
    scopes: tuple[str, ...] = ()
    rate_limit_per_minute: int = 0
    rate_limit_per_hour: int = 0

    @classmethod
    def from_proto(cls, message: auth_pb2.Principal) -> "Principal":
        """Build a principal from the orchestrator's ValidateApiKey answer."""
        return cls(**principal_fields(message))


@dataclasses.dataclass(frozen=True)
class CallContext:
    """What an upstream call forwards about the request: caller identity, request id, trace context."""

    request_id: str
    traceparent: str | None = None
    principal: Principal | None = None


def call_context(req: falcon.Request) -> CallContext:
    """Return the call context the middleware recorded on a request."""
    return CallContext(
        request_id=req.context.request_id,
        traceparent=req.context.get("traceparent"),
        principal=req.context.get("principal"),
    )


def identity_headers(principal: Principal) -> list[tuple[str, str]]:
    """Return the forwarded identity of a caller, as gRPC metadata or admin-server headers.

    The key id goes with an API key's caller, its scopes only when it has some: without them the
    orchestrator gives the caller full access, as a key without scopes and an access token have.
    """
    headers = [
        (wire.USER_ID, principal.user_id),
        (wire.TENANT_ID, principal.tenant_id),
        (wire.ROLE, principal.role),
    ]
    if principal.api_key_id:
        headers.append((wire.API_KEY_ID, principal.api_key_id))
    if principal.scopes:
        headers.append((wire.SCOPES, scopes_header(principal.scopes)))
    return headers
