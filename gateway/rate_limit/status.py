"""What a rate-limit check found: per window, the limit and what is left of it.

The types are written once in ``taskgate.rate_limits.windows`` (the orchestrator limits its direct
gRPC callers with them too). The rate-limit middleware leaves the status of the current request in
``req.context.rate_limit`` (after counting the request), so resources such as
``GET /api/v1/auth/me`` can show the caller's real remaining budget without a second look-up.
"""

from taskgate.rate_limits.windows import WINDOW_SECONDS
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import WindowStatus

__all__ = ["WINDOW_SECONDS", "RateLimitStatus", "WindowStatus"]
