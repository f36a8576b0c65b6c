"""A run's spending limit: the budget in USD a task may cost, turned into a cap on its answer's tokens.

A schedule passes its ``max_budget_per_run_usd`` to each task it starts as ``options.max_budget_usd``.
A runner reads it with ``run_budget``, refuses a prompt the budget cannot pay for with
``BudgetTooSmallError`` (the task ends FAILED with its message), and otherwise limits the answer
to ``completion_token_cap`` tokens, so the run's reported cost never exceeds the budget. A model
without a completion price costs nothing per answer token, so its answers are not limited.

Pure logic: no I/O, prices in USD per 1,000 tokens as the runners configure them.
"""

import decimal
import math
from collections.abc import Mapping
from typing import Any

from orchestrator.errors import OrchestratorError
from orchestrator.runners.base import RunTask

BUDGET_OPTION = "max_budget_usd"
#: The LLM_OUTPUT payload members of an answer cut short by its budget (absent when it was not).
TRUNCATED_KEY = "truncated_by_budget"
BUDGET_KEY = "max_budget_usd"
#: Costs are reported rounded to this many decimals of a USD.
COST_DECIMALS = 8
# Half a unit of the last reported decimal: how far past an amount a cost still rounds to it.
_ROUNDING_MARGIN_USD = 0.5 * 10**-COST_DECIMALS
# How many tokens the computed cap may move to make up for floating point.
_ADJUSTMENT_STEPS = 3
_SHOWN_BUDGET_DIGITS = 8
_SHOWN_COST_DIGITS = 3


class BudgetTooSmallError(OrchestratorError):
    """The run's budget does not pay for its prompt; the message, shown as the task's error, says so."""

    default_message = "The run's budget does not cover its prompt"

    def __init__(self, budget_usd: float, needed_usd: float, *, first_token_too: bool = False) -> None:
        self.budget_usd = budget_usd
        self.needed_usd = needed_usd
        what = "its prompt and the first token of its answer" if first_token_too else "its prompt"
        super().__init__(
            f"The run's budget of ${format_usd(budget_usd, _SHOWN_BUDGET_DIGITS)} does not cover {what}"
            f" (about ${format_usd(needed_usd, _SHOWN_COST_DIGITS, round_up=True)})"
        )


def run_budget(task: RunTask) -> float | None:
    """Return the task's budget in USD: ``options.max_budget_usd`` when a positive finite number."""
    options: Mapping[str, Any] = task.options if isinstance(task.options, Mapping) else {}
    value = options.get(BUDGET_OPTION)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def cost_usd(
    prompt_tokens: int, completion_tokens: int, prompt_price_per_1k: float, completion_price_per_1k: float
) -> float:
    """Return the cost in USD of a call, rounded as it is reported."""
    cost = (prompt_tokens * prompt_price_per_1k + completion_tokens * completion_price_per_1k) / 1000
    return round(cost, COST_DECIMALS)


def completion_token_cap(
    budget_usd: float | None,
    prompt_tokens: int,
    prompt_price_per_1k: float,
    completion_price_per_1k: float,
) -> int | None:
    """Return the most answer tokens the budget pays for after the prompt (0 when none).

    None means no limit: the task has no budget, or the model's answer tokens cost nothing.
    The cost of the prompt and the cap's tokens, rounded as reported, is at most the budget.
    """
    if budget_usd is None or completion_price_per_1k <= 0:
        return None

    def reported_cost(completion_tokens: int) -> float:
        return cost_usd(prompt_tokens, completion_tokens, prompt_price_per_1k, completion_price_per_1k)

    prompt_cost = prompt_tokens * prompt_price_per_1k / 1000
    # The most a call may cost before its cost, rounded as reported, passes the budget.
    scale = 10**COST_DECIMALS
    most = math.floor(budget_usd * scale) / scale + _ROUNDING_MARGIN_USD
    cap = max(0, math.floor((most - prompt_cost) * 1000 / completion_price_per_1k))
    # Floating point may leave the cap a token or so off either way: the reported cost decides.
    for _ in range(_ADJUSTMENT_STEPS):
        if cap > 0 and reported_cost(cap) > budget_usd:
            cap -= 1
    for _ in range(_ADJUSTMENT_STEPS):
        if reported_cost(cap + 1) <= budget_usd:
            cap += 1
    return cap


def require_prompt_covered(
    budget_usd: float | None,
    prompt_tokens: int,
    prompt_price_per_1k: float,
    completion_price_per_1k: float,
) -> int | None:
    """Return the answer's token cap (None: no limit); raise BudgetTooSmallError when it is 0.

    A budget under the prompt's cost cannot be kept whatever the answer; one that pays for the
    prompt but not a single answer token leaves nothing to answer with.
    """
    if budget_usd is None:
        return None
    prompt_cost = cost_usd(prompt_tokens, 0, prompt_price_per_1k, completion_price_per_1k)
    if prompt_cost > budget_usd:
        raise BudgetTooSmallError(budget_usd, prompt_cost)
    cap = completion_token_cap(budget_usd, prompt_tokens, prompt_price_per_1k, completion_price_per_1k)
    if cap == 0:
        first_token_cost = cost_usd(prompt_tokens, 1, prompt_price_per_1k, completion_price_per_1k)
        raise BudgetTooSmallError(budget_usd, first_token_cost, first_token_too=True)
    return cap


def truncation_payload(budget_usd: float) -> dict[str, Any]:
    """Return the LLM_OUTPUT payload members that mark an answer cut short by its budget."""
    return {TRUNCATED_KEY: True, BUDGET_KEY: budget_usd}


def format_usd(amount: float, significant_digits: int, *, round_up: bool = False) -> str:
    """Return an amount of USD in plain decimals (no exponent), to so many significant digits.

    ``round_up`` rounds towards the larger amount, so an "about" figure is never under the real one.
    """
    value = decimal.Decimal(repr(float(amount)))
    if value == 0:
        return "0"
    exponent = value.adjusted() - significant_digits + 1
    rounding = decimal.ROUND_CEILING if round_up else decimal.ROUND_HALF_EVEN
    rounded = value.quantize(decimal.Decimal(1).scaleb(exponent), rounding=rounding)
    text = format(rounded, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text
