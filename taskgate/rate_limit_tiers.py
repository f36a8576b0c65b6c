"""The tier table: what a user of each tier may use, read from ``TASKGATE_RATE_LIMIT_TIERS``.

Both services read it: the gateway limits HTTP requests with it, the orchestrator limits callers
that reach its gRPC API directly and enforces the token and cost budgets.

The variable is a JSON object ``{"<tier>": {"minute": N, "hour": N, "tokens_per_minute": N,
"usd_per_day": X}, …}`` laid over the built-in table, whose only tier is ``default`` (60 requests
a minute, 1000 an hour, no token or cost budget). ``minute`` and ``hour`` are required; the two
budgets are optional and 0 (or absent) means none. A caller whose tier is not in the table (or
who has none) gets ``default``, which the variable may redefine.
"""

import dataclasses
import json
from collections.abc import Mapping

from taskgate.environment import Environment
from taskgate.environment import SettingsError

DEFAULT_TIER = "default"
VARIABLE = "TASKGATE_RATE_LIMIT_TIERS"
_MAX_LIMIT = 10_000_000
_MAX_TOKENS_PER_MINUTE = 1_000_000_000
_MAX_USD_PER_DAY = 1_000_000.0
_WINDOWS = ("minute", "hour")
_BUDGETS = ("tokens_per_minute", "usd_per_day")


@dataclasses.dataclass(frozen=True)
class TierLimits:
    """What a user of a tier may use: requests in any minute and any hour, and budgets.

    ``tokens_per_minute`` (model tokens recorded in any minute) and ``usd_per_day`` (cost recorded
    in a UTC day) are 0 when the tier has no such budget.
    """

    per_minute: int
    per_hour: int
    tokens_per_minute: int = 0
    usd_per_day: float = 0.0


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
        tiers[name] = _tier(name, limits)
    return tiers


def _tier(name: str, limits: object) -> TierLimits:
    if not isinstance(limits, dict) or not set(_WINDOWS) <= set(limits) <= set(_WINDOWS + _BUDGETS):
        raise ValueError(
            f"tier {name!r} must be an object with 'minute' and 'hour', and optionally"
            " 'tokens_per_minute' and 'usd_per_day'"
        )
    for window in _WINDOWS:
        value = limits[window]
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= _MAX_LIMIT:
            raise ValueError(f"tier {name!r}: {window} must be an integer from 1 to {_MAX_LIMIT}")
    tokens = limits.get("tokens_per_minute", 0)
    if isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 <= tokens <= _MAX_TOKENS_PER_MINUTE:
        raise ValueError(
            f"tier {name!r}: tokens_per_minute must be an integer from 0 to {_MAX_TOKENS_PER_MINUTE}"
        )
    usd = limits.get("usd_per_day", 0)
    if isinstance(usd, bool) or not isinstance(usd, (int, float)) or not 0 <= usd <= _MAX_USD_PER_DAY:
        raise ValueError(f"tier {name!r}: usd_per_day must be a number from 0 to {_MAX_USD_PER_DAY:g}")
    return TierLimits(
        per_minute=limits["minute"], per_hour=limits["hour"], tokens_per_minute=tokens, usd_per_day=float(usd)
    )


def tier_limits(tiers: Mapping[str, TierLimits], tier: str) -> TierLimits:
    """Return a tier's limits, ``default``'s for a tier the table does not name."""
    return tiers.get(tier) or tiers[DEFAULT_TIER]


def limits_for(tiers: Mapping[str, TierLimits], tier: str, per_minute: int, per_hour: int) -> TierLimits:
    """Return a caller's limits: the key's own overrides where set (non-zero), else its tier's."""
    base = tier_limits(tiers, tier)
    return dataclasses.replace(
        base,
        per_minute=per_minute if per_minute > 0 else base.per_minute,
        per_hour=per_hour if per_hour > 0 else base.per_hour,
    )


def read_tiers(environment: Environment) -> dict[str, TierLimits]:
    """Read the tier table from ``TASKGATE_RATE_LIMIT_TIERS``; SettingsError naming it if malformed."""
    value = environment.raw(VARIABLE)
    if value is None:
        return dict(BUILT_IN_TIERS)
    try:
        return parse_tiers(value)
    except ValueError as ex:
        raise SettingsError(f"{VARIABLE} {ex}") from None
