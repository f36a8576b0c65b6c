"""Verifying access tokens (JWTs) locally: no call to the orchestrator, which signed them.

Only HS256 with the shared secret and the configured issuer is accepted (``taskgate.access_tokens``);
a token's own header never chooses the algorithm. Why a token was refused is not told to the
client and not logged with the token.
"""

from gateway.caller import Principal
from taskgate.access_tokens import InvalidAccessTokenError
from taskgate.access_tokens import verify_access_token


class AccessTokenVerifier:
    """Turns a valid access token into the principal its claims describe."""

    def __init__(self, secret: str, issuer: str) -> None:
        self._secret = secret
        self._issuer = issuer

    def principal_for(self, token: str) -> Principal | None:
        """Return the token's principal, or None for a malformed, forged, expired or foreign token."""
        try:
            claims = verify_access_token(token, self._secret, self._issuer)
        except InvalidAccessTokenError:
            return None
        return Principal(
            user_id=claims.user_id, tenant_id=claims.tenant_id, role=claims.role, tier=claims.tier
        )
