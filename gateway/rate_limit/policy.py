"""Which requests are limited, against which counter, with which limits.

- An authenticated request counts in its user's minute and hour windows, whichever credential it
  came with (every key of the user and every access token share them, at the tier's limits), and,
  made with an API key that has a lower limit of its own, in that key's windows too (a sub-limit):
  ``taskgate.rate_limits.per_user``, the rule the orchestrator applies to direct gRPC callers.
- An unauthenticated request to a per-address route (``POST /api/v1/auth/register`` and
  ``/login``, ``/refresh``) counts against the client address (an IPv6 one with its /64,
  ``client_address.client_group``) and the route path, minute only.
- Anything else (health, readiness, metrics, OpenAPI, other public routes, refused credentials)
  is not limited.
"""

from collections.abc import Mapping

import falcon

from gateway.rate_limit.client_address import TrustedProxies
from gateway.rate_limit.client_address import client_group
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limits.per_user import PerUserWindows
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule
from taskgate.redis_keys import KeyNamer


class RateLimitPolicy:
    """Map a request to the subject it is counted against, or None when it is not limited."""

    def __init__(
        self,
        namer: KeyNamer,
        tiers: Mapping[str, TierLimits],
        address_limits: Mapping[str, int],
        trusted_proxies: TrustedProxies,
    ) -> None:
        self._namer = namer
        self._users = PerUserWindows(namer, tiers)
        self._address_limits = address_limits
        self._trusted_proxies = trusted_proxies

    def subject_for(self, req: falcon.Request) -> RateLimitSubject | None:
        """Return the subject a routed request counts against, or None if it is not limited."""
        principal = req.context.get("principal")
        if principal is not None:
            return self._users.subject(
                principal.tenant_id,
                principal.user_id,
                principal.tier,
                principal.api_key_id,
                principal.rate_limit_per_minute,
                principal.rate_limit_per_hour,
            )
        per_minute = self._address_limits.get(req.path) if req.method == "POST" else None
        if per_minute is None:
            return None
        address = client_group(req, self._trusted_proxies)
        return RateLimitSubject(
            partition=self._namer.address_partition(address),
            counter=self._namer.digest("route", req.path),
            rules=(WindowRule("minute", per_minute),),
        )
