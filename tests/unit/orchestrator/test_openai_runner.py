"""The OpenAI-compatible runner: request mapping, stream parsing, retries and errors, on a mock transport."""

import asyncio
import json

import httpx
import pytest

from orchestrator.runners.base import RunTask
from orchestrator.runners.base import SessionTurn
from orchestrator.runners.openai_compatible import MAX_SENT_TOKEN_CAP
from orchestrator.runners.openai_compatible import ModelCallError
from orchestrator.runners.openai_compatible import OpenAICompatibleRunner
from orchestrator.runners.openai_compatible import chat_messages
from orchestrator.runners.openai_compatible import chunk_delta
from orchestrator.runners.openai_compatible import chunk_finish_reason
from orchestrator.runners.openai_compatible import error_detail
from orchestrator.runners.openai_compatible import limit_answer_tokens
from orchestrator.runners.openai_compatible import parse_data_line
from orchestrator.runners.openai_compatible import price
from orchestrator.runners.openai_compatible import request_body
from orchestrator.runners.openai_compatible import retry_after_seconds
from orchestrator.settings import DEFAULT_OPENAI_MODELS
from orchestrator.settings import OpenAIRunnerSettings
from orchestrator.settings import OrchestratorSettings
from orchestrator.settings import SettingsError
from tests.unit.orchestrator.test_simulated_runner import RecordingContext

SERVICE_TOKEN = "x" * 32


def settings(**fields) -> OpenAIRunnerSettings:
    values = {"base_url": "http://model.test/v1", "api_key": "key", "retry_backoff_seconds": 0.5}
    return OpenAIRunnerSettings(**{**values, **fields})


def task(query: str = "What is 2+2?", **fields) -> RunTask:
    return RunTask("task-1", query, "standard", fields.pop("model_tier", "small"), **fields)


def sse(*chunks: dict, done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(chunk).encode() + b"\n\n" for chunk in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def delta(text: str) -> dict:
    return {"choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}


USAGE = {"choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}


def run_with(handler, runner_settings: OpenAIRunnerSettings | None = None, run_task: RunTask | None = None):
    ctx = RecordingContext(run_task or task())
    runner = OpenAICompatibleRunner(runner_settings or settings(), transport=httpx.MockTransport(handler))
    result = asyncio.run(runner.run(ctx))
    return result, ctx


def test_messages_carry_the_session_history_the_conversation_and_other_context() -> None:
    run_task = task(
        "And doubled?",
        history=(SessionTurn("What is 2+2?", "4"),),
        context={
            "openai": {"messages": [{"role": "system", "content": "Be brief."}], "max_tokens": 9},
            "topic": "math",
        },
    )
    assert chat_messages(run_task) == [
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "system", "content": 'Context: {"topic":"math"}'},
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "And doubled?"},
    ]
    body = request_body(run_task, "gpt-test")
    assert body["model"] == "gpt-test"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 9
    assert "temperature" not in body


def test_stream_lines_are_parsed() -> None:
    assert parse_data_line("data: [DONE]") is None
    assert parse_data_line(": ping") is None
    assert parse_data_line('data: {"a": 1}') == {"a": 1}
    with pytest.raises(ModelCallError):
        parse_data_line("data: {not json")
    assert chunk_delta(delta("hi")) == "hi"
    assert chunk_delta({"choices": []}) == ""
    assert chunk_delta({"choices": [{"delta": {"role": "assistant"}}]}) == ""
    assert error_detail(b'{"error": {"message": "nope"}}') == "nope"
    assert error_detail(b"<html>") == ""
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("3600") == 30.0
    assert retry_after_seconds("soon") is None
    assert retry_after_seconds(None) is None


def test_the_finish_reason_of_a_chunk_is_read() -> None:
    assert chunk_finish_reason({"choices": [{"delta": {}, "finish_reason": "length"}]}) == "length"
    assert chunk_finish_reason(delta("hi")) is None
    assert chunk_finish_reason({"choices": []}) is None


@pytest.mark.parametrize(
    ("asked", "cap", "sent", "limited_by_budget"),
    [
        (None, None, None, False),
        (None, 40, 40, True),
        (100, 40, 40, True),
        (40, 40, 40, True),
        (9, 40, 9, False),
        (None, MAX_SENT_TOKEN_CAP + 1, None, False),
    ],
)
def test_the_budget_cap_is_sent_as_max_tokens_unless_the_task_asks_for_less(
    asked, cap, sent, limited_by_budget
) -> None:
    context = {"openai": {"max_tokens": asked}} if asked is not None else {}
    body = request_body(task(context=context), "gpt-test")

    assert limit_answer_tokens(body, cap) is limited_by_budget
    assert body.get("max_tokens") == sent


def test_price_uses_the_configured_price_and_zero_for_an_unknown_model() -> None:
    assert price({"m": (1.0, 2.0)}, "m", 1000, 500) == 2.0
    assert price({}, "m", 1000, 500) == 0.0


def test_a_streamed_answer_becomes_events_and_a_result_with_usage() -> None:
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=sse(delta("Four"), delta("."), USAGE))

    result, ctx = run_with(handler, settings(prices={"gpt-4o-mini": (1.0, 2.0)}))
    assert result.result_text == "Four."
    assert (result.prompt_tokens, result.completion_tokens) == (12, 3)
    assert result.cost_usd == pytest.approx((12 * 1.0 + 3 * 2.0) / 1000)
    assert result.model_used == DEFAULT_OPENAI_MODELS["small"]
    partials = [payload["delta"] for event_type, _, payload, _ in ctx.events if event_type == "LLM_PARTIAL"]
    assert partials == ["Four", "."]
    assert ctx.checkpoints >= 1
    assert seen[0].url == "http://model.test/v1/chat/completions"
    assert seen[0].headers["Authorization"] == "Bearer key"


def test_usage_is_estimated_when_the_server_reports_none() -> None:
    result, _ = run_with(lambda request: httpx.Response(200, content=sse(delta("Four"))))
    assert result.prompt_tokens > 0
    assert result.completion_tokens == 1


def test_429_and_5xx_are_retried_with_backoff_then_succeed() -> None:
    answers = iter(
        [
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(502, json={"error": {"message": "bad gateway"}}),
            httpx.Response(200, content=sse(delta("ok"))),
        ]
    )
    result, ctx = run_with(lambda request: next(answers))
    assert result.result_text == "ok"
    # Retry-After wins over the backoff; then the backoff doubles from 0.5 s.
    assert ctx.slept == pytest.approx(1.0 + 1.0)
    retries = [payload for event_type, _, payload, _ in ctx.events if payload.get("step") == "retry"]
    assert [retry["attempt"] for retry in retries] == [1, 2]


def test_retries_are_bounded() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": {"message": "busy"}})

    with pytest.raises(ModelCallError) as raised:
        run_with(handler, settings(max_retries=2))
    assert raised.value.public_message == "The model server answered HTTP 503: busy; gave up after 3 attempts"
    assert len(calls) == 3


def test_a_connection_error_is_retried() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        if len(calls) == 1:
            raise httpx.ConnectError("refused", request=request)
        return httpx.Response(200, content=sse(delta("ok")))

    result, _ = run_with(handler)
    assert result.result_text == "ok"


def test_a_client_error_fails_at_once_with_the_reason() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(401, json={"error": {"message": "Incorrect API key"}})

    with pytest.raises(ModelCallError) as raised:
        run_with(handler)
    assert raised.value.public_message == "The model server refused the request (HTTP 401): Incorrect API key"
    assert len(calls) == 1


def test_a_read_timeout_fails_with_a_clear_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ModelCallError) as raised:
        run_with(handler, settings(read_timeout_seconds=2.5))
    assert raised.value.public_message == "The model server did not answer within 2.5 s"


def test_an_error_chunk_fails_the_task() -> None:
    body = sse(delta("par"), {"error": {"message": "overloaded mid-stream"}})
    with pytest.raises(ModelCallError) as raised:
        run_with(lambda request: httpx.Response(200, content=body))
    assert raised.value.public_message == "The model server reported an error: overloaded mid-stream"


def test_the_runner_is_chosen_by_setting() -> None:
    base = {"TASKGATE_SERVICE_TOKEN": SERVICE_TOKEN, "TASKGATE_ENV": "test"}
    assert OrchestratorSettings.from_env(base).runner == "simulated"
    assert OrchestratorSettings.from_env(base).openai is None
    with pytest.raises(SettingsError, match="TASKGATE_OPENAI_BASE_URL"):
        OrchestratorSettings.from_env({**base, "TASKGATE_RUNNER": "openai"})
    with pytest.raises(SettingsError, match="TASKGATE_RUNNER"):
        OrchestratorSettings.from_env({**base, "TASKGATE_RUNNER": "magic"})
    configured = OrchestratorSettings.from_env(
        {
            **base,
            "TASKGATE_RUNNER": "openai",
            "TASKGATE_OPENAI_BASE_URL": "http://localhost:11434/v1/",
            "TASKGATE_OPENAI_MODEL_LARGE": "llama3",
            "TASKGATE_OPENAI_PRICES": '{"llama3": [0, 0.5]}',
            "TASKGATE_OPENAI_MAX_RETRIES": "5",
        }
    )
    assert configured.openai.base_url == "http://localhost:11434/v1"
    assert configured.openai.models["large"] == "llama3"
    assert configured.openai.models["small"] == DEFAULT_OPENAI_MODELS["small"]
    assert configured.openai.prices["llama3"] == (0.0, 0.5)
    assert configured.openai.max_retries == 5
    assert "api_key" not in repr(configured.openai)
    with pytest.raises(SettingsError, match="TASKGATE_OPENAI_PRICES"):
        OpenAIRunnerSettings.from_env(
            {"TASKGATE_OPENAI_BASE_URL": "http://x/v1", "TASKGATE_OPENAI_PRICES": '{"m": [1]}'}
        )
