"""OpenAI request bodies (chat and legacy completions) checked and mapped to a task submission.

The last user message is the task's query; the messages before it travel in the task's context
as ``openai.messages``, with ``max_tokens`` and ``temperature``; the model id picks the tier and
mode; an ``X-Session-ID`` header continues that session.
"""

import dataclasses
import json
import math
from typing import Any

from gateway.errors import ApiError
from gateway.openai_errors import invalid_request
from gateway.openai_errors import model_not_found
from gateway.resources.openai_models import ServedModel
from gateway.resources.openai_models import find_model
from taskgate.identifiers import ID_RULE
from taskgate.identifiers import is_valid_id
from taskgate.orchestrator.v1 import tasks_pb2
from taskgate.task_rules import MAX_CONTEXT_BYTES
from taskgate.task_rules import MAX_QUERY_CHARACTERS

ROLES = ("system", "developer", "user", "assistant", "tool")
MAX_MESSAGES = 1000
MAX_TOKENS_LIMIT = 1_000_000
CONTEXT_KEY = "openai"


@dataclasses.dataclass(frozen=True)
class CompletionRequest:
    """A checked completion request: the task to submit and how to answer."""

    submit: tasks_pb2.SubmitTaskRequest
    model: ServedModel
    stream: bool
    include_usage: bool


def chat_completion_request(body: dict[str, Any], session_id: str | None) -> CompletionRequest:
    """Check a ``POST /v1/chat/completions`` body and map it to a task; raise the 400/404 to answer."""
    model = _model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or len(messages) > MAX_MESSAGES:
        raise invalid_request("messages", f"must be a non-empty array of at most {MAX_MESSAGES} messages")
    normalised = [_message(index, message) for index, message in enumerate(messages)]
    if normalised[-1]["role"] != "user":
        raise invalid_request("messages", "must end with a user message")
    query = normalised[-1]["content"]
    return _completion_request(body, model, query, normalised[:-1], session_id)


def text_completion_request(body: dict[str, Any], session_id: str | None) -> CompletionRequest:
    """Check a legacy ``POST /v1/completions`` body and map it to a task the same way."""
    model = _model(body)
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise invalid_request("prompt", "must be a string")
    return _completion_request(body, model, prompt, [], session_id)


def _model(body: dict[str, Any]) -> ServedModel:
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise invalid_request("model", "is required: one of the ids of GET /v1/models")
    model = find_model(model_id)
    if model is None:
        raise model_not_found(model_id)
    return model


def _message(index: int, message: object) -> dict[str, str]:
    param = f"messages[{index}]"
    if not isinstance(message, dict):
        raise invalid_request(param, "must be an object with role and content")
    role = message.get("role")
    if role not in ROLES:
        raise invalid_request(f"{param}.role", f"must be one of {', '.join(ROLES)}")
    return {"role": role, "content": message_text(message.get("content"), f"{param}.content")}


def message_text(content: object, param: str) -> str:
    """Return a message's text: a string, or the text parts of a content array joined."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if (
                not isinstance(part, dict)
                or part.get("type") != "text"
                or not isinstance(part.get("text"), str)
            ):
                raise invalid_request(param, "parts must be text parts: {type: text, text}")
            texts.append(part["text"])
        return "\n".join(texts)
    raise invalid_request(param, "must be a string or an array of text parts")


def _completion_request(
    body: dict[str, Any],
    model: ServedModel,
    query: str,
    earlier: list[dict[str, str]],
    session_id: str | None,
) -> CompletionRequest:
    if not query.strip() or len(query) > MAX_QUERY_CHARACTERS:
        raise invalid_request(
            "messages", f"the last user message must be 1..{MAX_QUERY_CHARACTERS} characters"
        )
    stream = _optional(body, "stream", bool, "must be true or false") or False
    stream_options = _optional(body, "stream_options", dict, "must be an object") or {}
    include_usage = stream_options.get("include_usage", False)
    if not isinstance(include_usage, bool):
        raise invalid_request("stream_options.include_usage", "must be true or false")
    n = body.get("n")
    if n is not None and n != 1:
        raise invalid_request("n", "must be 1: one choice per request")
    context: dict[str, Any] = {"model": model.id}
    if earlier:
        context["messages"] = earlier
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        if type(max_tokens) is not int or not 1 <= max_tokens <= MAX_TOKENS_LIMIT:
            raise invalid_request("max_tokens", f"must be an integer from 1 to {MAX_TOKENS_LIMIT}")
        context["max_tokens"] = max_tokens
    temperature = body.get("temperature")
    if temperature is not None:
        if (
            isinstance(temperature, bool)
            or not isinstance(temperature, int | float)
            or not math.isfinite(temperature)
            or not 0 <= temperature <= 2
        ):
            raise invalid_request("temperature", "must be a number from 0 to 2")
        context["temperature"] = temperature
    context_json = json.dumps({CONTEXT_KEY: context}, ensure_ascii=False, separators=(",", ":"))
    if len(context_json.encode()) > MAX_CONTEXT_BYTES:
        raise invalid_request("messages", f"the earlier messages must be at most {MAX_CONTEXT_BYTES} bytes")
    submit = tasks_pb2.SubmitTaskRequest(
        query=query, model_tier=model.model_tier, mode=model.mode, context_json=context_json
    )
    if session_id is not None:
        if not is_valid_id(session_id):
            raise ApiError(
                400,
                f"X-Session-ID {ID_RULE}",
                "invalid_request_error",
                details=[{"field": "X-Session-ID", "message": ID_RULE}],
            )
        submit.session_id = session_id
    return CompletionRequest(submit=submit, model=model, stream=stream, include_usage=include_usage)


def _optional(body: dict[str, Any], name: str, kind: type, message: str) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, kind):
        raise invalid_request(name, message)
    return value
