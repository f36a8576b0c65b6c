"""What a limiter counts and answers, for both services: window rules in, a status out.

A subject (``RateLimitSubject``) is what one request counts against: its windows, all checked and
counted together (a request is admitted only if every window has room, and a refused request
counts in none). A user's requests count in the user's minute and hour windows; a request made
with an API key that has a lower limit of its own also counts in that key's windows (a sub-limit
inside the user's budget): those rules name their own counter and say they are counted per key.
"""

import dataclasses
import math
from collections.abc import Sequence

from taskgate.redis_keys import KeyNamer

# The length of each window a limiter knows, by name.
WINDOW_SECONDS = {"minute": 60, "hour": 3600}

# Whom a window counts for (``WindowRule.counted_per``), named in a refusal.
PER_USER = "user"
PER_API_KEY = "api_key"
# The names under which an API key's sub-limit windows are listed in the ``RateLimit`` fields.
_POLICY_PREFIXES = {PER_API_KEY: "key-"}


@dataclasses.dataclass(frozen=True)
class WindowRule:
    """At most ``limit`` requests in any ``seconds`` long stretch of time.

    ``counter`` names the window's counter when it is not the subject's own (an API key's
    sub-limit inside its user's windows); ``counted_per`` says whose window it is (``user``,
    ``api_key``; empty for the per-address limits), for the refusal to name it.
    """

    name: str
    limit: int
    counted_per: str = ""
    counter: str = ""

    @property
    def seconds(self) -> int:
        """The window's length."""
        return WINDOW_SECONDS[self.name]


@dataclasses.dataclass(frozen=True)
class RateLimitSubject:
    """What one request counts against: the windows of a caller, or of a client address on a route.

    ``partition`` is the hash tag every key of the subject shares; ``counter`` names the subject
    within it (a user, or a route for per-address limits); a rule with a counter of its own (an
    API key's sub-limit) counts under that one, in the same partition.
    """

    partition: str
    counter: str
    rules: tuple[WindowRule, ...]

    def counter_of(self, rule: WindowRule) -> str:
        """Return the counter a rule's window counts under."""
        return rule.counter or self.counter

    def key(self, rule: WindowRule) -> str:
        """Return the name of the sorted set (or in-memory log) holding one window's requests."""
        return KeyNamer.key(self.partition, "rl", self.counter_of(rule), rule.name)


@dataclasses.dataclass(frozen=True)
class WindowStatus:
    """One window (``minute`` or ``hour``): its limit, what remains, when a slot frees up.

    ``reset_at`` (Unix seconds) is when the oldest request that still counts against a full window
    leaves it, so that one more request fits; for a window with room, when its oldest request leaves.
    """

    name: str
    limit: int
    remaining: int
    reset_at: float
    counted_per: str = ""

    @property
    def policy(self) -> str:
        """The window's name in the ``RateLimit-Policy`` and ``RateLimit`` fields (``key-minute``…)."""
        return _POLICY_PREFIXES.get(self.counted_per, "") + self.name


@dataclasses.dataclass(frozen=True)
class RateLimitStatus:
    """The outcome of one check across every window of the subject.

    ``checked_at`` is the limiter's clock (Unix seconds) when it counted; the ``reset_at`` of each
    window is on the same clock. ``limited_by`` names the window that refused the request (the
    one that frees a slot last when several are full), ``limited_per`` whose window it is
    (``user``, ``api_key``; empty for a per-address limit), and ``retry_after_seconds`` is how
    long until it frees a slot.
    """

    allowed: bool
    windows: tuple[WindowStatus, ...]
    limited_by: str | None = None
    retry_after_seconds: int = 0
    checked_at: float = 0.0
    limited_per: str = ""

    def window(self, name: str) -> WindowStatus | None:
        """Return the window of this length that binds first (least remaining), if there is one.

        With a key's sub-limit there are two of each length, the user's and the key's; what the
        caller may still send is the smaller remainder.
        """
        candidates = [window for window in self.windows if window.name == name]
        return min(candidates, key=lambda window: window.remaining) if candidates else None

    def window_names(self) -> tuple[str, ...]:
        """Return the window lengths the subject has, in order, each once."""
        return tuple(dict.fromkeys(window.name for window in self.windows))


def build_status(
    rules: Sequence[WindowRule],
    checked_at: float,
    counts: Sequence[int],
    resets: Sequence[float],
    allowed: bool,
) -> RateLimitStatus:
    """Return the status of a check from each window's count (after counting) and reset time."""
    windows = tuple(
        WindowStatus(
            name=rule.name,
            limit=rule.limit,
            remaining=max(rule.limit - count, 0),
            reset_at=reset,
            counted_per=rule.counted_per,
        )
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
        limited_per=binding.counted_per,
    )
