"""The per-user rule, for both services: which windows an authenticated request counts in.

- Every request of a user counts in the user's minute and hour windows, whatever credential it
  came with (any of the user's API keys, an access token, a direct gRPC call with a key): the
  tier's limits are the user's budget, and creating keys never multiplies it.
- An API key with a rate-limit override of its own (``rate_limit_per_minute`` / ``_per_hour``)
  also counts in that key's windows: a sub-limit inside the user's budget. An override at or
  above the user's limit of that window would never bind, so it adds no window.

A request is admitted only when every one of its windows has room, and then counts in all of them
(``taskgate.rate_limits.sliding_window``), so a request the key's window refuses costs the user
nothing, and the other way round.
"""

import functools
from collections.abc import Mapping

from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import tier_limits
from taskgate.rate_limits.windows import PER_API_KEY
from taskgate.rate_limits.windows import PER_USER
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule
from taskgate.redis_keys import KeyNamer

_CACHED_CALLERS = 4096


def key_sub_limit(key_limit: int, user_limit: int) -> int:
    """Return a key's own limit where it binds inside its user's (set, and lower), else 0: none."""
    return key_limit if 0 < key_limit < user_limit else 0


class PerUserWindows:
    """Build the subject of an authenticated request: its user's windows and its key's sub-limits."""

    def __init__(self, namer: KeyNamer, tiers: Mapping[str, TierLimits]) -> None:
        self._namer = namer
        self._tiers = tiers
        # Keyed hashes cost a few microseconds each, and a subject is the same for every request of
        # a caller: worth remembering for the callers seen lately (the subject holds the hashes).
        self._subjects = functools.lru_cache(maxsize=_CACHED_CALLERS)(self._subject)

    def subject(
        self,
        tenant_id: str,
        user_id: str,
        tier: str,
        api_key_id: str = "",
        key_per_minute: int = 0,
        key_per_hour: int = 0,
    ) -> RateLimitSubject:
        """Return what a request of this user (with this key and its overrides, if any) counts in."""
        return self._subjects(tenant_id, user_id, tier, api_key_id, key_per_minute, key_per_hour)

    def _subject(
        self,
        tenant_id: str,
        user_id: str,
        tier: str,
        api_key_id: str = "",
        key_per_minute: int = 0,
        key_per_hour: int = 0,
    ) -> RateLimitSubject:
        limits = tier_limits(self._tiers, tier)
        partition, counter = self._names_of_user(tenant_id, user_id)
        rules = [
            WindowRule("minute", limits.per_minute, counted_per=PER_USER),
            WindowRule("hour", limits.per_hour, counted_per=PER_USER),
        ]
        if api_key_id:
            for name, own, users in (
                ("minute", key_per_minute, limits.per_minute),
                ("hour", key_per_hour, limits.per_hour),
            ):
                if key_sub_limit(own, users):
                    rules.append(
                        WindowRule(
                            name, own, counted_per=PER_API_KEY, counter=self._counter_of_key(api_key_id)
                        )
                    )
        return RateLimitSubject(partition=partition, counter=counter, rules=tuple(rules))

    def _names_of_user(self, tenant_id: str, user_id: str) -> tuple[str, str]:
        """Return a user's hash tag and the counter of the user's own windows."""
        return self._namer.user_partition(tenant_id, user_id), self._namer.digest("user", tenant_id, user_id)

    def _counter_of_key(self, api_key_id: str) -> str:
        return self._namer.digest("api-key", api_key_id)
