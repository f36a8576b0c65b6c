"""The OpenAI-compatible runner: a task answered by any server speaking the chat completions API.

It streams the answer (``stream: true`` with ``stream_options.include_usage``), turning each delta
into an ``LLM_PARTIAL`` event and the whole answer into ``LLM_OUTPUT``; the server's token usage
(estimated when it reports none) and the configured price of the model make the task's usage and
cost. A finished call is a checkpoint (its answer and usage saved with ``LLM_OUTPUT``): a run
resumed after an interruption does not call the model again, and a pause takes effect there. A
cancel interrupts the call at once (the engine stops the run, ``orchestrator.engine.worker_pool``).
A run interrupted mid-call calls the model again on resume: the partials it had streamed stay in
the log before the ``WORKFLOW_RESUMED`` event, and only the finished call's usage is counted.

A refused connection, a 429 or a 5xx before any of the answer has streamed is retried with
exponential backoff (a ``Retry-After`` is honoured), at most ``max_retries`` times; anything else
ends the task FAILED with an error that says what went wrong.

A task with a budget (``options.max_budget_usd``, set by schedules; ``budget.py``) fails before the
call when the budget does not pay for its estimated prompt. Otherwise ``max_tokens`` asks for no
more answer than the budget pays for (a cap over ``MAX_SENT_TOKEN_CAP`` is not sent: servers refuse
a ``max_tokens`` over what the model can write), and a stream that passes the budget anyway is cut
off, the answer so far kept and its usage estimated. An answer the budget cut short, either way,
has its ``LLM_OUTPUT`` marked ``truncated_by_budget``.
"""

import dataclasses
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
from orchestrator.runners.budget import cost_usd
from orchestrator.runners.budget import require_prompt_covered
from orchestrator.runners.budget import run_budget
from orchestrator.runners.budget import truncation_payload
from orchestrator.runners.simulated import CHARS_PER_TOKEN
from orchestrator.runners.simulated import estimate_tokens
from orchestrator.runners.steps import RunSteps
from orchestrator.settings import OpenAIRunnerSettings

PROVIDER = "openai-compatible"
AGENT_ID = "openai-agent"
# The member of a task's context the gateway's OpenAI-compatible routes fill (openai_requests.py).
OPENAI_CONTEXT_KEY = "openai"
MAX_RETRY_AFTER_SECONDS = 30.0
#: The finish reason of an answer that stopped at ``max_tokens``.
LENGTH_FINISH_REASON = "length"
#: The largest budget cap sent as ``max_tokens``. Servers refuse a ``max_tokens`` over what the model
#: can write, which the runner does not know; a larger cap is kept by cutting the stream instead.
MAX_SENT_TOKEN_CAP = 4096
_MAX_ERROR_DETAIL = 200


class ModelCallError(OrchestratorError):
    """The model server could not answer; the message, shown as the task's error, says why."""

    default_message = "The model server could not answer"


@dataclasses.dataclass
class StreamedAnswer:
    """What one streamed call has produced so far, kept within ``char_limit`` characters (None: any)."""

    char_limit: int | None = None
    parts: list[str] = dataclasses.field(default_factory=list)
    chars: int = 0
    server_usage: dict[str, int] = dataclasses.field(default_factory=dict)
    finish_reason: str | None = None
    #: Whether more arrived than ``char_limit`` allows, so the rest of the stream went unread.
    cut_off: bool = False

    @property
    def text(self) -> str:
        """The answer so far."""
        return "".join(self.parts)

    @property
    def usage(self) -> dict[str, int]:
        """The server's token counts; none for an answer cut off (they would describe what was not kept)."""
        return {} if self.cut_off else self.server_usage

    def add(self, delta: str) -> str:
        """Keep a delta, shortened to what the limit leaves; return the part kept ("" when none)."""
        if self.char_limit is not None and self.chars + len(delta) > self.char_limit:
            delta = delta[: max(0, self.char_limit - self.chars)]
            self.cut_off = True
        if delta:
            self.parts.append(delta)
            self.chars += len(delta)
        return delta


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


def limit_answer_tokens(body: dict[str, Any], cap: int | None) -> bool:
    """Ask for at most ``cap`` answer tokens; return whether the budget's cap is the limit sent.

    A smaller ``max_tokens`` the task asked for is kept (then the budget is not what limits it),
    and a cap over ``MAX_SENT_TOKEN_CAP`` is not sent (the stream is cut at it instead).
    """
    if cap is None or cap > MAX_SENT_TOKEN_CAP:
        return False
    asked = body.get("max_tokens")
    if asked is not None and asked < cap:
        return False
    body["max_tokens"] = cap
    return True


def price(
    prices: Mapping[str, tuple[float, float]], model: str, prompt_tokens: int, completion_tokens: int
) -> float:
    """Return the cost in USD of a call (0 for a model without a configured price)."""
    return cost_usd(prompt_tokens, completion_tokens, *model_prices(prices, model))


def model_prices(prices: Mapping[str, tuple[float, float]], model: str) -> tuple[float, float]:
    """Return a model's prompt and completion prices per 1,000 tokens (0 for one without a price)."""
    return prices.get(model, (0.0, 0.0))


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


def chunk_finish_reason(chunk: Mapping[str, Any]) -> str | None:
    """Return the ``finish_reason`` a streamed chunk gives (None when it gives none)."""
    choices = chunk.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
        return None
    reason = choices[0].get("finish_reason")
    return reason if isinstance(reason, str) else None


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
        prices = model_prices(settings.prices, model)
        body = request_body(task, model)
        estimated_prompt_tokens = estimate_tokens(compact_json(body["messages"]))
        budget = run_budget(task)
        steps = RunSteps(ctx)
        await steps.emit(
            events.AGENT_STARTED,
            "OpenAI-compatible agent started",
            {"model": model, "mode": task.mode, "provider": PROVIDER},
            AGENT_ID,
        )
        cap = require_prompt_covered(budget, estimated_prompt_tokens, *prices)
        limited_by_budget = limit_answer_tokens(body, cap)
        if await steps.emit(
            events.AGENT_THINKING,
            "Calling the model",
            {"step": "call", "history_turns": len(task.history), "messages": len(body["messages"])},
            AGENT_ID,
        ):
            await ctx.report_progress(0.2)
        if steps.is_done():
            # An earlier attempt finished the call: its answer and usage are in the checkpoint.
            steps.skip()
        else:
            char_limit = None if cap is None else cap * CHARS_PER_TOKEN
            streamed = await self._answer_with_retries(ctx, body, char_limit)
            answer, usage = streamed.text, streamed.usage
            prompt_tokens = usage.get("prompt_tokens") or estimated_prompt_tokens
            completion_tokens = usage.get("completion_tokens") or estimate_tokens(answer)
            cost = price(settings.prices, model, prompt_tokens, completion_tokens)
            usage_payload = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "cost_usd": cost,
            }
            output = {"response": answer, "usage": usage_payload, "model": model, "provider": PROVIDER}
            if budget is not None and truncated_by_budget(streamed, limited_by_budget):
                output |= truncation_payload(budget)
            # The finished call is a checkpoint: a resumed run does not call the model again.
            await steps.emit(events.LLM_OUTPUT, answer, output, AGENT_ID, answer=answer, usage=usage_payload)
            await ctx.report_progress(0.9)
        answer, usage_payload = steps.state["answer"], steps.state["usage"]
        await ctx.checkpoint()
        await steps.emit(
            events.AGENT_COMPLETED, "OpenAI-compatible agent completed", {"usage": usage_payload}, AGENT_ID
        )
        return RunResult(
            answer,
            usage_payload["prompt_tokens"],
            usage_payload["completion_tokens"],
            usage_payload["cost_usd"],
            model,
            PROVIDER,
        )

    async def _answer_with_retries(
        self, ctx: RunContext, body: dict[str, Any], char_limit: int | None
    ) -> StreamedAnswer:
        settings = self._settings
        attempts = settings.max_retries + 1
        attempt = 0
        while True:
            attempt += 1
            try:
                return await self._answer(ctx, body, char_limit)
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

    async def _answer(self, ctx: RunContext, body: dict[str, Any], char_limit: int | None) -> StreamedAnswer:
        """Make one streamed call; return the answer, cut at ``char_limit``, and the server's usage."""
        settings = self._settings
        timeout = httpx.Timeout(
            settings.read_timeout_seconds,
            connect=settings.connect_timeout_seconds,
            pool=settings.connect_timeout_seconds,
        )
        headers = {"Accept": "text/event-stream"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        streamed = StreamedAnswer(char_limit)
        try:
            async with (
                httpx.AsyncClient(timeout=timeout, transport=self._transport) as client,
                client.stream(
                    "POST", settings.base_url + "/chat/completions", json=body, headers=headers
                ) as response,
            ):
                await _check_status(response)
                async for line in response.aiter_lines():
                    chunk = parse_data_line(line)
                    if chunk is None:
                        continue
                    await _take_chunk(ctx, streamed, chunk)
                    if streamed.cut_off:
                        # Past the budget (the server ignored max_tokens): leaving closes the response.
                        break
        except httpx.TimeoutException as ex:
            if isinstance(ex, httpx.ConnectTimeout | httpx.PoolTimeout) and not streamed.parts:
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
            if streamed.parts:
                raise ModelCallError(reason + " mid-answer") from None
            raise _RetryableError(reason) from None
        except httpx.HTTPError:
            raise ModelCallError("The model server call failed") from None
        return streamed


def truncated_by_budget(streamed: StreamedAnswer, limited_by_budget: bool) -> bool:
    """Whether the budget cut the answer short: cut off here, or stopped at the budget's max_tokens."""
    return streamed.cut_off or (limited_by_budget and streamed.finish_reason == LENGTH_FINISH_REASON)


async def _take_chunk(ctx: RunContext, streamed: StreamedAnswer, chunk: Mapping[str, Any]) -> None:
    """Add a streamed chunk to the answer, emitting the part of its delta kept as ``LLM_PARTIAL``."""
    if "error" in chunk:
        detail = error_detail(json.dumps(chunk).encode())
        raise ModelCallError(f"The model server reported an error: {detail or 'no detail'}")
    delta = streamed.add(chunk_delta(chunk))
    if delta:
        index = len(streamed.parts) - 1
        await ctx.emit(events.LLM_PARTIAL, delta, {"delta": delta, "index": index}, AGENT_ID)
    streamed.server_usage = _usage(chunk.get("usage")) or streamed.server_usage
    streamed.finish_reason = chunk_finish_reason(chunk) or streamed.finish_reason


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
