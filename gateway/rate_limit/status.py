"""What a rate-limit check found: per window, the limit and what is left of it.

The rate-limit middleware leaves the status of the current request in ``req.context.rate_limit``
(after counting the request), so resources such as ``GET /api/v1/auth/me`` can show the caller's
real remaining budget without a second look-up.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class WindowStatus:
    """One window (``minute`` or ``hour``): its limit, what remains, when a slot frees up."""

    name: str
    limit: int
    remaining: int
    reset_at: float


@dataclasses.dataclass(frozen=True)
class RateLimitStatus:
    """The outcome of one check across every window of the caller."""

    allowed: bool
    windows: tuple[WindowStatus, ...]
    limited_by: str | None = None
    retry_after_seconds: int = 0

    def window(self, name: str) -> WindowStatus | None:
        """Return the window with this name, if the caller has one."""
        return next((window for window in self.windows if window.name == name), None)
