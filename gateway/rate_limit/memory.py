"""The in-process limiter, for a gateway without Redis (``make run``): exact, but per process.

The counting is ``taskgate.rate_limits.sliding_window.SlidingWindowLog`` (the orchestrator's too).
It is exact because the gateway then runs a single worker (``gateway.settings``); Redis is what
several workers and replicas share.
"""

import time
from collections.abc import Callable

from gateway.idempotency.claims import PendingClaim
from gateway.rate_limit.limiter import Admission
from taskgate.rate_limits.sliding_window import SlidingWindowLog
from taskgate.rate_limits.windows import RateLimitSubject


class InMemorySlidingWindowLimiter:
    """A sliding-window log per window (the request times still in it), under one lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._windows = SlidingWindowLog(clock)

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room; never makes the idempotency claim."""
        return Admission(status=self._windows.admit(subject))
