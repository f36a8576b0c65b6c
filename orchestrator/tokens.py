"""Issuing a caller's tokens: a signed access JWT and an opaque refresh token.

The refresh token is 32 random bytes; only its SHA-256 is stored (it is random, so no salt or slow
hash is needed), and it works for 30 days or until it is used once.
"""

import dataclasses
import datetime
import hashlib
import secrets

from orchestrator.domain.accounts import NewRefreshToken
from orchestrator.domain.accounts import UserRecord
from taskgate.access_tokens import AccessClaims
from taskgate.access_tokens import issue_access_token

REFRESH_TOKEN_PREFIX = "rt_"  # noqa: S105 - a fixed prefix, not a secret
REFRESH_TOKEN_LIFETIME = datetime.timedelta(days=30)


@dataclasses.dataclass(frozen=True)
class RefreshToken:
    """A new refresh token: what the caller is given, and what the store keeps of it."""

    token: str = dataclasses.field(repr=False)
    stored: NewRefreshToken


@dataclasses.dataclass(frozen=True)
class TokenPair:
    """An access token, its lifetime in seconds, and the refresh token that comes with it."""

    access_token: str = dataclasses.field(repr=False)
    expires_in: int
    refresh_token: str = dataclasses.field(repr=False)


def hash_refresh_token(token: str) -> str:
    """Return the stored form of a refresh token: its hex SHA-256."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenIssuer:
    """Signs access tokens with the JWT secret and makes refresh tokens."""

    def __init__(self, secret: str, issuer: str) -> None:
        self._secret = secret
        self._issuer = issuer

    def refresh_token(self, now: datetime.datetime) -> RefreshToken:
        """Return a new refresh token valid for 30 days from ``now``."""
        token = REFRESH_TOKEN_PREFIX + secrets.token_urlsafe(32)
        return RefreshToken(token, NewRefreshToken(hash_refresh_token(token), now + REFRESH_TOKEN_LIFETIME))

    def pair(self, user: UserRecord, refresh: RefreshToken, now: datetime.datetime) -> TokenPair:
        """Return a new access token for a user, paired with its refresh token."""
        claims = AccessClaims(user.id, user.tenant_id, user.role, user.tier)
        access_token, expires_in = issue_access_token(claims, self._secret, self._issuer, now)
        return TokenPair(access_token, expires_in, refresh.token)
