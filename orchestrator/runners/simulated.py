"""The simulated agent: streams realistic events, token usage and cost without calling a model.

It is deterministic (the same task gives the same events and answer), answers simple arithmetic
correctly, and paces itself with ``sim_step_seconds`` so a task takes about 1.5 s by default.
"""

import math
import re

from orchestrator import events
from orchestrator.events import compact_json
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.runners.base import RunTask
from orchestrator.runners.simulated_answers import compose_answer

PROVIDER = "taskgate-simulated"
AGENT_ID = "simulated-agent"
SYSTEM_PROMPT = (
    "You are taskgate's simulated agent. Answer the user's question accurately and concisely, "
    "show the result first, then one sentence of explanation."
)
MODELS = {"small": "taskgate-sim-small", "medium": "taskgate-sim-medium", "large": "taskgate-sim-large"}
# USD per 1,000 prompt and completion tokens, priced like the small, medium and large models of
# hosted LLM providers so cost figures look like real ones.
PRICES_PER_1K_TOKENS = {
    "taskgate-sim-small": (0.00015, 0.0006),
    "taskgate-sim-medium": (0.0025, 0.01),
    "taskgate-sim-large": (0.01, 0.03),
}
_CHARS_PER_TOKEN = 4
_MIN_CHUNKS = 3
_MAX_CHUNKS = 8
_WORDS_PER_CHUNK = 5


class SimulatedRunner(Runner):
    """A built-in agent that needs no model: useful for development, tests and load runs."""

    def __init__(self, step_seconds: float = 0.2) -> None:
        self._step_seconds = step_seconds

    async def run(self, ctx: RunContext) -> RunResult:
        """Emit the agent's events step by step and return its answer with usage and cost."""
        task = ctx.task
        model = model_for_tier(task.model_tier)
        answer = compose_answer(task.query)
        prompt_tokens = estimate_tokens(prompt_text(task))
        completion_tokens = estimate_tokens(answer)
        cost_usd = price(model, prompt_tokens, completion_tokens)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost_usd": cost_usd,
        }

        await ctx.emit(
            events.AGENT_STARTED, "Simulated agent started", {"model": model, "mode": task.mode}, AGENT_ID
        )
        await self._wait_steps(ctx, 1.0)
        # The earlier turns of the session are part of the prompt; the payload says how many it got.
        await ctx.emit(
            events.AGENT_THINKING,
            "Analysing the request",
            {"step": "analyse", "history_turns": len(task.history)},
            AGENT_ID,
        )
        await ctx.report_progress(0.2)
        await self._wait_steps(ctx, 2.0)
        chunks = split_into_chunks(answer)
        for index, chunk in enumerate(chunks):
            await ctx.emit(events.LLM_PARTIAL, chunk, {"delta": chunk, "index": index}, AGENT_ID)
            await self._wait_steps(ctx, 0.5)
        await ctx.emit(
            events.LLM_OUTPUT,
            answer,
            {"response": answer, "usage": usage, "model": model, "provider": PROVIDER},
            AGENT_ID,
        )
        await ctx.report_progress(0.9)
        await self._wait_steps(ctx, 1.0)
        await ctx.emit(events.AGENT_COMPLETED, "Simulated agent completed", {"usage": usage}, AGENT_ID)
        return RunResult(answer, prompt_tokens, completion_tokens, cost_usd, model, PROVIDER)

    async def _wait_steps(self, ctx: RunContext, steps: float) -> None:
        await ctx.checkpoint()
        if self._step_seconds > 0:
            await ctx.sleep(self._step_seconds * steps)


def model_for_tier(model_tier: str) -> str:
    """Return the simulated model of a tier (small when the tier is unknown)."""
    return MODELS.get(model_tier, MODELS["small"])


def prompt_text(task: RunTask) -> str:
    """Return the text a real agent would send: system prompt, earlier turns, context and query."""
    parts = [SYSTEM_PROMPT]
    for turn in task.history:
        parts.extend((turn.query, turn.result))
    if task.context:
        parts.append(compact_json(dict(task.context)))
    parts.append(task.query)
    return "\n".join(parts)


def estimate_tokens(text: str) -> int:
    """Estimate tokens the usual way: about four characters each, at least one."""
    return max(1, math.ceil(len(text) / _CHARS_PER_TOKEN))


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """Return the cost in USD of a call to a simulated model."""
    prompt_price, completion_price = PRICES_PER_1K_TOKENS[model]
    return round((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000, 8)


def split_into_chunks(text: str) -> list[str]:
    """Split an answer into a few streaming chunks that concatenate back to it exactly."""
    words = re.findall(r"\s*\S+", text)
    if not words:
        return [text]
    count = min(_MAX_CHUNKS, max(_MIN_CHUNKS, math.ceil(len(words) / _WORDS_PER_CHUNK)))
    count = min(count, len(words))
    size = math.ceil(len(words) / count)
    return ["".join(words[start : start + size]) for start in range(0, len(words), size)]
