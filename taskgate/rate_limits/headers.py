"""The rate-limit fields of an answer: the ``X-RateLimit-*`` set and the IETF ``RateLimit`` fields.

The gateway sends them as HTTP headers; the orchestrator sends the same names, lower case, as
trailing metadata of a refused gRPC call.

``X-RateLimit-Limit-<Window>`` / ``X-RateLimit-Remaining-<Window>`` for each window length the
caller has (with a key's sub-limit, the user's or the key's window of that length, whichever has
less left: what the caller may still send), ``X-RateLimit-Reset`` (Unix seconds at which that
minute window next frees a slot), and the structured fields of draft-ietf-httpapi-ratelimit-headers:
``RateLimit-Policy`` lists every window as a named policy (``"minute";q=60;w=60``; a key's
sub-limit as ``"key-minute"``) and ``RateLimit`` what remains of it and in how many seconds a slot
frees up (``"minute";r=59;t=60``).
"""

import functools
import math

from taskgate.rate_limits.windows import WINDOW_SECONDS
from taskgate.rate_limits.windows import RateLimitStatus
from taskgate.rate_limits.windows import WindowStatus

RESET_WINDOW = "minute"
# Per window length, the names of its limit and remaining fields.
_FIELD_NAMES = {
    name: (f"X-RateLimit-Limit-{name.capitalize()}", f"X-RateLimit-Remaining-{name.capitalize()}")
    for name in WINDOW_SECONDS
}


def rate_limit_headers(status: RateLimitStatus) -> dict[str, str]:
    """Return the fields describing a status (without Retry-After, which only a refusal carries)."""
    # Per window length, the window with the least left (``RateLimitStatus.window``), in one pass.
    binding: dict[str, WindowStatus] = {}
    for window in status.windows:
        current = binding.get(window.name)
        if current is None or window.remaining < current.remaining:
            binding[window.name] = window
    headers = {}
    for name, window in binding.items():
        limit_name, remaining_name = _FIELD_NAMES[name]
        headers[limit_name] = str(window.limit)
        headers[remaining_name] = str(window.remaining)
    reset_window = binding.get(RESET_WINDOW)
    if reset_window is not None:
        headers["X-RateLimit-Reset"] = str(math.ceil(reset_window.reset_at))
    headers["RateLimit-Policy"] = _policy_field(
        tuple([(window.policy, window.limit, window.name) for window in status.windows])
    )
    checked_at = status.checked_at
    headers["RateLimit"] = ", ".join(
        [
            f'"{window.policy}";r={window.remaining};t={max(0, math.ceil(window.reset_at - checked_at))}'
            for window in status.windows
        ]
    )
    return headers


@functools.lru_cache(maxsize=256)
def _policy_field(windows: tuple[tuple[str, int, str], ...]) -> str:
    """Return the ``RateLimit-Policy`` field of windows (policy, limit, length): the same per caller."""
    return ", ".join(f'"{policy}";q={limit};w={WINDOW_SECONDS[name]}' for policy, limit, name in windows)
