"""Refuse credentials from addresses over their failure limit; count every 401 against its address.

Placed just before authentication. On a route that checks a credential (every route that is not
``public``, and the public login and refresh routes) a request from an address group this worker
knows to be over ``gateway.rate_limit.auth_failures``'s limit is answered 429 before its credential
is looked at, unless it carries an API key this gateway validated within the key cache's TTL
(that costs nothing to check, and keeps a working client behind the same NAT as a guesser served).
After the response is made, a 401 is counted; the 401 that does not fit the window becomes the 429.
"""

import falcon

from gateway.api_key_validator import ApiKeyValidator
from gateway.caller_state import LOGIN_PATH
from gateway.caller_state import REFRESH_PATH
from gateway.metrics import RATE_LIMIT_DECISIONS
from gateway.middleware.auth import presented_credential
from gateway.rate_limit.auth_failures import AuthFailureLimit
from gateway.rate_limit.client_address import TrustedProxies
from gateway.rate_limit.client_address import client_group
from gateway.rate_limit.limiter import Limiter
from gateway.settings import GatewaySettings
from taskgate.api_keys import normalise_api_key
from taskgate.redis_keys import KeyNamer

# The label of a request refused for its address's failed authentications.
REFUSED_DECISION = "auth_failures_limited"


class AuthFailureMiddleware:
    """Refuse over-limit address groups before authentication; count the 401s answered."""

    def __init__(
        self,
        limit: AuthFailureLimit,
        api_keys: ApiKeyValidator,
        trusted_proxies: TrustedProxies,
        public_credential_paths: frozenset[str],
    ) -> None:
        self._limit = limit
        self._api_keys = api_keys
        self._trusted_proxies = trusted_proxies
        self._public_credential_paths = public_credential_paths

    def process_resource(
        self, req: falcon.Request, resp: falcon.Response, resource: object, params: dict
    ) -> None:
        """Raise 429 for a credential from a group over its failure limit (a known-good key passes)."""
        if resource is None or req.method == "OPTIONS":
            return
        if getattr(resource, "public", False) and req.path not in self._public_credential_paths:
            return
        # Nearly always nothing is refused: then the client's address is not even parsed.
        if not self._limit.refuses_any():
            return
        refusal = self._limit.refusal(self._group(req))
        if refusal is not None and not self._holds_known_key(req):
            RATE_LIMIT_DECISIONS.labels(decision=REFUSED_DECISION).inc()
            raise refusal

    def process_response(
        self, req: falcon.Request, resp: falcon.Response, resource: object, req_succeeded: bool
    ) -> None:
        """Count a 401 against its address group; answer 429 instead when the group has no room left."""
        if resp.status_code != 401:
            return
        refusal = self._limit.count_failure(self._group(req))
        if refusal is not None:
            RATE_LIMIT_DECISIONS.labels(decision=REFUSED_DECISION).inc()
            resp.delete_header("WWW-Authenticate")
            raise refusal

    def _group(self, req: falcon.Request) -> str:
        group = req.context.get("client_group")
        if group is None:
            group = req.context.client_group = client_group(req, self._trusted_proxies)
        return group

    def _holds_known_key(self, req: falcon.Request) -> bool:
        credential = presented_credential(req)
        api_key = normalise_api_key(credential.value) if credential is not None else None
        return api_key is not None and self._api_keys.known_principal(api_key) is not None


def auth_failure_middleware(
    settings: GatewaySettings, limiter: Limiter, api_keys: ApiKeyValidator
) -> list[AuthFailureMiddleware]:
    """Return the failure-limit middleware counting with ``limiter`` (none when rate limits are off)."""
    if settings.rate_limit_disabled:
        return []
    limit = AuthFailureLimit(
        limiter,
        KeyNamer(settings.service_token),
        settings.auth_failures_per_minute,
        settings.auth_failures_per_hour,
    )
    paths = frozenset((LOGIN_PATH, REFRESH_PATH))
    return [AuthFailureMiddleware(limit, api_keys, settings.trusted_proxies, paths)]
