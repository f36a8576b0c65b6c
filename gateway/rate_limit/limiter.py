"""What a limiter counts and answers: the subject's windows in, the admission (and its status) out."""

import dataclasses
import math
from collections.abc import Sequence
from typing import Protocol

from gateway.idempotency.claims import ClaimOutcome
from gateway.idempotency.claims import PendingClaim
from gateway.rate_limit.status import WINDOW_SECONDS
from gateway.rate_limit.status import RateLimitStatus
from gateway.rate_limit.status import WindowStatus
from gateway.redis_keys import KeyNamer


@dataclasses.dataclass(frozen=True)
class WindowRule:
    """At most ``limit`` requests in any ``seconds`` long stretch of time."""

    name: str
    limit: int

    @property
    def seconds(self) -> int:
        """The window's length."""
        return WINDOW_SECONDS[self.name]


@dataclasses.dataclass(frozen=True)
class RateLimitSubject:
    """What one request counts against: the windows of a caller, or of a client address on a route.

    ``partition`` is the hash tag every key of the subject shares; ``counter`` names the subject
    within it (an API key, a user, or a route for per-address limits).
    """

    partition: str
    counter: str
    rules: tuple[WindowRule, ...]

    def key(self, rule: WindowRule) -> str:
        """Return the name of the sorted set (or in-memory log) holding one window's requests."""
        return KeyNamer.key(self.partition, "rl", self.counter, rule.name)


@dataclasses.dataclass(frozen=True)
class Admission:
    """A limiter's answer: the status after counting, and the idempotency claim made with it.

    ``claim`` is None when the limiter did not make the claim (it cannot fold one, or the request
    was refused); the idempotency middleware then makes it itself if the request carries a key.
    """

    status: RateLimitStatus
    claim: ClaimOutcome | None = None


class Limiter(Protocol):
    """Counts a request against its subject's windows, exactly, and says whether it may go on."""

    def admit(self, subject: RateLimitSubject, claim: PendingClaim | None = None) -> Admission:
        """Count the request if every window has room; raise RedisUnavailableError if it cannot tell."""


def build_status(
    rules: Sequence[WindowRule],
    checked_at: float,
    counts: Sequence[int],
    resets: Sequence[float],
    allowed: bool,
) -> RateLimitStatus:
    """Return the status of a check from each window's count (after counting) and reset time."""
    windows = tuple(
        WindowStatus(name=rule.name, limit=rule.limit, remaining=max(rule.limit - count, 0), reset_at=reset)
        for rule, count, reset in zip(rules, counts, resets, strict=True)
    )
    if allowed:
        return RateLimitStatus(allowed=True, windows=windows, checked_at=checked_at)
    full = [window for window, count in zip(windows, counts, strict=True) if count >= window.limit]
    binding = max(full, key=lambda window: window.reset_at)
    return RateLimitStatus(
        allowed=False,
        windows=windows,
        limited_by=binding.name,
        retry_after_seconds=max(1, math.ceil(binding.reset_at - checked_at)),
        checked_at=checked_at,
    )
