"""The budget engine: checks a submission against the caller's token and cost budgets, and shows them.

A user's budgets are their tier's (``TASKGATE_RATE_LIMIT_TIERS``: ``tokens_per_minute``,
``usd_per_day``; 0 is none); an API key may carry smaller ones of its own, which bind inside the
user's (``orchestrator/domain/budgets.py``). Usage is what finished tasks recorded in the ledger
(``store/usage.py``), so budgets are checked at admission: a task admitted under the budget runs to
its end, and tasks already queued or running may take the caller past it. The check is one indexed
read, skipped altogether when no tier has a budget and the caller has no API key (which might) or
one already read to have none: a key's budgets are set when it is made and never change, so what
was read of a key once holds for as long as the key exists.
"""

import datetime
from collections.abc import Callable
from collections.abc import Mapping

from orchestrator.caller import Caller
from orchestrator.domain.budgets import Budget
from orchestrator.domain.budgets import CallerBudgets
from orchestrator.domain.budgets import UsageWindows
from orchestrator.domain.budgets import caller_budgets
from orchestrator.errors import BudgetExceededError
from orchestrator.store.base import Store
from taskgate.rate_limit_tiers import TierLimits
from taskgate.rate_limit_tiers import tier_limits
from taskgate.rfc3339 import utc_now

#: Keys without budgets remembered before they are all forgotten (and read once more each).
KEYS_REMEMBERED = 100_000


class BudgetEngine:
    """Admits submissions within the caller's budgets and reports what is left of them."""

    def __init__(
        self,
        store: Store,
        tiers: Mapping[str, TierLimits],
        clock: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self._store = store
        self._tiers = tiers
        self._clock = clock
        self._tiers_have_budgets = any(tier.tokens_per_minute or tier.usd_per_day for tier in tiers.values())
        # (user, key) pairs read to have no budget of the key's own (bounded: forgotten when full).
        self._keys_without_budgets: set[tuple[str, str]] = set()

    async def admit(self, caller: Caller) -> None:
        """Raise BudgetExceededError when one of the caller's budgets is used up now."""
        now = self._clock()
        refusal = await self.refusal(caller, now)
        if refusal is not None:
            raise BudgetExceededError(
                refusal.window,
                refusal.scope,
                refusal.limit,
                refusal.used,
                refusal.resets_at,
                refusal.retry_after(now),
            )

    async def refusal(self, caller: Caller, now: datetime.datetime) -> Budget | None:
        """Return the budget that refuses the caller's submission at ``now`` (a key's first), or None."""
        if not self._tiers_have_budgets and (
            not caller.api_key_id or (caller.user_id, caller.api_key_id) in self._keys_without_budgets
        ):
            return None
        return (await self.budgets(caller, now)).first_exhausted()

    async def budgets(self, caller: Caller, now: datetime.datetime | None = None) -> CallerBudgets:
        """Return the caller's budgets in the windows of ``now`` (the clock's, if not given)."""
        now = now or self._clock()
        usage = await self._store.budget_usage(caller.user_id, caller.api_key_id, now)
        if caller.api_key_id and usage.key_tokens_per_minute is None and usage.key_usd_per_day is None:
            if len(self._keys_without_budgets) >= KEYS_REMEMBERED:
                self._keys_without_budgets.clear()
            self._keys_without_budgets.add((caller.user_id, caller.api_key_id))
        tier = tier_limits(self._tiers, usage.tier if usage.tier is not None else caller.tier)
        return caller_budgets(usage, tier, UsageWindows.at(now))

    async def key_usage(self, caller: Caller) -> tuple[dict[str, tuple[int, float]], UsageWindows]:
        """Return each of the caller's keys' tokens this minute and cost today, and the windows read."""
        now = self._clock()
        return await self._store.key_usage(caller.user_id, now), UsageWindows.at(now)
