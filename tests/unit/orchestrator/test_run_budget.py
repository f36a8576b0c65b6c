"""A run's budget in USD: reading it, the answer's token cap, and both runners keeping to it."""

import asyncio
import json
import re

import httpx
import pytest

from orchestrator.errors import OrchestratorError
from orchestrator.runners.base import RunTask
from orchestrator.runners.budget import BudgetTooSmallError
from orchestrator.runners.budget import completion_token_cap
from orchestrator.runners.budget import cost_usd
from orchestrator.runners.budget import format_usd
from orchestrator.runners.budget import require_prompt_covered
from orchestrator.runners.budget import run_budget
from orchestrator.runners.openai_compatible import OpenAICompatibleRunner
from orchestrator.runners.simulated import CHARS_PER_TOKEN
from orchestrator.runners.simulated import PRICES_PER_1K_TOKENS
from orchestrator.runners.simulated import SimulatedRunner
from orchestrator.runners.simulated import truncate_to_tokens
from orchestrator.runners.simulated_answers import compose_answer
from tests.unit.orchestrator.test_openai_runner import USAGE
from tests.unit.orchestrator.test_openai_runner import delta
from tests.unit.orchestrator.test_openai_runner import settings
from tests.unit.orchestrator.test_openai_runner import sse
from tests.unit.orchestrator.test_simulated_runner import RecordingContext

QUERY = "Summarise the news"
SMALL_PRICES = PRICES_PER_1K_TOKENS["taskgate-sim-small"]
# The OpenAI runner's test model and its price per 1,000 prompt and completion tokens.
OPENAI_MODEL = "gpt-4o-mini"
OPENAI_PRICES = (1.0, 2.0)


def budget_task(budget: object = None, query: str = QUERY, **fields) -> RunTask:
    options = {} if budget is None else {"max_budget_usd": budget}
    return RunTask("task-1", query, "standard", fields.pop("model_tier", "small"), options=options, **fields)


def run_simulated(run_task: RunTask):
    ctx = RecordingContext(run_task)
    return asyncio.run(SimulatedRunner(step_seconds=0).run(ctx)), ctx


def run_openai(run_task: RunTask, handler, prices=OPENAI_PRICES):
    ctx = RecordingContext(run_task)
    runner_settings = settings(prices={OPENAI_MODEL: prices} if prices else {})
    runner = OpenAICompatibleRunner(runner_settings, transport=httpx.MockTransport(handler))
    return asyncio.run(runner.run(ctx)), ctx


def payloads(ctx: RecordingContext, event_type: str) -> list[dict]:
    return [payload for kind, _, payload, _ in ctx.events if kind == event_type]


# Pure rules.


@pytest.mark.parametrize(
    ("options", "budget"),
    [
        ({}, None),
        ({"max_budget_usd": 0.5}, 0.5),
        ({"max_budget_usd": 2}, 2.0),
        ({"max_budget_usd": True}, None),
        ({"max_budget_usd": 0}, None),
        ({"max_budget_usd": -1.0}, None),
        ({"max_budget_usd": float("nan")}, None),
        ({"max_budget_usd": float("inf")}, None),
        ({"max_budget_usd": "0.5"}, None),
    ],
)
def test_the_budget_is_a_positive_finite_number_of_the_options(options, budget):
    assert run_budget(RunTask("t", "q", "standard", "small", options=options)) == budget


def test_there_is_no_cap_without_a_budget_or_without_a_completion_price():
    assert completion_token_cap(None, 100, 1.0, 2.0) is None
    assert completion_token_cap(1.0, 100, 1.0, 0.0) is None
    assert require_prompt_covered(None, 10**9, 1.0, 2.0) is None
    # A model without any price cannot exceed a budget, however small.
    assert require_prompt_covered(1e-9, 10**9, 0.0, 0.0) is None


def test_the_cap_is_what_the_budget_leaves_after_the_prompt():
    # 100 prompt tokens at $1/1K cost $0.1; $0.2 more pays for 100 completion tokens at $2/1K.
    assert completion_token_cap(0.3, 100, 1.0, 2.0) == 100
    assert completion_token_cap(0.3019, 100, 1.0, 2.0) == 100
    assert completion_token_cap(0.1, 100, 1.0, 2.0) == 0


@pytest.mark.parametrize("budget", [1e-6, 2.5e-6, 1.234567891e-5, 3e-4, 0.0123, 1.0, 7.77])
@pytest.mark.parametrize(("prompt_price", "completion_price"), [*PRICES_PER_1K_TOKENS.values(), (0.0, 0.5)])
def test_the_cap_is_the_most_tokens_whose_reported_cost_keeps_to_the_budget(
    budget, prompt_price, completion_price
):
    prompt_tokens = 3
    cap = completion_token_cap(budget, prompt_tokens, prompt_price, completion_price)

    if cost_usd(prompt_tokens, 0, prompt_price, completion_price) > budget:
        assert cap == 0
        return
    assert cost_usd(prompt_tokens, cap, prompt_price, completion_price) <= budget
    assert cost_usd(prompt_tokens, cap + 1, prompt_price, completion_price) > budget


def test_a_budget_under_the_prompt_cost_fails_with_a_clear_message():
    with pytest.raises(BudgetTooSmallError) as raised:
        require_prompt_covered(0.0001, 400, 0.001, 0.002)

    assert isinstance(raised.value, OrchestratorError)
    assert (
        raised.value.public_message == "The run's budget of $0.0001 does not cover its prompt (about $0.0004)"
    )


def test_a_budget_that_pays_for_the_prompt_but_no_answer_token_fails_too():
    with pytest.raises(BudgetTooSmallError) as raised:
        require_prompt_covered(0.1001, 100, 1.0, 2.0)

    assert raised.value.public_message == (
        "The run's budget of $0.1001 does not cover its prompt and the first token of its answer"
        " (about $0.102)"
    )


@pytest.mark.parametrize(
    ("amount", "digits", "round_up", "text"),
    [
        (1e-05, 8, False, "0.00001"),
        (5.0, 8, False, "5"),
        (0.000123456789, 8, False, "0.00012345679"),
        (0.00040000001, 3, True, "0.000401"),
        (0.0004, 3, True, "0.0004"),
        (12345.6, 3, True, "12400"),
        (0.0, 3, True, "0"),
    ],
)
def test_amounts_are_shown_in_plain_decimals(amount, digits, round_up, text):
    assert format_usd(amount, digits, round_up=round_up) == text


def test_an_answer_is_truncated_to_whole_words_within_the_tokens():
    text = "one two three four five"

    assert truncate_to_tokens(text, None) == text
    assert truncate_to_tokens(text, 10) == text
    # Three tokens are twelve characters: "one two three" has thirteen.
    assert truncate_to_tokens(text, 3) == "one two"
    assert truncate_to_tokens("abcdefghijkl", 2) == "abcdefgh"


# The simulated runner.


def test_a_simulated_run_within_its_budget_is_untouched():
    unlimited, unlimited_ctx = run_simulated(budget_task())
    generous, generous_ctx = run_simulated(budget_task(1.0))

    assert generous == unlimited
    assert generous_ctx.events == unlimited_ctx.events
    assert "truncated_by_budget" not in payloads(generous_ctx, "LLM_OUTPUT")[0]


def test_a_simulated_answer_is_cut_to_what_the_budget_pays_for():
    budget = 0.00002
    full = compose_answer(QUERY)

    result, ctx = run_simulated(budget_task(budget))

    assert len(result.result_text) < len(full) and full.startswith(result.result_text)
    assert result.cost_usd <= budget
    # As many whole words as the cap's characters hold: the next one would not fit.
    cap = completion_token_cap(budget, result.prompt_tokens, *SMALL_PRICES)
    next_word = re.match(r"\s*\S+", full[len(result.result_text) :]).group()
    assert len(result.result_text) <= cap * CHARS_PER_TOKEN < len(result.result_text + next_word)
    output = payloads(ctx, "LLM_OUTPUT")[0]
    assert output["truncated_by_budget"] is True
    assert output["max_budget_usd"] == budget
    assert output["response"] == result.result_text
    assert output["usage"]["cost_usd"] == result.cost_usd
    assert "".join(payload["delta"] for payload in payloads(ctx, "LLM_PARTIAL")) == result.result_text
    assert payloads(ctx, "AGENT_COMPLETED")[0]["usage"] == output["usage"]


def test_a_simulated_run_whose_budget_does_not_cover_the_prompt_fails_before_answering():
    with pytest.raises(BudgetTooSmallError) as raised:
        run_simulated(budget_task(0.000001))

    assert raised.value.public_message == (
        "The run's budget of $0.000001 does not cover its prompt (about $0.00000615)"
    )


def test_a_simulated_run_emits_nothing_of_its_answer_when_over_budget():
    ctx = RecordingContext(budget_task(0.000001, model_tier="large"))

    with pytest.raises(BudgetTooSmallError):
        asyncio.run(SimulatedRunner(step_seconds=0).run(ctx))

    assert [kind for kind, *_ in ctx.events] == ["AGENT_STARTED"]


def test_simulated_partials_shrink_with_the_budget():
    run_task = budget_task(0.00002, context={"simulation": {"partials": 40}})

    result, ctx = run_simulated(run_task)

    deltas = [payload["delta"] for payload in payloads(ctx, "LLM_PARTIAL")]
    assert 0 < len(deltas) < 40
    assert "".join(deltas) == result.result_text
    assert result.cost_usd <= 0.00002


# The OpenAI-compatible runner.


def answer_of(words: int) -> list[dict]:
    return [delta(f"word{index} ") for index in range(words)]


def test_the_request_asks_for_no_more_tokens_than_the_budget_pays_for():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=sse(delta("Four"), USAGE))

    # The prompt is 11 tokens ($0.011); $0.009 more pays for 4 completion tokens at $2/1K.
    result, ctx = run_openai(budget_task(0.02, query="What is 2+2?"), handler)

    assert bodies[0]["max_tokens"] == 4
    assert result.result_text == "Four"
    # The server's usage is the reported one.
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    assert "truncated_by_budget" not in payloads(ctx, "LLM_OUTPUT")[0]


def test_a_smaller_max_tokens_of_the_task_is_kept_and_its_length_stop_is_not_the_budgets():
    bodies = []
    stopped = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=sse(delta("Fo"), stopped))

    run_task = budget_task(0.02, query="What is 2+2?", context={"openai": {"max_tokens": 2}})
    _, ctx = run_openai(run_task, handler)

    assert bodies[0]["max_tokens"] == 2
    assert "truncated_by_budget" not in payloads(ctx, "LLM_OUTPUT")[0]


def test_an_answer_stopped_at_the_budgets_max_tokens_is_marked_truncated():
    stopped = {"choices": [{"index": 0, "delta": {}, "finish_reason": "length"}]}
    usage = {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 4}}
    body = sse(delta("Four"), delta(" is"), stopped, usage)

    result, ctx = run_openai(
        budget_task(0.02, query="What is 2+2?"), lambda request: httpx.Response(200, content=body)
    )

    output = payloads(ctx, "LLM_OUTPUT")[0]
    assert output["truncated_by_budget"] is True and output["max_budget_usd"] == 0.02
    assert result.result_text == "Four is"
    assert result.cost_usd == pytest.approx(0.019) and result.cost_usd <= 0.02


def test_a_server_that_ignores_max_tokens_is_cut_off_at_the_budget():
    sent = []

    def handler(request: httpx.Request) -> httpx.Response:
        chunks = [*answer_of(50), USAGE]
        sent.append(len(chunks))
        return httpx.Response(200, content=sse(*chunks))

    result, ctx = run_openai(budget_task(0.02, query="What is 2+2?"), handler)

    # Four tokens are sixteen characters: two words and the start of the third.
    assert result.result_text == "word0 word1 word"
    assert result.completion_tokens == 4
    assert result.cost_usd <= 0.02
    output = payloads(ctx, "LLM_OUTPUT")[0]
    assert output["truncated_by_budget"] is True
    deltas = [payload["delta"] for payload in payloads(ctx, "LLM_PARTIAL")]
    assert "".join(deltas) == result.result_text
    assert [payload["index"] for payload in payloads(ctx, "LLM_PARTIAL")] == list(range(len(deltas)))


def test_an_openai_run_whose_budget_does_not_cover_the_prompt_fails_without_a_call():
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, content=sse(delta("Four")))

    with pytest.raises(BudgetTooSmallError) as raised:
        run_openai(budget_task(0.001, query="What is 2+2?"), handler)

    assert (
        raised.value.public_message == "The run's budget of $0.001 does not cover its prompt (about $0.011)"
    )
    assert calls == []


def test_a_model_without_a_price_is_not_limited():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=sse(*answer_of(50)))

    result, ctx = run_openai(budget_task(1e-9, query="What is 2+2?"), handler, prices=None)

    assert "max_tokens" not in bodies[0]
    assert result.result_text.count("word") == 50
    assert result.cost_usd == 0
    assert "truncated_by_budget" not in payloads(ctx, "LLM_OUTPUT")[0]


def test_a_cap_too_large_to_send_is_kept_by_cutting_the_stream():
    bodies = []

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, content=sse(delta("x" * 30_000)))

    # Free prompts and $0.002 per 1K answer tokens: $0.01 pays for 5,000 tokens, 20,000 characters.
    result, ctx = run_openai(budget_task(0.01, query="What is 2+2?"), handler, prices=(0.0, 0.002))

    assert "max_tokens" not in bodies[0]
    assert len(result.result_text) == 20_000
    assert result.cost_usd <= 0.01
    assert payloads(ctx, "LLM_OUTPUT")[0]["truncated_by_budget"] is True
