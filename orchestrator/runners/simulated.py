"""The simulated agent: streams realistic events, token usage and cost without calling a model.

It is deterministic (the same task gives the same events and answer), answers simple arithmetic
correctly, and paces itself with ``sim_step_seconds`` so a task takes about 1.5 s by default.

A task's ``context.simulation`` object shapes a run for load tests and demos (docs/api.md):
``partials`` streams that many ``LLM_PARTIAL`` events (the answer grows to fill them) and
``step_seconds`` replaces the orchestrator's step pause for this task; ``approval_tool`` names a
tool the run proposes after analysing, marked as needing approval. Values out of range are
clamped; values of the wrong type are ignored.

A task with a budget (``options.max_budget_usd``, set by schedules; ``budget.py``) fails after
``AGENT_STARTED`` when the budget does not pay for its prompt, and otherwise has its answer cut
to the words the budget pays for, its ``LLM_OUTPUT`` then marked ``truncated_by_budget``.
"""

import dataclasses
import itertools
import math
import re
from collections.abc import Mapping

from orchestrator import events
from orchestrator.events import compact_json
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.runners.base import RunTask
from orchestrator.runners.budget import cost_usd
from orchestrator.runners.budget import require_prompt_covered
from orchestrator.runners.budget import run_budget
from orchestrator.runners.budget import truncation_payload
from orchestrator.runners.simulated_answers import compose_answer
from orchestrator.runners.steps import RunSteps

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
CHARS_PER_TOKEN = 4
_MIN_CHUNKS = 3
_MAX_CHUNKS = 8
_WORDS_PER_CHUNK = 5
SIMULATION_KEY = "simulation"
MAX_SIMULATED_PARTIALS = 100_000
MAX_SIMULATED_STEP_SECONDS = 60.0
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
TOOL_INVOKED = "TOOL_INVOKED"
TOOL_OBSERVATION = "TOOL_OBSERVATION"


@dataclasses.dataclass(frozen=True)
class Simulation:
    """How one run is shaped: the number of streamed deltas (None: natural) and the step pause."""

    partials: int | None
    step_seconds: float
    #: A tool the run proposes to call after analysing, marked as needing approval (None: no tool).
    approval_tool: str | None = None

    @classmethod
    def for_task(cls, task: RunTask, default_step_seconds: float) -> "Simulation":
        """Read ``context.simulation`` of a task, clamping numbers and ignoring wrong types."""
        options = task.context.get(SIMULATION_KEY) if isinstance(task.context, Mapping) else None
        if not isinstance(options, Mapping):
            return cls(None, default_step_seconds)
        partials = options.get("partials")
        step_seconds = options.get("step_seconds")
        tool = options.get("approval_tool")
        return cls(
            partials=min(max(partials, 1), MAX_SIMULATED_PARTIALS) if _is_number(partials, int) else None,
            step_seconds=(
                min(max(float(step_seconds), 0.0), MAX_SIMULATED_STEP_SECONDS)
                if _is_number(step_seconds, (int, float))
                else default_step_seconds
            ),
            approval_tool=tool if isinstance(tool, str) and TOOL_NAME.match(tool) else None,
        )


def _is_number(value: object, kinds: type | tuple[type, ...]) -> bool:
    return isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)


class SimulatedRunner(Runner):
    """A built-in agent that needs no model: useful for development, tests and load runs."""

    def __init__(self, step_seconds: float = 0.2) -> None:
        self._step_seconds = step_seconds

    async def run(self, ctx: RunContext) -> RunResult:
        """Emit the agent's events step by step and return its answer with usage and cost.

        Each event ends a step and saves a checkpoint with it; the run is deterministic, so the
        checkpoint needs only the step's number, and a resumed run skips the steps it covers.
        """
        task = ctx.task
        simulation = Simulation.for_task(task, self._step_seconds)
        model = model_for_tier(task.model_tier)
        answer = compose_answer(task.query)
        if simulation.partials is not None:
            answer = pad_answer(answer, simulation.partials)
        prompt_tokens = estimate_tokens(prompt_text(task))
        budget = run_budget(task)
        steps = RunSteps(ctx)

        await steps.emit(
            events.AGENT_STARTED, "Simulated agent started", {"model": model, "mode": task.mode}, AGENT_ID
        )
        # Before any of the answer, as the OpenAI-compatible runner does before calling its model.
        cap = require_prompt_covered(budget, prompt_tokens, *PRICES_PER_1K_TOKENS[model])
        kept = truncate_to_tokens(answer, cap)
        truncated, answer = kept != answer, kept
        completion_tokens = estimate_tokens(answer)
        cost = price(model, prompt_tokens, completion_tokens)
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost_usd": cost,
        }
        await _pace(ctx, steps, simulation, 1.0)
        # The earlier turns of the session are part of the prompt; the payload says how many it got.
        if await steps.emit(
            events.AGENT_THINKING,
            "Analysing the request",
            {"step": "analyse", "history_turns": len(task.history)},
            AGENT_ID,
        ):
            await ctx.report_progress(0.2)
        if simulation.approval_tool is not None:
            await _call_approved_tool(ctx, steps, simulation.approval_tool, task.query)
        await _pace(ctx, steps, simulation, 2.0)
        chunks = split_into_chunks(answer, simulation.partials)
        for index, chunk in enumerate(chunks):
            await steps.emit(events.LLM_PARTIAL, chunk, {"delta": chunk, "index": index}, AGENT_ID)
            await _pace(ctx, steps, simulation, 0.5)
        output = {"response": answer, "usage": usage, "model": model, "provider": PROVIDER}
        if truncated and budget is not None:
            output |= truncation_payload(budget)
        if await steps.emit(events.LLM_OUTPUT, answer, output, AGENT_ID):
            await ctx.report_progress(0.9)
        await _pace(ctx, steps, simulation, 1.0)
        await steps.emit(events.AGENT_COMPLETED, "Simulated agent completed", {"usage": usage}, AGENT_ID)
        return RunResult(answer, prompt_tokens, completion_tokens, cost, model, PROVIDER)


async def _call_approved_tool(ctx: RunContext, steps: RunSteps, tool: str, query: str) -> None:
    """Propose a tool call marked as needing approval; once approved, make it as approved.

    The request is made only while the call is still to be made: a run resumed after it was made
    goes straight on to what it returned. An approver's modified action that is a string is the
    call as they rewrote it: the run records that string as the action it carries out.
    """
    if steps.is_done():
        steps.skip()
    else:
        proposed = {"tool": tool, "arguments": {"query": query}}
        approved = await ctx.request_approval(f"tool:{tool}", proposed, f"The tool {tool} needs approval")
        action = approved.action
        payload = {
            "tool": tool,
            "approved_action": action if isinstance(action, str) else dict(action),
            "modified": approved.modified,
            "feedback": approved.feedback,
        }
        await steps.emit(TOOL_INVOKED, f"Calling {tool}", payload, AGENT_ID)
    await steps.emit(TOOL_OBSERVATION, f"{tool} returned", {"tool": tool, "result": "simulated"}, AGENT_ID)


async def _pace(ctx: RunContext, steps: RunSteps, simulation: Simulation, steps_long: float) -> None:
    """Reach a checkpoint and wait before the next step, unless an earlier attempt did that step."""
    if steps.is_done():
        return
    await ctx.checkpoint()
    if simulation.step_seconds > 0:
        await ctx.sleep(simulation.step_seconds * steps_long)


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
    return max(1, math.ceil(len(text) / CHARS_PER_TOKEN))


def price(model: str, prompt_tokens: int, completion_tokens: int) -> float:
    """Return the cost in USD of a call to a simulated model."""
    return cost_usd(prompt_tokens, completion_tokens, *PRICES_PER_1K_TOKENS[model])


def truncate_to_tokens(text: str, max_tokens: int | None) -> str:
    """Return the longest run of whole words of a text estimated at no more than ``max_tokens``.

    None leaves the text whole; when even its first word is too long, that word is cut.
    """
    limit = None if max_tokens is None else max_tokens * CHARS_PER_TOKEN
    if limit is None or len(text) <= limit:
        return text
    kept = ""
    for word in re.findall(r"\s*\S+", text):
        if len(kept) + len(word) > limit:
            break
        kept += word
    return kept or text[:limit]


def pad_answer(answer: str, partials: int) -> str:
    """Lengthen an answer with numbered filler words until it has at least ``partials`` words."""
    missing = partials - len(answer.split())
    if missing <= 0:
        return answer
    return answer + " " + " ".join(f"token{index}" for index in range(1, missing + 1))


def split_into_chunks(text: str, count: int | None = None) -> list[str]:
    """Split an answer into streaming chunks that concatenate back to it exactly.

    Without ``count`` it picks a few chunks of about five words; with it, at most that many.
    """
    words = re.findall(r"\s*\S+", text)
    if not words:
        return [text]
    if count is not None:
        # Exactly min(count, words) chunks, the first ones a word longer when they do not divide.
        size, extra = divmod(len(words), min(count, len(words)))
        bounds = [0]
        for index in range(min(count, len(words))):
            bounds.append(bounds[-1] + size + (1 if index < extra else 0))
        return ["".join(words[start:end]) for start, end in itertools.pairwise(bounds)]
    count = min(_MAX_CHUNKS, max(_MIN_CHUNKS, math.ceil(len(words) / _WORDS_PER_CHUNK)))
    count = min(count, len(words))
    size = math.ceil(len(words) / count)
    return ["".join(words[start : start + size]) for start in range(0, len(words), size)]
