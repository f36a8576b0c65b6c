"""The OpenAI-compatible runner: a task answered by any server speaking the chat completions API.

It streams the answer (``stream: true`` with ``stream_options.include_usage``), turning each delta
into an ``LLM_PARTIAL`` event and the whole answer into ``LLM_OUTPUT``; the server's token usage
(estimated when it reports none) and the configured price of the model make the task's usage and
cost. Between two chunks it reaches a checkpoint, so pause and cancel take effect mid-answer.

A refused connection, a 429 or a 5xx before any of the answer has streamed is retried with
exponential backoff (a ``Retry-After`` is honoured), at most ``max_retries`` times; anything else
ends the task FAILED with an error that says what went wrong.
"""

import json
from collections.abc import Mapping
from typing import Any

import httpx

from orchestrator import events
from orchestrator.errors import OrchestratorError
from orchestrator.events import compact_json
from orchestrator.runners.base import RunContext
from orchestrator.runners.base import Runner
from orchestrator.runners.base import RunResult
from orchestrator.runners.base import RunTask
from orchestrator.runners.simulated import estimate_tokens
from orchestrator.settings import OpenAIRunnerSettings

PROVIDER = "openai-compatible"
AGENT_ID = "openai-agent"
# The member of a task's context the gateway's OpenAI-compatible routes fill (openai_requests.py).
OPENAI_CONTEXT_KEY = "openai"
MAX_RETRY_AFTER_SECONDS = 30.0
_MAX_ERROR_DETAIL = 200


class ModelCallError(OrchestratorError):
    """The model server could not answer; the message, shown as the task's error, says why."""

    default_message = "The model server could not answer"


class _RetryableError(Exception):
    """A failure worth another attempt, with the server's ``Retry-After`` when it gave one."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def chat_messages(task: RunTask) -> list[dict[str, str]]:
    """Return the messages sent for a task: the session's earlier turns, the conversation, the query.

    Context other than the OpenAI routes' own is passed on as a system message of JSON.
    """
    messages: list[dict[str, str]] = []
    for turn in task.history:
        messages.append({"role": "user", "content": turn.query})
        messages.append({"role": "assistant", "content": turn.result})
    options = openai_options(task)
    extra_context = {key: value for key, value in task.context.items() if key != OPENAI_CONTEXT_KEY}
    if extra_context:
        messages.append({"role": "system", "content": "Context: " + compact_json(extra_context)})
    for message in options.get("messages") or ():
        if isinstance(message, Mapping) and isinstance(message.get("content"), str):
            messages.append({"role": str(message.get("role", "user")), "content": message["content"]})
    messages.append({"role": "user", "content": task.query})
    return messages


def openai_options(task: RunTask) -> Mapping[str, Any]:
    """Return the ``openai`` object of a task's context (empty when absent or malformed)."""
    options = task.context.get(OPENAI_CONTEXT_KEY) if isinstance(task.context, Mapping) else None
    return options if isinstance(options, Mapping) else {}


def request_body(task: RunTask, model: str) -> dict[str, Any]:
    """Return the chat completions request of a task: streamed, with usage, and its options."""
    body: dict[str, Any] = {
        "model": model,
        "messages": chat_messages(task),
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    options = openai_options(task)
    for name in ("max_tokens", "temperature"):
        value = options.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            body[name] = value
    return body


def price(
    prices: Mapping[str, tuple[float, float]], model: str, prompt_tokens: int, completion_tokens: int
) -> float:
    """Return the cost in USD of a call (0 for a model without a configured price)."""
    prompt_price, completion_price = prices.get(model, (0.0, 0.0))
    return round((prompt_tokens * prompt_price + completion_tokens * completion_price) / 1000, 8)


def parse_data_line(line: str) -> dict[str, Any] | None:
    """Return the JSON chunk of an SSE ``data:`` line; None for other lines and ``[DONE]``."""
    if not line.startswith("data:"):
        return None
    data = line[len("data:") :].strip()
    if not data or data == "[DONE]":
        return None
    try:
        chunk = json.loads(data)
    except ValueError:
        raise ModelCallError("The model server sent a malformed stream chunk") from None
    return chunk if isinstance(chunk, dict) else None


def chunk_delta(chunk: Mapping[str, Any]) -> str:
    """Return the text a streamed chunk adds ("" when it adds none)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return ""
    delta = choices[0].get("delta")
    content = delta.get("content") if isinstance(delta, Mapping) else None
    return content if isinstance(content, str) else ""


def error_detail(body: bytes) -> str:
    """Return the ``error.message`` of a server's error body, shortened, or "" when it has none."""
    try:
        value = json.loads(body)
    except ValueError:
        return ""
    error = value.get("error") if isinstance(value, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return message[:_MAX_ERROR_DETAIL] if isinstance(message, str) else ""


def retry_after_seconds(header: str | None) -> float | None:
    """Return a ``Retry-After`` header in seconds (capped), or None when absent or not a number."""
    try:
        seconds = float(header) if header is not None else None
    except ValueError:
        return None
    if seconds is None or seconds < 0:
        return None
    return min(seconds, MAX_RETRY_AFTER_SECONDS)


class OpenAICompatibleRunner(Runner):
    """Runs a task as one streamed chat completion on an OpenAI-compatible server."""

    def __init__(
        self, settings: OpenAIRunnerSettings, transport: httpx.AsyncBaseTransport | None = None
    ) -> None:
        self._settings = settings
        self._transport = transport

    async def run(self, ctx: RunContext) -> RunResult:
        """Stream the answer as events and return it with the server's usage and its cost."""
        task = ctx.task
        settings = self._settings
        model = settings.models.get(task.model_tier) or settings.models["small"]
        body = request_body(task, model)
        await ctx.emit(
            events.AGENT_STARTED,
            "OpenAI-compatible agent started",
            {"model": model, "mode": task.mode, "provider": PROVIDER},
            AGENT_ID,
        )
        await ctx.emit(
            events.AGENT_THINKING,
            "Calling the model",
            {"step": "call", "history_turns": len(task.history), "messages": len(body["messages"])},
            AGENT_ID,
        )
        await ctx.report_progress(0.2)
        answer, usage = await self._answer_with_retries(ctx, body)
        prompt_tokens = usage.get("prompt_tokens") or estimate_tokens(compact_json(body["messages"]))
        completion_tokens = usage.get("completion_tokens") or estimate_tokens(answer)
        cost_usd = price(settings.prices, model, prompt_tokens, completion_tokens)
        usage_payload = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "cost_usd": cost_usd,
        }
        await ctx.emit(
            events.LLM_OUTPUT,
            answer,
            {"response": answer, "usage": usage_payload, "model": model, "provider": PROVIDER},
            AGENT_ID,
        )
        await ctx.report_progress(0.9)
        await ctx.emit(
            events.AGENT_COMPLETED, "OpenAI-compatible agent completed", {"usage": usage_payload}, AGENT_ID
        )
        return RunResult(answer, prompt_tokens, completion_tokens, cost_usd, model, PROVIDER)

    async def _answer_with_retries(self, ctx: RunContext, body: dict[str, Any]) -> tuple[str, dict[str, int]]:
        settings = self._settings
        attempts = settings.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._answer(ctx, body)
            except _RetryableError as ex:
                if attempt >= attempts:
                    raise ModelCallError(f"{ex.reason}; gave up after {attempts} attempts") from None
                delay = ex.retry_after
                if delay is None:
                    delay = min(settings.retry_backoff_seconds * 2 ** (attempt - 1), MAX_RETRY_AFTER_SECONDS)
                await ctx.emit(
                    events.AGENT_THINKING,
                    f"Retrying the model call: {ex.reason}",
                    {"step": "retry", "attempt": attempt, "delay_seconds": delay},
                    AGENT_ID,
                )
                await ctx.sleep(delay)
                await ctx.checkpoint()

    async def _answer(self, ctx: RunContext, body: dict[str, Any]) -> tuple[str, dict[str, int]]:
        """Make one streamed call; return the answer and the usage the server reported."""
        settings = self._settings
        timeout = httpx.Timeout(
            settings.read_timeout_seconds,
            connect=settings.connect_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        headers = {"Accept": "text/event-stream"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        parts: list[str] = []
        usage: dict[str, int] = {}
        try:
            async with (
                httpx.AsyncClient(timeout=timeout, transport=self._transport) as client,
                client.stream(
                    "POST", settings.base_url + "/chat/completions", json=body, headers=headers
                ) as response,
            ):
                await _check_status(response)
                index = 0
                async for line in response.aiter_lines():
                    chunk = parse_data_line(line)
                    if chunk is None:
                        continue
                    if "error" in chunk:
                        detail = error_detail(json.dumps(chunk).encode())
                        raise ModelCallError(f"The model server reported an error: {detail or 'no detail'}")
                    delta = chunk_delta(chunk)
                    if delta:
                        parts.append(delta)
                        await ctx.emit(events.LLM_PARTIAL, delta, {"delta": delta, "index": index}, AGENT_ID)
                        index += 1
                        await ctx.checkpoint()
                    usage = _usage(chunk.get("usage")) or usage
        except httpx.TimeoutException as ex:
            if isinstance(ex, httpx.ConnectTimeout | httpx.PoolTimeout) and not parts:
                raise _RetryableError("The model server did not accept the connection in time") from None
            raise ModelCallError(
                f"The model server did not answer within {settings.read_timeout_seconds:g} s"
            ) from None
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError) as ex:
            reason = (
                "The model server could not be reached"
                if isinstance(ex, httpx.ConnectError)
                else "The connection to the model server was lost"
            )
            if parts:
                raise ModelCallError(reason + " mid-answer") from None
            raise _RetryableError(reason) from None
        except httpx.HTTPError:
            raise ModelCallError("The model server call failed") from None
        return "".join(parts), usage


async def _check_status(response: httpx.Response) -> None:
    """Raise for a refused call: retryable for 429 and 5xx, a task error for any other status."""
    if response.status_code == 200:
        return
    detail = error_detail(await response.aread())
    suffix = f": {detail}" if detail else ""
    if response.status_code == 429 or response.status_code >= 500:
        raise _RetryableError(
            f"The model server answered HTTP {response.status_code}{suffix}",
            retry_after_seconds(response.headers.get("Retry-After")),
        )
    raise ModelCallError(f"The model server refused the request (HTTP {response.status_code}){suffix}")


def _usage(value: object) -> dict[str, int]:
    """Return the token counts of a chunk's ``usage`` (empty when it has none)."""
    if not isinstance(value, Mapping):
        return {}
    return {
        name: value[name]
        for name in ("prompt_tokens", "completion_tokens")
        if isinstance(value.get(name), int) and not isinstance(value.get(name), bool)
    }
