"""The rate-limit response headers, written once in ``taskgate.rate_limits.headers`` for both services."""

from taskgate.rate_limits.headers import RESET_WINDOW
from taskgate.rate_limits.headers import rate_limit_headers

__all__ = ["RESET_WINDOW", "rate_limit_headers"]
