"""The simulated agent: deterministic events and answers, correct arithmetic, realistic usage."""

import asyncio
import math

import pytest

from orchestrator.runners.base import RunContext
from orchestrator.runners.base import RunTask
from orchestrator.runners.base import SessionTurn
from orchestrator.runners.simulated import PRICES_PER_1K_TOKENS
from orchestrator.runners.simulated import PROVIDER
from orchestrator.runners.simulated import SYSTEM_PROMPT
from orchestrator.runners.simulated import SimulatedRunner
from orchestrator.runners.simulated import Simulation
from orchestrator.runners.simulated import split_into_chunks
from orchestrator.runners.simulated_answers import compose_answer


class RecordingContext(RunContext):
    """A run context that keeps what the runner reports."""

    def __init__(self, task: RunTask) -> None:
        self._task = task
        self.events: list[tuple[str, str, dict, str]] = []
        self.checkpoints = 0
        self.saved: list[dict] = []
        self.slept = 0.0
        self.progress: list[float] = []

    @property
    def task(self) -> RunTask:
        return self._task

    async def emit(self, event_type, message="", payload=None, agent_id="", checkpoint=None):
        self.events.append((event_type, message, dict(payload or {}), agent_id))
        if checkpoint is not None:
            self.saved.append(dict(checkpoint))

    async def checkpoint(self):
        self.checkpoints += 1

    async def sleep(self, seconds):
        self.slept += seconds

    async def report_progress(self, fraction):
        self.progress.append(fraction)


def run(query: str, model_tier: str = "small", **task_fields) -> tuple:
    ctx = RecordingContext(RunTask("task-1", query, "standard", model_tier, **task_fields))
    result = asyncio.run(SimulatedRunner(step_seconds=0).run(ctx))
    return result, ctx


def test_event_sequence():
    _, ctx = run("Tell me about the history of Paris")
    types = [event_type for event_type, *_ in ctx.events]
    partials = types.count("LLM_PARTIAL")
    assert partials >= 3
    assert types == [
        "AGENT_STARTED",
        "AGENT_THINKING",
        *["LLM_PARTIAL"] * partials,
        "LLM_OUTPUT",
        "AGENT_COMPLETED",
    ]
    assert ctx.checkpoints >= len(types) - 1
    assert ctx.progress == sorted(ctx.progress)
    assert all(0 < fraction < 1 for fraction in ctx.progress)


def test_same_query_gives_the_same_events_and_answer():
    first, first_ctx = run("How do I scale a queue?")
    second, second_ctx = run("How do I scale a queue?")
    assert first == second
    assert first_ctx.events == second_ctx.events


def test_different_queries_give_different_answers():
    assert compose_answer("How do I scale a queue?") != compose_answer("Why is the sky blue?")


@pytest.mark.parametrize(
    ("query", "starts_with"),
    [
        ("What is 2+2?", "2 + 2 = 4."),
        ("what is 7 times 6", "7 * 6 = 42."),
        ("Compute (3 + 4) * 2.", "(3 + 4) * 2 = 14."),
        ("What is 10 / 4?", "10 / 4 = 2.5."),
        ("What is 12 minus 20?", "12 - 20 = -8."),
        ("what is 2^10", "2^10 = 1024."),
    ],
)
def test_simple_arithmetic_is_answered_correctly(query, starts_with):
    result, _ = run(query)
    assert result.result_text.startswith(starts_with)
    assert len(result.result_text) > len(starts_with) + 10


def test_division_by_zero_is_explained_not_raised():
    result, _ = run("What is 5/0?")
    assert "undefined" in result.result_text


def test_numbers_in_other_questions_are_not_arithmetic():
    result, _ = run("What changed between 2020-2024 in Paris?")
    assert "= -4" not in result.result_text
    assert "Paris" in result.result_text


def test_partials_concatenate_to_the_output():
    result, ctx = run("Explain how a sliding window rate limiter works in a distributed system")
    deltas = [payload["delta"] for event_type, _, payload, _ in ctx.events if event_type == "LLM_PARTIAL"]
    output = next(payload for event_type, _, payload, _ in ctx.events if event_type == "LLM_OUTPUT")
    assert "".join(deltas) == output["response"] == result.result_text


def test_usage_is_about_four_characters_a_token_and_priced_by_model():
    result, ctx = run("What is 2+2?", model_tier="large")
    assert result.model_used == "taskgate-sim-large"
    assert result.provider == PROVIDER
    assert result.prompt_tokens == math.ceil(len(SYSTEM_PROMPT + "\n" + "What is 2+2?") / 4)
    assert result.completion_tokens == math.ceil(len(result.result_text) / 4)
    prompt_price, completion_price = PRICES_PER_1K_TOKENS["taskgate-sim-large"]
    expected = (result.prompt_tokens * prompt_price + result.completion_tokens * completion_price) / 1000
    assert result.cost_usd == pytest.approx(expected)
    output = next(payload for event_type, _, payload, _ in ctx.events if event_type == "LLM_OUTPUT")
    assert output["usage"]["total_tokens"] == result.total_tokens


def test_session_history_and_context_count_as_prompt():
    plain, _ = run("Continue")
    with_history, _ = run("Continue", history=(SessionTurn("What is 2+2?", "2 + 2 = 4."),), context={"a": 1})
    assert with_history.prompt_tokens > plain.prompt_tokens


def test_unknown_tier_uses_the_small_model():
    result, _ = run("hi", model_tier="")
    assert result.model_used == "taskgate-sim-small"


def test_chunks_rejoin_exactly():
    text = "one two three four five six seven eight nine ten eleven"
    chunks = split_into_chunks(text)
    assert "".join(chunks) == text
    assert 3 <= len(chunks) <= 8


def test_runner_paces_itself_with_the_step_setting_through_its_context():
    # Waiting through the context is what lets a cancel or a timeout cut a wait short.
    ctx = RecordingContext(RunTask("task-1", "What is 2+2?", "standard", "small"))

    asyncio.run(SimulatedRunner(step_seconds=0.02).run(ctx))

    assert ctx.slept >= 0.02 * 4


def test_a_simulation_option_streams_the_asked_number_of_partials_at_its_own_pace():
    task = RunTask(
        "wf-1",
        "What is 2+2?",
        "simple",
        "small",
        context={"simulation": {"partials": 40, "step_seconds": 0.5}},
    )
    ctx = RecordingContext(task)

    result = asyncio.run(SimulatedRunner(step_seconds=0.0).run(ctx))

    deltas = [payload["delta"] for kind, _, payload, _ in ctx.events if kind == "LLM_PARTIAL"]
    assert len(deltas) == 40
    assert "".join(deltas) == result.result_text
    assert result.result_text.startswith("2 + 2 = 4")
    assert ctx.slept == pytest.approx(0.5 * (1.0 + 2.0 + 0.5 * 40 + 1.0))


@pytest.mark.parametrize(
    ("options", "partials", "step_seconds"),
    [
        ({"partials": 0, "step_seconds": -1}, 1, 0.0),
        ({"partials": 10**9, "step_seconds": 1e9}, 100_000, 60.0),
        ({"partials": "many", "step_seconds": True}, None, 0.25),
        ({"partials": 2.5, "step_seconds": float("nan")}, None, 0.25),
        ("fast", None, 0.25),
    ],
)
def test_simulation_options_are_clamped_or_ignored(options, partials, step_seconds):
    task = RunTask("wf-1", "q", "simple", "small", context={"simulation": options})

    simulation = Simulation.for_task(task, 0.25)

    assert (simulation.partials, simulation.step_seconds) == (partials, step_seconds)


@pytest.mark.parametrize("count", [1, 3, 7, 12])
def test_an_asked_chunk_count_is_exact_and_loses_nothing(count):
    text = "one two three four five six seven eight nine ten eleven twelve"

    chunks = split_into_chunks(text, count)

    assert len(chunks) == count and "".join(chunks) == text
