"""Token and cost budgets: the windows usage is counted in, and which budget refuses a submission.

Two budgets, each a user's (their tier's, ``taskgate/rate_limit_tiers.py``) and optionally a key's
own, smaller one: ``tokens_minute``, the model tokens recorded in the current UTC minute, and
``cost_day``, the cost in USD recorded in the current UTC day. Windows are fixed: what was recorded
in a window counts until it ends, then the next window starts at nothing. A budget whose usage has
reached its limit refuses new submissions until its window ends; a key's budgets are looked at
before its user's, so the narrower one is the one reported.
"""

import dataclasses
import datetime
import math

from taskgate.rate_limit_tiers import TierLimits

TOKENS_MINUTE = "tokens_minute"
COST_DAY = "cost_day"
USER = "user"
KEY = "key"

MINUTE = datetime.timedelta(minutes=1)
DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class UsageWindows:
    """The UTC minute and the UTC day an instant falls in."""

    minute_start: datetime.datetime
    day_start: datetime.datetime

    @classmethod
    def at(cls, now: datetime.datetime) -> "UsageWindows":
        """Return the windows of an aware instant."""
        utc = now.astimezone(datetime.UTC)
        minute = utc.replace(second=0, microsecond=0)
        return cls(minute, minute.replace(hour=0, minute=0))

    @property
    def minute_end(self) -> datetime.datetime:
        """When the minute's token count starts again from nothing."""
        return self.minute_start + MINUTE

    @property
    def day_end(self) -> datetime.datetime:
        """When the day's cost starts again from nothing."""
        return self.day_start + DAY


@dataclasses.dataclass(frozen=True)
class BudgetUsage:
    """What the store holds for one caller in the current windows (``Store.budget_usage``).

    ``tier`` is None when the user has no account row (the caller's own tier then applies). The
    key's fields are zero and None for a caller without an API key, or one without budgets.
    """

    tier: str | None
    user_tokens: int = 0
    user_cost: float = 0.0
    key_tokens: int = 0
    key_cost: float = 0.0
    key_tokens_per_minute: int | None = None
    key_usd_per_day: float | None = None


@dataclasses.dataclass(frozen=True)
class Budget:
    """One budget in its current window: whose it is, its limit (0: none), what was used, when it resets."""

    window: str
    scope: str
    limit: float
    used: float
    resets_at: datetime.datetime

    @property
    def exhausted(self) -> bool:
        """Whether the budget is set and its window's usage has reached it."""
        return self.limit > 0 and self.used >= self.limit

    @property
    def remaining(self) -> float | None:
        """What is left in the window (never below 0); None for no budget."""
        return max(self.limit - self.used, 0) if self.limit > 0 else None

    def retry_after(self, now: datetime.datetime) -> int:
        """Whole seconds until the window resets, at least 1."""
        return max(1, math.ceil((self.resets_at - now).total_seconds()))


@dataclasses.dataclass(frozen=True)
class CallerBudgets:
    """A caller's budgets now: their user's, and their key's own when it has any."""

    user: tuple[Budget, Budget]
    key: tuple[Budget, Budget] | None

    def first_exhausted(self) -> Budget | None:
        """Return the budget that refuses a submission now (a key's before its user's), or None."""
        for budget in (*(self.key or ()), *self.user):
            if budget.exhausted:
                return budget
        return None


def caller_budgets(usage: BudgetUsage, tier: TierLimits, windows: UsageWindows) -> CallerBudgets:
    """Return the user's budgets (the tier's) and the key's own (when it has one of either)."""
    user = (
        Budget(TOKENS_MINUTE, USER, tier.tokens_per_minute, usage.user_tokens, windows.minute_end),
        Budget(COST_DAY, USER, tier.usd_per_day, usage.user_cost, windows.day_end),
    )
    if usage.key_tokens_per_minute is None and usage.key_usd_per_day is None:
        return CallerBudgets(user, None)
    key = key_budgets(
        usage.key_tokens_per_minute, usage.key_usd_per_day, usage.key_tokens, usage.key_cost, windows
    )
    return CallerBudgets(user, key)


def key_budgets(
    tokens_per_minute: int | None,
    usd_per_day: float | None,
    used_tokens: int,
    used_cost: float,
    windows: UsageWindows,
) -> tuple[Budget, Budget]:
    """Return a key's own budgets (None: none, a limit of 0) with what it used in the windows."""
    return (
        Budget(TOKENS_MINUTE, KEY, tokens_per_minute or 0, used_tokens, windows.minute_end),
        Budget(COST_DAY, KEY, usd_per_day or 0.0, used_cost, windows.day_end),
    )
