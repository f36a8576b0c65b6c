"""What a rate-limit check found: per window, the limit and what is left of it.

The rate-limit middleware leaves the status of the current request in ``req.context.rate_limit``
(after counting the request), so resources such as ``GET /api/v1/auth/me`` can show the caller's
real remaining budget without a second look-up.
"""

import dataclasses

# The length of each window the limiter knows, by name.
WINDOW_SECONDS = {"minute": 60, "hour": 3600}


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


@dataclasses.dataclass(frozen=True)
class RateLimitStatus:
    """The outcome of one check across every window of the caller.

    ``checked_at`` is the limiter's clock (Unix seconds) when it counted; the ``reset_at`` of each
    window is on the same clock. ``limited_by`` names the window that refused the request (the
    one that frees a slot last when several are full) and ``retry_after_seconds`` is how long
    until it does.
    """

    allowed: bool
    windows: tuple[WindowStatus, ...]
    limited_by: str | None = None
    retry_after_seconds: int = 0
    checked_at: float = 0.0

    def window(self, name: str) -> WindowStatus | None:
        """Return the window with this name, if the caller has one."""
        return next((window for window in self.windows if window.name == name), None)
