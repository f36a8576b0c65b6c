"""The tier table: requests a minute and an hour per tier, read from ``TASKGATE_RATE_LIMIT_TIERS``.

The variable is a JSON object ``{"<tier>": {"minute": N, "hour": N}, …}`` laid over the built-in
table, whose only tier is ``default`` (60 a minute, 1000 an hour). A caller whose tier is not in
the table (or who has none) gets ``default``, which the variable may redefine.
"""

import dataclasses
import json
from collections.abc import Mapping

DEFAULT_TIER = "default"
_MAX_LIMIT = 10_000_000
_WINDOWS = ("minute", "hour")


@dataclasses.dataclass(frozen=True)
class TierLimits:
    """How many requests a caller of a tier may make in any minute and in any hour."""

    per_minute: int
    per_hour: int


BUILT_IN_TIERS: Mapping[str, TierLimits] = {DEFAULT_TIER: TierLimits(per_minute=60, per_hour=1000)}


def parse_tiers(text: str) -> dict[str, TierLimits]:
    """Return the built-in table with the tiers of a JSON object laid over it; ValueError if malformed."""
    try:
        document = json.loads(text)
    except ValueError:
        raise ValueError("must be a JSON object") from None
    if not isinstance(document, dict):
        raise ValueError("must be a JSON object")
    tiers = dict(BUILT_IN_TIERS)
    for name, limits in document.items():
        if not name.strip():
            raise ValueError("tier names must not be empty")
        if not isinstance(limits, dict) or set(limits) != set(_WINDOWS):
            raise ValueError(f"tier {name!r} must be an object with exactly 'minute' and 'hour'")
        for window in _WINDOWS:
            value = limits[window]
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_LIMIT:
                raise ValueError(f"tier {name!r}: {window} must be an integer from 1 to {_MAX_LIMIT}")
        tiers[name] = TierLimits(per_minute=limits["minute"], per_hour=limits["hour"])
    return tiers


def limits_for(tiers: Mapping[str, TierLimits], tier: str, per_minute: int, per_hour: int) -> TierLimits:
    """Return a caller's limits: the key's own overrides where set (non-zero), else its tier's."""
    base = tiers.get(tier) or tiers[DEFAULT_TIER]
    return TierLimits(
        per_minute=per_minute if per_minute > 0 else base.per_minute,
        per_hour=per_hour if per_hour > 0 else base.per_hour,
    )
