"""AuthService: credential checks for the gateway, accounts and tokens, and the caller's API keys.

ValidateApiKey, RegisterUser, Login and RefreshToken answer only the gateway (the service-token
holder), which puts its per-IP limits in front of them; the other RPCs act for the resolved caller.
"""

import datetime

import grpc

from orchestrator.domain.budgets import key_budgets
from orchestrator.engine.accounts import AccountEngine
from orchestrator.engine.accounts import RegistrationForm
from orchestrator.engine.api_keys import ApiKeyEngine
from orchestrator.engine.api_keys import KeyRequest
from orchestrator.engine.api_keys import RateLimitChange
from orchestrator.engine.budgets import BudgetEngine
from orchestrator.errors import UnauthenticatedError
from orchestrator.identity import CallerResolver
from orchestrator.services.auth_messages import api_key_to_proto
from orchestrator.services.auth_messages import current_user_to_proto
from orchestrator.services.auth_messages import token_pair_to_proto
from orchestrator.services.fields import require_id
from orchestrator.services.status import unary_errors
from taskgate.orchestrator.v1 import auth_pb2
from taskgate.orchestrator.v1 import auth_pb2_grpc
from taskgate.principals import principal_to_proto
from taskgate.rfc3339 import utc_now

INVALID_KEY_MESSAGE = "Invalid API key"


class AuthServiceServicer(auth_pb2_grpc.AuthServiceServicer):
    """Credential checks on behalf of the gateway, accounts, and the caller's keys."""

    def __init__(
        self, callers: CallerResolver, accounts: AccountEngine, api_keys: ApiKeyEngine, budgets: BudgetEngine
    ) -> None:
        self._callers = callers
        self._accounts = accounts
        self._api_keys = api_keys
        self._budgets = budgets

    @unary_errors
    async def ValidateApiKey(  # noqa: N802 (gRPC method names are PascalCase)
        self, request: auth_pb2.ValidateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ValidateApiKeyResponse:
        """Resolve an API key to its principal; only service-token holders may ask."""
        self._callers.require_service_call(context)
        caller = await self._callers.authenticator.authenticate(request.api_key)
        if caller is None:
            raise UnauthenticatedError(INVALID_KEY_MESSAGE)
        return auth_pb2.ValidateApiKeyResponse(principal=principal_to_proto(caller))

    @unary_errors
    async def RegisterUser(  # noqa: N802
        self, request: auth_pb2.RegisterUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RegisterUserResponse:
        """Create a user in a new tenant with a first API key, and log them in."""
        self._callers.require_service_call(context)
        form = RegistrationForm(request.email, request.password, request.username, request.name)
        registration = await self._accounts.register(form)
        return auth_pb2.RegisterUserResponse(
            user_id=registration.user.id,
            tenant_id=registration.user.tenant_id,
            tokens=token_pair_to_proto(registration.tokens),
            api_key=registration.api_key,
        )

    @unary_errors
    async def Login(  # noqa: N802
        self, request: auth_pb2.LoginRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.LoginResponse:
        """Check an email and password and issue a token pair."""
        self._callers.require_service_call(context)
        tokens = await self._accounts.login(request.email, request.password)
        return auth_pb2.LoginResponse(tokens=token_pair_to_proto(tokens))

    @unary_errors
    async def RefreshToken(  # noqa: N802
        self, request: auth_pb2.RefreshTokenRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RefreshTokenResponse:
        """Rotate a refresh token into a new pair; a reused one revokes its family."""
        self._callers.require_service_call(context)
        tokens = await self._accounts.refresh(request.refresh_token)
        return auth_pb2.RefreshTokenResponse(tokens=token_pair_to_proto(tokens))

    @unary_errors
    async def GetCurrentUser(  # noqa: N802
        self, request: auth_pb2.GetCurrentUserRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.GetCurrentUserResponse:
        """Describe the caller's account, with its budgets (and its key's) and what is used of them."""
        caller = await self._callers.resolve_call(context)
        user = await self._accounts.current_user(caller)
        return current_user_to_proto(user, await self._budgets.budgets(caller))

    @unary_errors
    async def ListApiKeys(  # noqa: N802
        self, request: auth_pb2.ListApiKeysRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.ListApiKeysResponse:
        """List the caller's keys, newest first, without their secrets, with their budgets' usage."""
        caller = await self._callers.resolve_call(context)
        keys = await self._api_keys.list_keys(caller)
        usage, windows = await self._budgets.key_usage(caller)
        now = utc_now()
        messages = []
        for key in keys:
            tokens, cost = usage.get(key.id, (0, 0.0))
            budgets = key_budgets(key.tokens_per_minute, key.usd_per_day, tokens, cost, windows)
            messages.append(api_key_to_proto(key, now, budgets))
        return auth_pb2.ListApiKeysResponse(keys=messages, total=len(keys))

    @unary_errors
    async def CreateApiKey(  # noqa: N802
        self, request: auth_pb2.CreateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.CreateApiKeyResponse:
        """Create a key for the caller; its secret is in this answer only."""
        caller = await self._callers.resolve_call(context)
        expires_at = (
            request.expires_at.ToDatetime(tzinfo=datetime.UTC) if request.HasField("expires_at") else None
        )
        key_request = KeyRequest(
            request.name,
            request.description,
            tuple(request.scopes),
            expires_at,
            tokens_per_minute=request.tokens_per_minute if request.HasField("tokens_per_minute") else None,
            usd_per_day=request.usd_per_day if request.HasField("usd_per_day") else None,
        )
        created = await self._api_keys.create_key(caller, key_request)
        return auth_pb2.CreateApiKeyResponse(
            key=api_key_to_proto(created.record, utc_now()), api_key=created.api_key
        )

    @unary_errors
    async def RevokeApiKey(  # noqa: N802
        self, request: auth_pb2.RevokeApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.RevokeApiKeyResponse:
        """Revoke one of the caller's keys; revoking it again succeeds again."""
        caller = await self._callers.resolve_call(context)
        await self._api_keys.revoke_key(caller, require_id("id", request.id))
        return auth_pb2.RevokeApiKeyResponse(success=True)

    @unary_errors
    async def UpdateApiKey(  # noqa: N802
        self, request: auth_pb2.UpdateApiKeyRequest, context: grpc.aio.ServicerContext
    ) -> auth_pb2.UpdateApiKeyResponse:
        """Set a key's rate-limit overrides (an admin or owner of its tenant only)."""
        caller = await self._callers.resolve_call(context)
        change = RateLimitChange(
            per_minute=request.rate_limit_per_minute if request.HasField("rate_limit_per_minute") else None,
            per_hour=request.rate_limit_per_hour if request.HasField("rate_limit_per_hour") else None,
        )
        key = await self._api_keys.set_rate_limits(caller, require_id("id", request.id), change)
        return auth_pb2.UpdateApiKeyResponse(key=api_key_to_proto(key, utc_now()))
