"""Account routes: register, log in, refresh, describe the caller, and the caller's API keys.

Register, login and refresh are public (the rate-limit middleware limits them per client address);
their answers and a new key's carry ``Cache-Control: no-store``, as tokens and keys must not be
cached. A key's secret appears in one answer only, the one that created it.
"""

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import Protocol

import falcon

from gateway.caller import CallContext
from gateway.caller import Principal
from gateway.caller import call_context
from gateway.hooks import require_json_object
from gateway.hooks import require_valid_id
from gateway.resources.auth_requests import create_key_request
from gateway.resources.auth_requests import login_request
from gateway.resources.auth_requests import refresh_token
from gateway.resources.auth_requests import register_request
from gateway.resources.auth_requests import update_key_request
from gateway.resources.serialization import timestamp
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import tier_limits
from taskgate.rate_limits.per_user import key_sub_limit
from taskgate.rate_limits.windows import RateLimitStatus

TOKEN_TYPE = "Bearer"  # noqa: S105 - the OAuth token type, not a secret
_WINDOWS = ("minute", "hour")


class AuthApi(Protocol):
    """The orchestrator calls the account routes make."""

    def register_user(
        self, request: auth_pb2.RegisterUserRequest, context: CallContext
    ) -> auth_pb2.RegisterUserResponse:
        """Create an account."""

    def login(self, request: auth_pb2.LoginRequest, context: CallContext) -> auth_pb2.TokenPair:
        """Exchange an email and password for tokens."""

    def refresh_token(self, refresh_token: str, context: CallContext) -> auth_pb2.TokenPair:
        """Rotate a refresh token."""

    def get_current_user(self, context: CallContext) -> auth_pb2.GetCurrentUserResponse:
        """Describe the caller."""

    def list_api_keys(self, context: CallContext) -> auth_pb2.ListApiKeysResponse:
        """List the caller's keys."""

    def create_api_key(
        self, request: auth_pb2.CreateApiKeyRequest, context: CallContext
    ) -> auth_pb2.CreateApiKeyResponse:
        """Create a key."""

    def revoke_api_key(self, key_id: str, context: CallContext) -> None:
        """Revoke a key."""

    def update_api_key(self, request: auth_pb2.UpdateApiKeyRequest, context: CallContext) -> auth_pb2.ApiKey:
        """Set a key's rate-limit overrides."""


def token_pair(tokens: auth_pb2.TokenPair) -> dict[str, Any]:
    """Return a token pair as login and refresh answer it."""
    return {
        "access_token": tokens.access_token,
        "refresh_token": tokens.refresh_token,
        "token_type": TOKEN_TYPE,
        "expires_in": tokens.expires_in,
    }


def api_key(key: auth_pb2.ApiKey) -> dict[str, Any]:
    """Return a key as the key list shows it (never its secret)."""
    return {
        "id": key.id,
        "name": key.name,
        "description": key.description,
        "key_prefix": key.key_prefix,
        "scopes": list(key.scopes),
        "created_at": timestamp(key, "created_at"),
        "last_used_at": timestamp(key, "last_used_at"),
        "expires_at": timestamp(key, "expires_at"),
        "is_active": key.is_active,
        "rate_limit_per_minute": key.rate_limit_per_minute or None,
        "rate_limit_per_hour": key.rate_limit_per_hour or None,
        "budgets": budgets(key.budgets),
    }


def budgets(message: auth_pb2.UsageBudgets) -> dict[str, dict[str, Any]]:
    """Return a user's or a key's budgets as ``/auth/me`` and the key list show them.

    ``tokens_minute`` counts the model tokens of the current UTC minute, ``cost_day`` the USD of the
    current UTC day; ``limit`` and ``remaining`` are null where there is no such budget.
    """
    return {
        "tokens_minute": _budget(message.tokens_per_minute, round),
        "cost_day": _budget(message.usd_per_day, lambda value: round(value, 6)),
    }


def _budget(budget: auth_pb2.Budget, number: Callable[[float], float]) -> dict[str, Any]:
    limit = budget.limit
    return {
        "limit": number(limit) if limit > 0 else None,
        "used": number(budget.used),
        "remaining": number(max(limit - budget.used, 0)) if limit > 0 else None,
        "reset": timestamp(budget, "resets_at"),
    }


def rate_limits(
    status: RateLimitStatus | None, principal: Principal, tiers: Mapping[str, TierLimits]
) -> dict[str, dict[str, int]]:
    """Return the caller's windows: as counted for this request, else its limits with nothing used.

    Of the user's window and a key's sub-limit of the same length, the one with less left is shown
    (what this credential may still send). There is no count when the limiter is switched off or
    could not be reached (it fails open).
    """
    if status is not None and all(status.window(name) is not None for name in _WINDOWS):
        return {
            name: {"limit": status.window(name).limit, "remaining": status.window(name).remaining}
            for name in _WINDOWS
        }
    limits = tier_limits(tiers, principal.tier)
    per_minute = key_sub_limit(principal.rate_limit_per_minute, limits.per_minute) or limits.per_minute
    per_hour = key_sub_limit(principal.rate_limit_per_hour, limits.per_hour) or limits.per_hour
    return {
        "minute": {"limit": per_minute, "remaining": per_minute},
        "hour": {"limit": per_hour, "remaining": per_hour},
    }


def _no_store(resp: falcon.Response) -> None:
    resp.set_header("Cache-Control", "no-store")
    resp.set_header("Pragma", "no-cache")


class RegisterResource:
    """``/api/v1/auth/register``: create a ``user`` in a new tenant, logged in, with a first key."""

    public = True

    def __init__(self, orchestrator: AuthApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer 201 with the ids, a token pair and the first API key; 409 when the email is taken."""
        response = self._orchestrator.register_user(register_request(req.context.json), call_context(req))
        resp.status = falcon.HTTP_201
        resp.media = {
            "user_id": response.user_id,
            "tenant_id": response.tenant_id,
            **token_pair(response.tokens),
            "api_key": response.api_key,
        }
        _no_store(resp)


class LoginResource:
    """``/api/v1/auth/login``: exchange an email and password for a token pair."""

    public = True

    def __init__(self, orchestrator: AuthApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the pair; a wrong email or password is one 401, whichever it was."""
        tokens = self._orchestrator.login(login_request(req.context.json), call_context(req))
        resp.media = token_pair(tokens)
        _no_store(resp)


class RefreshResource:
    """``/api/v1/auth/refresh``: rotate a refresh token into a new pair."""

    public = True

    def __init__(self, orchestrator: AuthApi) -> None:
        self._orchestrator = orchestrator

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Answer the next pair; a used (its family is then revoked), expired or unknown token is 401."""
        tokens = self._orchestrator.refresh_token(refresh_token(req.context.json), call_context(req))
        resp.media = token_pair(tokens)
        _no_store(resp)


class CurrentUserResource:
    """``/api/v1/auth/me``: the caller's account and what is left of its rate limits and budgets."""

    def __init__(self, orchestrator: AuthApi, tiers: Mapping[str, TierLimits]) -> None:
        self._orchestrator = orchestrator
        self._tiers = tiers

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Describe the account as stored, with the windows counted for this very request."""
        user = self._orchestrator.get_current_user(call_context(req))
        resp.media = {
            "user_id": user.user_id,
            "tenant_id": user.tenant_id,
            "email": user.email,
            "username": user.username,
            "name": user.name,
            "role": user.role,
            "tier": user.tier,
            "rate_limits": rate_limits(req.context.get("rate_limit"), req.context.principal, self._tiers),
            "budgets": budgets(user.budgets),
            "key_budgets": budgets(user.key_budgets) if user.HasField("key_budgets") else None,
        }


class ApiKeysResource:
    """``/api/v1/auth/api-keys``: list the caller's keys, create one."""

    def __init__(self, orchestrator: AuthApi) -> None:
        self._orchestrator = orchestrator

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        """List every key of the caller, newest first, revoked ones included (``is_active`` false)."""
        response = self._orchestrator.list_api_keys(call_context(req))
        resp.media = {"keys": [api_key(key) for key in response.keys], "total": response.total}

    @falcon.before(require_json_object)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a key and answer 201 with it; the key itself is never shown again."""
        response = self._orchestrator.create_api_key(create_key_request(req.context.json), call_context(req))
        resp.status = falcon.HTTP_201
        resp.media = {
            "id": response.key.id,
            "name": response.key.name,
            "api_key": response.api_key,
            "key_prefix": response.key.key_prefix,
            "created_at": timestamp(response.key, "created_at"),
            "expires_at": timestamp(response.key, "expires_at"),
            "scopes": list(response.key.scopes),
            "budgets": budgets(response.key.budgets),
        }
        _no_store(resp)


@falcon.before(require_valid_id, "key_id")
class ApiKeyResource:
    """``/api/v1/auth/api-keys/{key_id}``: revoke one of the caller's keys, or set its rate limits."""

    def __init__(self, orchestrator: AuthApi) -> None:
        self._orchestrator = orchestrator

    def on_delete(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        """Revoke the key (again: still 200); someone else's or an unknown one is 404."""
        self._orchestrator.revoke_api_key(key_id, call_context(req))
        resp.media = {"success": True}

    @falcon.before(require_json_object)
    def on_patch(self, req: falcon.Request, resp: falcon.Response, key_id: str) -> None:
        """Set the key's rate-limit overrides: an admin or owner of its tenant (else 403); answer the key."""
        key = self._orchestrator.update_api_key(
            update_key_request(key_id, req.context.json), call_context(req)
        )
        resp.media = api_key(key)
