"""The rate-limit response headers: the ``X-RateLimit-*`` set and the IETF ``RateLimit`` fields.

``X-RateLimit-Limit-<Window>`` / ``X-RateLimit-Remaining-<Window>`` for each window the caller has,
``X-RateLimit-Reset`` (Unix seconds at which the minute window next frees a slot), and the
structured fields of draft-ietf-httpapi-ratelimit-headers: ``RateLimit-Policy`` lists each window
as a named policy (``"minute";q=60;w=60``) and ``RateLimit`` what remains of it and in how many
seconds a slot frees up (``"minute";r=59;t=60``).
"""

import math

from gateway.rate_limit.status import WINDOW_SECONDS
from gateway.rate_limit.status import RateLimitStatus

RESET_WINDOW = "minute"


def rate_limit_headers(status: RateLimitStatus) -> dict[str, str]:
    """Return the headers describing a status (without Retry-After, which only a refusal carries)."""
    headers = {}
    for window in status.windows:
        title = window.name.capitalize()
        headers[f"X-RateLimit-Limit-{title}"] = str(window.limit)
        headers[f"X-RateLimit-Remaining-{title}"] = str(window.remaining)
    reset_window = status.window(RESET_WINDOW)
    if reset_window is not None:
        headers["X-RateLimit-Reset"] = str(math.ceil(reset_window.reset_at))
    headers["RateLimit-Policy"] = ", ".join(
        f'"{window.name}";q={window.limit};w={WINDOW_SECONDS[window.name]}' for window in status.windows
    )
    headers["RateLimit"] = ", ".join(
        f'"{window.name}";r={window.remaining};t={max(0, math.ceil(window.reset_at - status.checked_at))}'
        for window in status.windows
    )
    return headers
