"""JWT access tokens: signed by the orchestrator, verified by the gateway without a call.

HS256 only, with the shared ``TASKGATE_JWT_SECRET``: the algorithm is fixed on both sides and never
taken from the token, so ``none`` and forged HS512 (or RS256-as-HMAC) tokens are refused. The issuer
is checked, ``exp`` and ``nbf`` are enforced (with a small leeway for clock skew between hosts),
and every claim the gateway needs must be present.
"""

import dataclasses
import datetime
import secrets

import jwt

from taskgate.account_rules import ROLES

ALGORITHM = "HS256"
LIFETIME = datetime.timedelta(hours=1)
# Hosts' clocks drift; a token a few seconds "from the future" or just expired is still taken.
CLOCK_LEEWAY = datetime.timedelta(seconds=30)
_REQUIRED_CLAIMS = ("sub", "tenant_id", "role", "tier", "iss", "iat", "nbf", "exp")


class InvalidAccessTokenError(ValueError):
    """The token is malformed, forged, expired, not yet valid or from another issuer."""


@dataclasses.dataclass(frozen=True)
class AccessClaims:
    """Who an access token speaks for."""

    user_id: str
    tenant_id: str
    role: str
    tier: str


def issue_access_token(
    claims: AccessClaims, secret: str, issuer: str, now: datetime.datetime
) -> tuple[str, int]:
    """Return a signed access token for the claims and its lifetime in seconds."""
    payload = {
        "sub": claims.user_id,
        "tenant_id": claims.tenant_id,
        "role": claims.role,
        "tier": claims.tier,
        "iss": issuer,
        "iat": now,
        "nbf": now,
        "exp": now + LIFETIME,
        # Two tokens issued in the same second for the same user still differ.
        "jti": secrets.token_urlsafe(12),
    }
    return jwt.encode(payload, secret, algorithm=ALGORITHM), int(LIFETIME.total_seconds())


def verify_access_token(token: str, secret: str, issuer: str) -> AccessClaims:
    """Return the claims of a valid token; raise InvalidAccessTokenError for anything else."""
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            leeway=CLOCK_LEEWAY,
            options={"require": list(_REQUIRED_CLAIMS), "verify_iat": False},
        )
    except jwt.PyJWTError as ex:
        raise InvalidAccessTokenError("invalid access token") from ex
    values = [payload.get(name) for name in ("sub", "tenant_id", "role", "tier")]
    if not all(isinstance(value, str) for value in values) or not values[0] or values[2] not in ROLES:
        raise InvalidAccessTokenError("invalid access token claims")
    return AccessClaims(*values)


def looks_like_jwt(credential: str) -> bool:
    """Whether a credential has the three dot-separated parts of a compact JWT."""
    return credential.count(".") == 2
