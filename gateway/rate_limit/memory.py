"""The in-process limiter, for a gateway without Redis (``make run``): exact, but per process.

Each gunicorn worker counts on its own, so with W workers a caller can make up to W times its
limit; it is meant for one machine in development, and Redis is what replicas share.
"""

import collections
import threading
import time
from collections.abc import Callable

from gateway.idempotency.claims import PendingClaim
from gateway.rate_limit.limiter import Admission
from gateway.rate_limit.limiter import RateLimitSubject
from gateway.rate_limit.limiter import build_status
from gateway.rate_limit.status import WINDOW_SECONDS

_SWEEP_EVERY = 1000
_LONGEST_WINDOW = max(WINDOW_SECONDS.values())


class InMemorySlidingWindowLimiter:
    """A sliding-window log per key (the request times still in the window), under one lock."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._logs: dict[tuple[str, str, str], collections.deque[float]] = {}
        self._checks = 0

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room; never makes the idempotency claim."""
        with self._lock:
            now = self._clock()
            logs = [
                self._logs.setdefault((subject.partition, subject.counter, rule.name), collections.deque())
                for rule in subject.rules
            ]
            for rule, log in zip(subject.rules, logs, strict=True):
                while log and log[0] <= now - rule.seconds:
                    log.popleft()
            allowed = all(len(log) < rule.limit for rule, log in zip(subject.rules, logs, strict=True))
            counts, resets = [], []
            for rule, log in zip(subject.rules, logs, strict=True):
                if allowed:
                    log.append(now)
                counts.append(len(log))
                resets.append(log[max(len(log) - rule.limit, 0)] + rule.seconds if log else now)
            self._checks += 1
            if self._checks % _SWEEP_EVERY == 0:
                self._sweep(now)
        return Admission(status=build_status(subject.rules, now, counts, resets, allowed))

    def _sweep(self, now: float) -> None:
        """Forget the logs with nothing left in any window, so memory follows the active callers."""
        for key in [key for key, log in self._logs.items() if not log or log[-1] <= now - _LONGEST_WINDOW]:
            del self._logs[key]
