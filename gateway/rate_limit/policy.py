"""Which requests are limited, against which counter, with which limits.

- An authenticated request counts against its caller: the API key (by its id) when it came with
  one, else the user (JWT callers), with a minute and an hour window. Limits are the key's own
  overrides where set, else its tier's (``tiers.py``).
- An unauthenticated request to a per-address route (``POST /api/v1/auth/register`` and
  ``/login``, ``/refresh``) counts against the client address (an IPv6 one with its /64,
  ``client_address.client_group``) and the route path, minute only.
- Anything else (health, readiness, metrics, OpenAPI, other public routes, refused credentials)
  is not limited.
"""

import functools
from collections.abc import Mapping

import falcon

from gateway.rate_limit.client_address import TrustedProxies
from gateway.rate_limit.client_address import client_group
from gateway.rate_limit.limiter import RateLimitSubject
from gateway.rate_limit.limiter import WindowRule
from gateway.redis_keys import KeyNamer
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import limits_for

_CACHED_CALLERS = 4096


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
        self._tiers = tiers
        self._address_limits = address_limits
        self._trusted_proxies = trusted_proxies
        # Two keyed hashes a request: worth remembering for the callers seen lately.
        self._caller_names = functools.lru_cache(maxsize=_CACHED_CALLERS)(self._names_of_caller)

    def subject_for(self, req: falcon.Request) -> RateLimitSubject | None:
        """Return the subject a routed request counts against, or None if it is not limited."""
        principal = req.context.get("principal")
        if principal is not None:
            limits = limits_for(
                self._tiers, principal.tier, principal.rate_limit_per_minute, principal.rate_limit_per_hour
            )
            partition, counter = self._caller_names(
                principal.tenant_id, principal.user_id, principal.api_key_id
            )
            return RateLimitSubject(
                partition=partition,
                counter=counter,
                rules=(WindowRule("minute", limits.per_minute), WindowRule("hour", limits.per_hour)),
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

    def _names_of_caller(self, tenant_id: str, user_id: str, api_key_id: str) -> tuple[str, str]:
        """Return a caller's hash tag (its user's) and counter (its API key's, else its user's)."""
        if api_key_id:
            counter = self._namer.digest("api-key", api_key_id)
        else:
            counter = self._namer.digest("user", tenant_id, user_id)
        return self._namer.user_partition(tenant_id, user_id), counter
