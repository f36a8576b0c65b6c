"""Failed authentications limited per client address, so guessing and floods of bad credentials stop.

Every 401 the gateway answers counts against its client's address group (an IPv4 address, or an
IPv6 /64: ``client_address.client_group``) in a minute and an hour window of its own, counted by
the same limiter as every other limit (``Limiter.admit``), so with Redis the count is shared by
every worker and replica. Once a window is full, the failure that did not fit is answered 429
instead of 401, and the worker that saw it refuses that group's credentials without validating
them (no gRPC call, no database query) until the window frees a slot. Other workers refuse the
group from their own first failure on, so the answers are exact everywhere and the orchestrator
sees at most one more lookup per worker in a window.

Only the refusal is kept in-process (bounded; the oldest goes first): the limiter is asked only
when a 401 is answered, so requests that authenticate cost nothing here but one dictionary lookup.
If the limiter cannot be reached the failure is not counted (fail open, logged once a minute):
refusing every credential while Redis is away would lock every client out.
"""

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable

from gateway.errors import ApiError
from gateway.rate_limit.limiter import Limiter
from gateway.redis_client import RedisUnavailableError
from taskgate.outage_log import OutageLog
from taskgate.rate_limits.windows import RateLimitSubject
from taskgate.rate_limits.windows import WindowRule
from taskgate.redis_keys import KeyNamer

REFUSAL_CODE = "too_many_auth_failures"
REFUSAL_MESSAGE = "Too many failed authentications from this address"
_MAX_REFUSED_GROUPS = 10_000


@dataclasses.dataclass(frozen=True)
class _Refusal:
    until: float
    window: str


def refusal_error(window: str, retry_after_seconds: int) -> ApiError:
    """Return the 429 of an address over its failure limit: the full window named, and Retry-After."""
    return ApiError(
        429,
        REFUSAL_MESSAGE,
        REFUSAL_CODE,
        headers={"Retry-After": str(max(1, retry_after_seconds))},
        fields={"window": window},
    )


class AuthFailureLimit:
    """Counts failed authentications per address group and remembers the groups now refused."""

    def __init__(
        self,
        limiter: Limiter,
        namer: KeyNamer,
        per_minute: int,
        per_hour: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limiter = limiter
        self._namer = namer
        self._rules = (WindowRule("minute", per_minute), WindowRule("hour", per_hour))
        self._counter = namer.digest("auth-failures")
        self._clock = clock
        self._refused: collections.OrderedDict[str, _Refusal] = collections.OrderedDict()
        self._lock = threading.Lock()
        self._outages = OutageLog("failure limiter unreachable; failed authentications not counted")

    def refuses_any(self) -> bool:
        """Whether this worker holds any refused group (a read without the lock: a hint, then checked)."""
        return bool(self._refused)

    def refusal(self, group: str) -> ApiError | None:
        """Return the 429 for a group this worker knows to be over its limit, else None."""
        with self._lock:
            refused = self._refused.get(group)
            if refused is None:
                return None
            remaining = refused.until - self._clock()
            if remaining <= 0:
                del self._refused[group]
                return None
        return refusal_error(refused.window, math.ceil(remaining))

    def count_failure(self, group: str) -> ApiError | None:
        """Count a failed authentication of the group; return the 429 if its window had no room."""
        subject = RateLimitSubject(self._namer.address_partition(group), self._counter, self._rules)
        try:
            status = self._limiter.admit(subject).status
        except RedisUnavailableError as ex:
            self._outages.record(ex)
            return None
        if status.allowed:
            return None
        window = status.limited_by or self._rules[0].name
        with self._lock:
            self._refused.pop(group, None)
            while len(self._refused) >= _MAX_REFUSED_GROUPS:
                self._refused.popitem(last=False)
            self._refused[group] = _Refusal(self._clock() + status.retry_after_seconds, window)
        return refusal_error(window, status.retry_after_seconds)
