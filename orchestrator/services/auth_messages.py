"""Converting accounts, tokens and API keys to the AuthService's protobuf messages."""

import datetime

from orchestrator.domain.accounts import ApiKeyRecord
from orchestrator.domain.accounts import UserRecord
from orchestrator.services.messages import timestamp
from orchestrator.tokens import TokenPair
from taskgate.orchestrator.v1 import auth_pb2


def token_pair_to_proto(tokens: TokenPair) -> auth_pb2.TokenPair:
    """Return the TokenPair message of an access token and its refresh token."""
    return auth_pb2.TokenPair(
        access_token=tokens.access_token, refresh_token=tokens.refresh_token, expires_in=tokens.expires_in
    )


def api_key_to_proto(key: ApiKeyRecord, now: datetime.datetime) -> auth_pb2.ApiKey:
    """Return the ApiKey message of a stored key (never its hash); active means usable at ``now``."""
    return auth_pb2.ApiKey(
        id=key.id,
        name=key.name,
        description=key.description,
        key_prefix=key.key_prefix,
        scopes=key.scopes,
        created_at=timestamp(key.created_at),
        last_used_at=timestamp(key.last_used_at),
        expires_at=timestamp(key.expires_at),
        is_active=key.is_usable(now),
        rate_limit_per_minute=key.rate_limit_per_minute or 0,
        rate_limit_per_hour=key.rate_limit_per_hour or 0,
    )


def current_user_to_proto(user: UserRecord) -> auth_pb2.GetCurrentUserResponse:
    """Return the GetCurrentUser answer describing an account."""
    return auth_pb2.GetCurrentUserResponse(
        user_id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        username=user.username,
        role=user.role,
        tier=user.tier,
        name=user.name,
    )
